package detect

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/unhost/unhost/internal/dockertest"
)

const shortconnPkg = "github.com/unhost/unhost/detect/internal/shortconn"

// shortStack starts a host-network project whose five services call each
// other every 5 s with connections that last well under 5 ms:
// a->b, b->c, c->d, e->a, e->d. It returns the project, the ports of a..d,
// and the edges expected.
func shortStack(t *testing.T) (string, map[string]int, []Edge) {
	t.Helper()
	cli := dockertest.Client(t)
	img := dockertest.BuildImage(t, cli, shortconnPkg, nil)
	s := dockertest.NewScope(t, cli)
	project := "unhosttest-" + s.ID()
	p := dockertest.FreePorts(t, 4)
	port := map[string]int{"a": p[0], "b": p[1], "c": p[2], "d": p[3]}
	addr := func(svc string) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port[svc])) }
	calls := map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": nil, "e": {"a", "d"}}
	var want []Edge
	ids := map[string]string{}
	// Servers first, so that the first calls find them.
	for _, svc := range []string{"d", "c", "b", "a", "e"} {
		args := []string{"-every", "5s"}
		if _, ok := port[svc]; ok {
			args = append(args, "-listen", addr(svc))
		}
		for _, to := range calls[svc] {
			args = append(args, "-call", addr(to))
			want = append(want, Edge{From: svc, To: to, Port: port[to], Protocol: "tcp", Via: "loopback"})
		}
		ids[svc] = s.Run(t, project+"-"+svc+"-1", &container.Config{Image: img, Labels: composeLabels(project, svc), Cmd: args},
			&container.HostConfig{NetworkMode: "host"}, nil)
		if _, ok := port[svc]; ok {
			dockertest.WaitLog(t, cli, ids[svc], 10*time.Second, "listening "+addr(svc))
		}
	}
	dockertest.WaitLog(t, cli, ids["e"], 10*time.Second, "called "+addr("d"))
	sorted := Inventory{Edges: want}
	sorted.Sort()
	return project, port, sorted.Edges
}

// callFromHost makes n short connections to addr from this test (a host
// process outside the project), one every gap.
func callFromHost(t *testing.T, addr string, n int, gap time.Duration) {
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Errorf("call %s from the host: %v", addr, err)
			return
		}
		_, _ = io.ReadAll(c)
		c.Close()
		time.Sleep(gap)
	}
}

func serviceObs(inv *Inventory, svc string) ServiceObservation {
	for _, s := range inv.Services {
		if s.Service == svc {
			return s
		}
	}
	return ServiceObservation{}
}

// TestWatchShortConnections: over a 15 s window the tracer sees every edge
// of a stack that only makes sub-millisecond connections every 5 s, with
// counts, and a host process calling a's port shows up as an outside client.
// Forced to sample /proc instead, detect misses edges (asserted) and only
// TIME_WAIT tells which ports were used.
func TestWatchShortConnections(t *testing.T) {
	cli := dockertest.Client(t)
	project, port, want := shortStack(t)
	aAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port["a"]))

	t.Run("ebpf", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(2 * time.Second)
			callFromHost(t, aAddr, 3, time.Second)
		}()
		start := time.Now()
		inv, err := Observe(context.Background(), Options{Docker: cli, Projects: []string{project}, Duration: 15 * time.Second, Method: MethodEBPF})
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("a 15 s window took %s", took)
		}
		<-done
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("inventory: %s", dump(inv))
		if inv.Method != MethodEBPF || inv.Partial || inv.Duration == "" {
			t.Errorf("header: method %q partial %v duration %q", inv.Method, inv.Partial, inv.Duration)
		}
		var got []Edge
		for _, e := range inv.Edges {
			// Every 5 s over 15 s: 3 calls, 2 if a phase falls on the edge.
			if e.Count < 2 || e.Count > 4 {
				t.Errorf("edge %s->%s:%d: count %d, want 2 to 4", e.From, e.To, e.Port, e.Count)
			}
			if e.FirstSeen.IsZero() || e.LastSeen.Sub(e.FirstSeen) < 4*time.Second {
				t.Errorf("edge %s->%s:%d: first %s last %s, want at least 4 s apart", e.From, e.To, e.Port, e.FirstSeen, e.LastSeen)
			}
			e.Count, e.FirstSeen, e.LastSeen = 0, time.Time{}, time.Time{}
			got = append(got, e)
		}
		if !slices.Equal(got, want) {
			t.Errorf("edges:\n got %+v\nwant %+v\ninventory %s", got, want, dump(inv))
		}
		a := serviceObs(inv, "a")
		wantOutside := []OutsideClient{{Port: port["a"], Protocol: "tcp", Peers: []string{"127.0.0.1"}, Count: 3, Classes: map[string]int{"loopback": 3}}}
		for i := range a.OutsideClients {
			a.OutsideClients[i].FirstSeen, a.OutsideClients[i].LastSeen = time.Time{}, time.Time{}
		}
		if fmt.Sprint(a.OutsideClients) != fmt.Sprint(wantOutside) {
			t.Errorf("outside clients of a:\n got %+v\nwant %+v", a.OutsideClients, wantOutside)
		}
		for _, svc := range []string{"b", "c", "d", "e"} {
			if oc := serviceObs(inv, svc).OutsideClients; len(oc) != 0 {
				t.Errorf("outside clients of %s: %+v, want none", svc, oc)
			}
		}
		for _, s := range inv.Services {
			if len(s.RecentClients) != 0 {
				t.Errorf("recent clients of %s with method ebpf: %+v", s.Service, s.RecentClients)
			}
		}
		if len(inv.Warnings) != 0 {
			t.Errorf("warnings: %q", inv.Warnings)
		}
	})

	t.Run("procfs", func(t *testing.T) {
		inv, err := Observe(context.Background(), Options{Docker: cli, Projects: []string{project}, Duration: 6 * time.Second, Method: MethodProcfs})
		if err != nil {
			t.Fatal(err)
		}
		if inv.Method != MethodProcfs || inv.Samples < 6 || inv.Interval != "1s" {
			t.Errorf("header: method %q samples %d interval %q", inv.Method, inv.Samples, inv.Interval)
		}
		// Known miss: a connection that opens and closes between two
		// samples is never seen, so most edges are missing. Any edge
		// reported must still be a true one.
		for _, e := range inv.Edges {
			e.Count, e.FirstSeen, e.LastSeen = 0, time.Time{}, time.Time{}
			if !slices.Contains(want, e) {
				t.Errorf("procfs reported an edge that does not exist: %+v", e)
			}
		}
		if len(inv.Edges) >= len(want) {
			t.Errorf("procfs saw all %d edges of sub-millisecond connections; the documented miss did not happen: %+v", len(want), inv.Edges)
		}
		// What sampling keeps: TIME_WAIT says every server port was used,
		// without naming the client.
		for _, svc := range []string{"a", "b", "c", "d"} {
			rc := serviceObs(inv, svc).RecentClients
			if len(rc) != 1 || rc[0].Port != port[svc] || rc[0].Count < 1 || !slices.Equal(rc[0].Peers, []string{"127.0.0.1"}) {
				t.Errorf("recent clients of %s: %+v, want port %d from 127.0.0.1", svc, rc, port[svc])
			}
		}
	})
}
