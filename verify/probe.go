package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// ProbeTask is one thing the probe checks from inside a network namespace.
type ProbeTask struct {
	Kind string `json:"kind"`           // listening, tcp, udp, http
	Addr string `json:"addr"`           // PORT/PROTO for listening, HOST:PORT, or a URL for http
	Want int    `json:"want,omitempty"` // http: expected status
	// WaitMS bounds the retries of this task, in milliseconds; 0: until the
	// batch deadline.
	WaitMS int `json:"wait_ms,omitempty"`
	// Bench tasks (--bench, see benchprobe.go): counts, message size,
	// untimed warm-up round trips, a duration, a rate limit (per second)
	// and a pause between connections.
	N          int     `json:"n,omitempty"`
	Size       int     `json:"size,omitempty"`
	Warmup     int     `json:"warmup,omitempty"`
	DurationMS int     `json:"duration_ms,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
	GapMS      int     `json:"gap_ms,omitempty"`
}

// ProbeResult is the outcome of a ProbeTask.
type ProbeResult struct {
	Task   ProbeTask `json:"task"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
	// Bench is what a bench task measured.
	Bench *BenchSample `json:"bench,omitempty"`
	final bool         // a failure that retrying will not change
}

// finalError marks a probe failure that is a settled fact, not a service
// still starting: e.g. a port listening, but only on loopback.
type finalError struct{ error }

