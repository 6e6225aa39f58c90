package detect

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/unhost/unhost/internal/dockertest"
)

// loadResult is what `shortconn -load` prints.
type loadResult struct {
	N      int     `json:"n"`
	Errors int     `json:"errors"`
	P50    float64 `json:"p50_us"`
	P99    float64 `json:"p99_us"`
}

// BenchmarkWatchOverhead measures what watching (--duration, method ebpf)
// adds to the latency of a connection-heavy workload: a host-network
// container serving short connections, and a host process (shortconn -load,
// a separate process) making 2,000 connections a second to it for 5 s, each
// dial + read + close timed. Pairs of runs, one without detect and one while
// detect watches the container's project, alternate in order; the reported
// figures are medians over the pairs.
//
//	CI=true flock /tmp/unhost-engine.lock go test -run '^$' -bench WatchOverhead -benchtime 1x ./detect/
func BenchmarkWatchOverhead(b *testing.B) {
	const pairs = 7
	cli := dockertest.Client(b)
	img := dockertest.BuildImage(b, cli, shortconnPkg, nil)
	s := dockertest.NewScope(b, cli)
	project := "unhosttest-" + s.ID()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(dockertest.FreePorts(b, 1)[0]))
	id := s.Run(b, project+"-srv-1", &container.Config{Image: img, Labels: composeLabels(project, "srv"), Cmd: []string{"-listen", addr}},
		&container.HostConfig{NetworkMode: "host"}, nil)
	dockertest.WaitLog(b, cli, id, 10*time.Second, "listening "+addr)
	bin := filepath.Join(b.TempDir(), "shortconn")
	if out, err := exec.Command("go", "build", "-o", bin, shortconnPkg).CombinedOutput(); err != nil {
		b.Fatalf("build shortconn: %v\n%s", err, out)
	}
	load := func() loadResult {
		out, err := exec.Command(bin, "-load", addr, "-rate", "2000", "-for", "5s").Output()
		if err != nil {
			b.Fatalf("load: %v", err)
		}
		var r loadResult
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatalf("load output %q: %v", out, err)
		}
		// A connection can time out when the shared machine stalls; a
		// handful in 10,000 does not change a p99.
		if r.Errors > 10 || r.N < 9000 {
			b.Fatalf("load: %+v; want about 10000 connections, at most 10 errors", r)
		}
		return r
	}
	watched := func() (loadResult, *Inventory) {
		type res struct {
			inv *Inventory
			err error
		}
		done := make(chan res, 1)
		ready := make(chan struct{})
		var once sync.Once
		go func() {
			// Progress is first called once the tracer is attached and the
			// first sample taken.
			progress := func(int, int) { once.Do(func() { close(ready) }) }
			inv, err := Observe(context.Background(), Options{Docker: cli, Projects: []string{project}, Duration: 9 * time.Second, Method: MethodEBPF, Progress: progress})
			done <- res{inv, err}
		}()
		t0 := time.Now()
		select {
		case <-ready:
			b.Logf("detect watching after %s", time.Since(t0).Round(time.Millisecond))
		case got := <-done:
			b.Fatalf("detect ended before watching: %v", got.err)
		}
		r := load()
		got := <-done
		if got.err != nil {
			b.Fatal(got.err)
		}
		return r, got.inv
	}
	for i := 0; i < b.N; i++ {
		var off, on, added, off50, on50 []float64
		for p := 0; p < pairs; p++ {
			var a, w loadResult
			var inv *Inventory
			if p%2 == 0 {
				a = load()
				w, inv = watched()
			} else {
				w, inv = watched()
				a = load()
			}
			// The watcher must have seen the workload, or it measured nothing.
			seen := 0
			for _, oc := range serviceObs(inv, "srv").OutsideClients {
				seen += oc.Count
			}
			if seen < w.N {
				b.Fatalf("pair %d: detect saw %d connections of %d; warnings %q", p, seen, w.N, inv.Warnings)
			}
			b.Logf("pair %d: p99 %.0f µs without, %.0f µs watching (p50 %.0f / %.0f); detect counted %d of %d", p, a.P99, w.P99, a.P50, w.P50, seen, w.N)
			off = append(off, a.P99)
			on = append(on, w.P99)
			added = append(added, 100*(w.P99-a.P99)/a.P99)
			off50 = append(off50, a.P50)
			on50 = append(on50, w.P50)
		}
		b.ReportMetric(median(off), "p99-us-without")
		b.ReportMetric(median(on), "p99-us-watching")
		b.ReportMetric(median(added), "added-p99-%")
		b.ReportMetric(median(off50), "p50-us-without")
		b.ReportMetric(median(on50), "p50-us-watching")
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
