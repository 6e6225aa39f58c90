package verify_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// verify --bench beside the running original on the engine: every path
// baseline is measured with plausible numbers and takes the route it
// names; the api's HTTP port is compared with the original's, the cache's
// port only connected to; the original never sees more than --bench-rate
// connections and requests a second; nothing is left behind.
func TestBenchBesideOriginal(t *testing.T) {
	cli := verifytest.Env(t)
	dir := filepath.Join(verifytest.Root(), "testdata", "verify", "bench")
	name := "unhost-test-bench-original"
	verifytest.ComposeUp(t, name, filepath.Join(dir, "original.yaml"))
	const rate = 50.0

	rep := runVerify(t, filepath.Join(dir, "migrated.yaml"), func(o *verify.Options) {
		o.Bench, o.BenchRate, o.AllowSkip = true, rate, true // the original holds the db port: its host-side check is skipped
	})
	if rep.Failed() {
		t.Fatalf("verify: %s %+v", rep.Status, rep.Checks)
	}
	env := rep.BenchEnv
	if env == nil || env.NotRun != "" {
		t.Fatalf("bench did not run: %+v", env)
	}
	if !env.SingleRun || env.Cores <= 0 || env.LoadAvg == "" || !env.ProductionMeasured {
		t.Errorf("bench method not reported: %+v", env)
	}
	if env.Seconds > env.Budget+5 {
		t.Errorf("bench took %.1fs of a %.0fs budget", env.Seconds, env.Budget)
	}

	paths := map[string]verify.BenchEntry{}
	for _, e := range rep.Bench {
		if e.Kind == verify.BenchBaseline {
			paths[e.Path] = e
		}
	}
	for _, p := range []string{verify.PathHostLoopback, verify.PathPublished, verify.PathBridge, verify.PathHostGateway} {
		e, ok := paths[p]
		switch {
		case !ok:
			t.Errorf("no %s baseline in %+v", p, rep.Bench)
		case e.Note != "":
			t.Errorf("%s: %s", p, e.Note)
		case e.RTTN < 10000:
			t.Errorf("%s: %d round trips, want at least 10,000", p, e.RTTN)
		case !(e.RTTP99us >= e.RTTP50us && e.RTTP50us > 0), !(e.ConnectP99us >= e.ConnectP50us && e.ConnectP50us > 0):
			t.Errorf("%s: implausible percentiles %+v", p, e.Figures)
		case e.ThroughputMbit <= 0:
			t.Errorf("%s: throughput %v", p, e.ThroughputMbit)
		case p != verify.PathHostLoopback && e.Ratio["rtt_p50"] <= 0:
			t.Errorf("%s: no ratio to host loopback: %+v", p, e.Ratio)
		}
	}
	// Host loopback is the fastest path, within noise. Between two
	// processes (as host mode runs), the bridge and host-gateway round
	// trips are at loopback's level here, 0.76-1.2x of it in single runs,
	// and a plain ping-pong finds the same (BENCHMARKS.md): a half.
	host := paths[verify.PathHostLoopback]
	for p, e := range paths {
		if p != verify.PathHostLoopback && e.RTTP50us > 0 && host.RTTP50us > 1.5*e.RTTP50us {
			t.Errorf("host loopback (%.0fµs) slower than %s (%.0fµs)", host.RTTP50us, p, e.RTTP50us)
		}
	}

	// Host loopback runs between two processes, as host-mode services do:
	// an echo server in the client's own process measured a quarter less.
	if r := paths[verify.PathHostLoopback].Route; r != verify.RouteLoopback {
		t.Errorf("host-loopback route %q, want %q", r, verify.RouteLoopback)
	}
	// The published path's route is the engine's: docker-proxy unless
	// the daemon turned the userland proxy off.
	wantRoute := verify.RouteUserlandProxy
	if !userlandProxy(t) {
		wantRoute = verify.RouteDNAT
	}
	if env.PublishedRoute != wantRoute || !strings.HasPrefix(paths[verify.PathPublished].Route, wantRoute) {
		t.Errorf("published route %q (%s), the daemon's configuration says %s", env.PublishedRoute, paths[verify.PathPublished].Route, wantRoute)
	}
	// host-gateway is the default bridge's address on the host here
	// (docker0), unless the daemon names another host-gateway-ip.
	gw := docker0(t)
	if !strings.Contains(paths[verify.PathHostGateway].Route, "= "+gw+",") {
		t.Errorf("host-gateway route %q, want docker0's address %s", paths[verify.PathHostGateway].Route, gw)
	}

	// The stack's own ports, original beside migrated.
	svc := map[string]verify.BenchEntry{}
	for _, e := range rep.Bench {
		if e.Kind == verify.BenchService {
			svc[e.Service] = e
		}
	}
	api, cache := svc["api"], svc["cache"]
	if api.Original == nil || api.RequestN == 0 || api.Original.RequestN == 0 || api.Ratio["request_p50"] <= 0 || api.Ratio["connect_p50"] <= 0 {
		t.Errorf("api's HTTP port not compared with the original: %+v", api)
	}
	if api.Status[200] != api.RequestN || api.Original.Status[200] != api.Original.RequestN {
		t.Errorf("api answers: migrated %v, original %v", api.Status, api.Original.Status)
	}
	if cache.Original == nil || cache.ConnectN == 0 || cache.RequestN != 0 || cache.Original.RequestN != 0 {
		t.Errorf("cache: want connects only, on both sides: %+v", cache)
	}
	if _, ok := svc["db"]; ok {
		t.Errorf("db is not published, yet measured: %+v", svc["db"])
	}

	// What the original saw: no byte to the cache, and never more than
	// rate connections and requests a second to either.
	apiLog := originalLog(t, cli, name, "api")
	cacheLog := originalLog(t, cli, name, "cache")
	if n := count(cacheLog, "request"); n != 0 {
		t.Errorf("the cache got %d HTTP requests: the bench must only connect", n)
	}
	if n := count(cacheLog, "conn"); n < cache.Original.ConnectN {
		t.Errorf("the cache saw %d connections, the bench reports %d", n, cache.Original.ConnectN)
	}
	if n := count(apiLog, "request"); n != api.Original.RequestN {
		t.Errorf("the api saw %d requests, the bench reports %d", n, api.Original.RequestN)
	}
	all := append(times(apiLog), times(cacheLog)...)
	if w := maxPerSecond(all); float64(w) > rate {
		t.Errorf("the original got %d connections and requests within one second, above --bench-rate %.0f", w, rate)
	}

	// Text and JSON carry the bench.
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PERFORMANCE (--bench)", "single run", verify.PathPublished, "GET /healthz", "MIGRATED ÷ ORIGINAL"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Bench []map[string]any `json:"bench"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || len(doc.Bench) == 0 {
		t.Fatalf("json bench array: %v %s", err, js.String())
	}
	for _, key := range []string{"kind", "path", "rtt_p50_us", "rtt_p99_us", "connect_p50_us", "connect_p99_us", "throughput_mbit_s", "ratio_to_host"} {
		if _, ok := doc.Bench[1][key]; !ok {
			t.Errorf("json bench entry lacks %s: %v", key, doc.Bench[1])
		}
	}
}

