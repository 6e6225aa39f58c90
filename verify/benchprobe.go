package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unhost/unhost/verify/netbench"
)

// Probe task kinds of --bench, run by a probe serving in a throwaway
// container (never in a service's namespace, except the service-port
// kinds, which only connect to published ports from the host's network).
// They run once: a failure is final, never retried.
const (
	benchEchoListen  = "echo-listen" // Addr: listen address; Detail: the bound address
	benchRTT         = "bench-rtt"   // Addr: echo server; N round trips of Size bytes after Warmup
	benchConnect     = "bench-connect"
	benchThroughput  = "bench-throughput" // DurationMS of one stream to a sink
	benchConnectOnly = "bench-connect-only"
	benchHTTP        = "bench-http" // Addr: URL; N GETs at most Rate a second
	benchListeners   = "listeners"  // Addr: PORT; Detail: what listens on it in this namespace
	benchResolve     = "resolve"    // Addr: a host name; Detail: its first IPv4 address
	benchHostInfo    = "host-info"  // Detail: JSON hostInfo of this namespace's kernel view
)

func isBenchKind(kind string) bool {
	switch kind {
	case benchEchoListen, benchRTT, benchConnect, benchThroughput, benchConnectOnly, benchHTTP, benchListeners, benchResolve, benchHostInfo:
		return true
	}
	return false
}

// BenchSample is what a bench task measured: every latency sample (so
// that rounds interleaved between paths can be pooled), or a throughput.
type BenchSample struct {
	SamplesNS []int64     `json:"samples_ns,omitempty"`
	Mbit      float64     `json:"mbit_s,omitempty"`
	Bytes     int64       `json:"bytes,omitempty"`
	Status    map[int]int `json:"status,omitempty"`
}

// hostInfo is what the host's network namespace tells about the machine.
type hostInfo struct {
	LoadAvg        string `json:"loadavg"`
	ConntrackCount int    `json:"conntrack_count,omitempty"`
	ConntrackMax   int    `json:"conntrack_max,omitempty"`
	IPVS           bool   `json:"ipvs"`
}

// benchServers are the echo servers this probe process holds; they live
// as long as the probe container does.
var benchServers struct {
	sync.Mutex
	list []*netbench.Server
}

func runBenchTask(ctx context.Context, t ProbeTask) (string, *BenchSample, error) {
	samples := func(st netbench.Stats) *BenchSample {
		b := &BenchSample{SamplesNS: make([]int64, len(st.Samples))}
		for i, d := range st.Samples {
			b.SamplesNS[i] = int64(d)
		}
		return b
	}
	switch t.Kind {
	case benchEchoListen:
		s, err := netbench.Listen(context.WithoutCancel(ctx), t.Addr)
		if err != nil {
			return "", nil, err
		}
		benchServers.Lock()
		benchServers.list = append(benchServers.list, s)
		benchServers.Unlock()
		return s.Addr(), nil, nil
	case benchRTT:
		st, err := netbench.RTT(ctx, t.Addr, t.N, t.Size, t.Warmup)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%d round trips", st.N), samples(st), nil
	case benchConnect:
		st, err := netbench.ConnectEcho(ctx, t.Addr, t.N, time.Duration(t.GapMS)*time.Millisecond)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%d connections", st.N), samples(st), nil
	case benchConnectOnly:
		st, err := netbench.ConnectOnly(ctx, t.Addr, t.N, t.Rate)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%d bare connects", st.N), samples(st), nil
	case benchThroughput:
		mbit, n, err := netbench.Throughput(ctx, t.Addr, time.Duration(t.DurationMS)*time.Millisecond)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%.0f Mbit/s", mbit), &BenchSample{Mbit: mbit, Bytes: n}, nil
	case benchHTTP:
		st, status, err := netbench.HTTPGet(ctx, t.Addr, t.N, t.Rate)
		if err != nil {
			return "", nil, err
		}
		b := samples(st)
		b.Status = status
		return fmt.Sprintf("%d requests", st.N), b, nil
	case benchListeners:
		d, err := listenersAt(t.Addr)
		return d, nil, err
	case benchResolve:
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", t.Addr)
		if err != nil {
			return "", nil, dialReason(err)
		}
		if len(ips) == 0 {
			return "", nil, fmt.Errorf("%s has no IPv4 address", t.Addr)
		}
		return ips[0].String(), nil, nil
	case benchHostInfo:
		b, err := json.Marshal(readHostInfo("/proc"))
		return string(b), nil, err
	}
	return "", nil, fmt.Errorf("unknown probe %q", t.Kind)
}

// listenersAt lists what listens on TCP port spec in this namespace
// ("none" when nothing does: an answer, not an error).
func listenersAt(spec string) (string, error) {
	port, err := strconv.Atoi(spec)
	if err != nil || port < 1 || port > 65535 {
		return "", fmt.Errorf("bad port %q", spec)
	}
	socks, err := boundSockets("tcp", port)
	if err != nil {
		return "", err
	}
	if len(socks) == 0 {
		return "none", nil
	}
	return strings.Join(socketAddrs(socks), ","), nil
}

// readHostInfo reads the load average, the conntrack table's fill and
// whether the kernel has IPVS (the swarm routing mesh needs it).
func readHostInfo(proc string) hostInfo {
	var h hostInfo
	if b, err := os.ReadFile(proc + "/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			h.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	num := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	h.ConntrackCount = num(proc + "/sys/net/netfilter/nf_conntrack_count")
	h.ConntrackMax = num(proc + "/sys/net/netfilter/nf_conntrack_max")
	h.IPVS = HasIPVS(proc)
	return h
}