// Probe runs one task, retrying failures until ctx ends: a service that
// just became healthy may still be opening its other ports.
func Probe(ctx context.Context, t ProbeTask) ProbeResult {
	var last ProbeResult
	for {
		r := probeOnce(ctx, t)
		if r.OK {
			return r
		}
		if ctx.Err() != nil {
			// A try cut short by the deadline says less than the one before.
			if last.Detail != "" {
				return last
			}
			return r
		}
		if r.final {
			return r
		}
		last = r
		select {
		case <-ctx.Done():
			return r
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func probeOnce(ctx context.Context, t ProbeTask) ProbeResult {
	r := ProbeResult{Task: t}
	var err error
	switch t.Kind {
	case "listening":
		r.Detail, err = probeListening(t.Addr)
	case "tcp":
		r.Detail, err = probeTCP(ctx, t.Addr)
	case "udp":
		r.Detail, err = probeUDP(ctx, t.Addr)
	case "http":
		r.Detail, err = probeHTTP(ctx, t.Addr, t.Want)
	default:
		if isBenchKind(t.Kind) {
			// Measurements run once: a failure is the answer.
			r.Detail, r.Bench, err = runBenchTask(ctx, t)
			if err != nil {
				err = finalError{err}
			}
			break
		}
		err = fmt.Errorf("unknown probe %q", t.Kind)
	}
	if err != nil {
		r.Detail = err.Error()
		var fe finalError
		r.final = errors.As(err, &fe)
		return r
	}
	r.OK = true
	return r
}

func probeTCP(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", dialReason(err)
	}
	c.Close()
	return "connected", nil
}

// dialReason shortens a dial error to what happened.
func dialReason(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.As(err, &dnsErr):
		return fmt.Errorf("name %s does not resolve", dnsErr.Name)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return errors.New("no route to host")
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return errors.New("timed out")
	}
	return err
}

// probeUDP sends one datagram and waits briefly for any answer. A refused
// port (ICMP unreachable) is an error; silence is reported as such.
func probeUDP(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return "", dialReason(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("unhost-probe\n")); err != nil {
		return "", dialReason(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", errors.New("no answer to a datagram within 500ms")
		}
		return "", dialReason(err)
	}
	return "answered", nil
}

func probeHTTP(ctx context.Context, url string, want int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("bad url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) {
			return "", dialReason(uerr.Unwrap())
		}
		return "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if want != 0 && resp.StatusCode != want {
		return "", fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return fmt.Sprintf("status %d", resp.StatusCode), nil
}

// Socket is one entry of /proc/net/{tcp,tcp6,udp,udp6}.
type Socket struct {
	IP    net.IP
	Port  int
	State uint64
	Proto string
}

// TCP and UDP socket states in /proc/net (include/net/tcp_states.h).
const (
	stateListen  = 0x0A // TCP_LISTEN
	stateUnbound = 0x07 // TCP_CLOSE: for UDP, bound and unconnected
)

// probeListening reads this namespace's socket tables: the port must be
// listening (tcp) or bound unconnected (udp) on an address reachable from
// outside the namespace, not only loopback.
func probeListening(spec string) (string, error) {
	portStr, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || proto != "tcp" && proto != "udp" {
		return "", fmt.Errorf("bad port %q, want PORT/tcp or PORT/udp", spec)
	}
	socks, err := boundSockets(proto, port)
	if err != nil {
		return "", err
	}
	addrs := socketAddrs(socks)
	reachable := false
	for _, s := range socks {
		reachable = reachable || !s.IP.IsLoopback()
	}
	verb := "listening"
	if proto == "udp" {
		verb = "bound"
	}
	switch {
	case len(addrs) == 0:
		return "", fmt.Errorf("nothing %s on %d/%s", verb, port, proto)
	case !reachable:
		return "", finalError{fmt.Errorf("%s only on loopback (%s): unreachable from other containers and through published ports; bind to 0.0.0.0", verb, strings.Join(addrs, ", "))}
	}
	return fmt.Sprintf("%s on %s", verb, strings.Join(addrs, ", ")), nil
}

// boundSockets are this namespace's sockets listening (tcp) or bound
// unconnected (udp) on port.
func boundSockets(proto string, port int) ([]Socket, error) {
	socks, err := ReadSockets("/proc", proto)
	if err != nil {
		return nil, err
	}
	var out []Socket
	for _, s := range socks {
		if s.Port == port && s.bound() {
			out = append(out, s)
		}
	}
	return out, nil
}

// socketAddrs are the sockets' addresses as host:port, sorted, once each.
func socketAddrs(socks []Socket) []string {
	var addrs []string
	for _, s := range socks {
		addrs = append(addrs, net.JoinHostPort(s.IP.String(), strconv.Itoa(s.Port)))
	}
	sort.Strings(addrs)
	return slices.Compact(addrs)
}

func (s Socket) bound() bool {
	if s.Proto == "tcp" {
		return s.State == stateListen
	}
	return s.State == stateUnbound
}

// ReadSockets reads the PROTO and PROTO6 tables of the network namespace
// of the process whose proc root is procRoot ("/proc": this one), with
// procfs as detect does. A missing PROTO6 table (no IPv6) is fine.
func ReadSockets(procRoot, proto string) ([]Socket, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("read sockets: %w", err)
	}
	read := []func() (procfs.NetIPSocket, error){
		func() (procfs.NetIPSocket, error) {
			//lint:ignore SA1019 a FROM scratch probe reads its namespace's table; netlink adds nothing for one table
			t, err := fs.NetTCP()
			return procfs.NetIPSocket(t), err
		},
		func() (procfs.NetIPSocket, error) {
			//lint:ignore SA1019 as for NetTCP
			t, err := fs.NetTCP6()
			return procfs.NetIPSocket(t), err
		},
	}
	if proto == "udp" {
		read = []func() (procfs.NetIPSocket, error){
			func() (procfs.NetIPSocket, error) { t, err := fs.NetUDP(); return procfs.NetIPSocket(t), err },
			func() (procfs.NetIPSocket, error) { t, err := fs.NetUDP6(); return procfs.NetIPSocket(t), err },
		}
	}
	var out []Socket
	for i, rd := range read {
		lines, err := rd()
		if err != nil {
			if i == 1 && errors.Is(err, os.ErrNotExist) {
				continue // no IPv6
			}
			return nil, fmt.Errorf("read sockets: %w", err)
		}
		for _, l := range lines {
			ip := l.LocalAddr
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			out = append(out, Socket{IP: ip, Port: int(l.LocalPort), State: l.St, Proto: proto})
		}
	}
	return out, nil
}

// RunProbeBatch runs tasks concurrently, each until it passes or ctx ends,
// and writes the results as JSON: this is what the probe container runs.
func RunProbeBatch(ctx context.Context, tasks []ProbeTask, w io.Writer) error {
	results := make([]ProbeResult, len(tasks))
	done := make(chan struct{})
	for i, t := range tasks {
		go func() {
			tctx := ctx
			if t.WaitMS > 0 {
				var cancel context.CancelFunc
				tctx, cancel = context.WithTimeout(ctx, time.Duration(t.WaitMS)*time.Millisecond)
				defer cancel()
			}
			results[i] = Probe(tctx, t)
			done <- struct{}{}
		}()
	}
	for range tasks {
		<-done
	}
	return json.NewEncoder(w).Encode(results)
}