// docker0 is the IPv4 address of the default bridge on the host.
func docker0(t *testing.T) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("docker0: %v", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address: %v", addrs)
	return ""
}

// userlandProxy reads the daemon's setting: on unless daemon.json or the
// daemon's command line turns it off.
func userlandProxy(t *testing.T) bool {
	t.Helper()
	if b, err := os.ReadFile("/etc/docker/daemon.json"); err == nil {
		var cfg map[string]any
		if json.Unmarshal(b, &cfg) == nil {
			if v, ok := cfg["userland-proxy"].(bool); ok && !v {
				return false
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("dockerd")) {
			continue
		}
		if bytes.Contains(b, []byte("--userland-proxy=false")) {
			return false
		}
	}
	return true
}

func originalLog(t *testing.T, cli *client.Client, project, service string) []string {
	t.Helper()
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.compose.project="+project),
		filters.Arg("label", "com.docker.compose.service="+service))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("original %s: %v (%d containers)", service, err, len(cs))
	}
	rc, err := cli.ContainerLogs(ctx, cs[0].ID, container.LogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func count(lines []string, kind string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, kind+" ") {
			n++
		}
	}
	return n
}

// times are the timestamps of the conn and request lines.
func times(lines []string) []time.Time {
	var out []time.Time
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "conn" && f[0] != "request" {
			continue
		}
		if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			out = append(out, time.Unix(0, ns))
		}
	}
	return out
}

// maxPerSecond is the most events within any window of one second.
func maxPerSecond(ts []time.Time) int {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Second {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
