package detect

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// fakeDocker serves canned container lists and inspections; the matching
// processes live in the fixture tree testdata/proc (see testdata/gen-proc.py).
type fakeDocker struct {
	ctrs    []container.InspectResponse
	listErr error
	tops    int
}

func (f *fakeDocker) ContainerList(_ context.Context, _ container.ListOptions) ([]container.Summary, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []container.Summary
	for _, c := range f.ctrs {
		s := container.Summary{ID: c.ID, Names: []string{c.Name}, Labels: c.Config.Labels, State: "running"}
		s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	for _, c := range f.ctrs {
		if c.ID == id {
			return c, nil
		}
	}
	return container.InspectResponse{}, errors.New("not found")
}

func (f *fakeDocker) ContainerTop(context.Context, string, []string) (container.TopResponse, error) {
	f.tops++
	return container.TopResponse{}, errors.New("top not expected")
}

func fakeCtr(name, project, service string, pid int, mode string, nets map[string]*network.EndpointSettings, ports nat.PortMap) container.InspectResponse {
	id := strings.Repeat(map[string]string{"web": "a", "api": "b", "worker": "c", "sidecar": "d", "other": "e"}[service], 64)
	var r container.InspectResponse
	r.ContainerJSONBase = &container.ContainerJSONBase{
		ID:         id,
		Name:       "/" + name,
		State:      &container.State{Running: true, Pid: pid},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)},
	}
	r.Config = &container.Config{Labels: map[string]string{LabelComposeProject: project, LabelComposeService: service}}
	r.NetworkSettings = &container.NetworkSettings{Networks: nets}
	r.NetworkSettings.Ports = ports
	return r
}

func fixtureDocker() *fakeDocker {
	return &fakeDocker{ctrs: []container.InspectResponse{
		fakeCtr("shop-web-1", "shop", "web", 100, "host", nil, nil),
		fakeCtr("shop-api-1", "shop", "api", 200, "host", nil, nil),
		fakeCtr("shop-worker-1", "shop", "worker", 300, "shop_default",
			map[string]*network.EndpointSettings{"shop_default": {IPAddress: "172.18.0.2", Gateway: "172.18.0.1"}},
			nat.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8081"}}}),
		fakeCtr("shop-sidecar-1", "shop", "sidecar", 400, "container:"+strings.Repeat("a", 64), nil, nil),
	}}
}

func fixtureOptions(d Docker) Options {
	return Options{
		Docker:     d,
		ProcRoot:   filepath.Join("..", "testdata", "proc"),
		CgroupRoot: filepath.Join("..", "testdata", "cgroup"),
		Projects:   []string{"shop"},
		Samples:    2,
		Interval:   1,
	}
}

func TestObserveFixture(t *testing.T) {
	d := fixtureDocker()
	inv, err := Observe(context.Background(), fixtureOptions(d))
	if err != nil {
		t.Fatal(err)
	}
	if d.tops != 0 {
		t.Errorf("docker top called %d times; processes should come from cgroup.procs", d.tops)
	}
	want := []ServiceObservation{
		{Service: "api", Containers: []string{"shop-api-1"}, NetworkMode: "host",
			Listeners: []Listener{
				{Protocol: "tcp", Address: "127.0.0.1", Port: 9090, PID: 200, Process: "api"},
				{Protocol: "udp", Address: "::1", Port: 5000, PID: 201, Process: "api-worker"},
			},
			OutsideClients: []OutsideClient{{Port: 9090, Protocol: "tcp", Peers: []string{"127.0.0.1"}, Count: 1, Classes: map[string]int{"loopback": 1}}},
		},
		{Service: "sidecar", Containers: []string{"shop-sidecar-1"}, NetworkMode: "service:web",
			Listeners: []Listener{{Protocol: "udp", Address: "0.0.0.0", Port: 6000, PID: 400, Process: "sidecar"}},
		},
		{Service: "web", Containers: []string{"shop-web-1"}, NetworkMode: "host",
			Listeners: []Listener{
				{Protocol: "tcp", Address: "127.0.0.1", Port: 7000, PID: 100, Process: "web"}, // IPv4-mapped in tcp6
				{Protocol: "tcp", Address: "0.0.0.0", Port: 8080, PID: 100, Process: "web"},
				{Protocol: "tcp", Address: "::", Port: 8443, DualStack: true, PID: 100, Process: "web"},
				{Protocol: "udp", Address: "0.0.0.0", Port: 5353, PID: 100, Process: "web"},
			},
			OutsideClients: []OutsideClient{{Port: 8080, Protocol: "tcp", Peers: []string{"192.168.1.50"}, Count: 1, Classes: map[string]int{"private": 1}}},
			// The TIME_WAIT line 127.0.0.1:8080 <- 127.0.0.1:39000: used
			// recently, by a client nobody can name.
			RecentClients: []OutsideClient{{Port: 8080, Protocol: "tcp", Peers: []string{"127.0.0.1"}, Count: 1, Classes: map[string]int{"loopback": 1}}},
		},
		{Service: "worker", Containers: []string{"shop-worker-1"}, NetworkMode: "shop_default",
			Listeners: []Listener{{Protocol: "tcp", Address: "0.0.0.0", Port: 80, PID: 300, Process: "worker"}},
			Published: []Published{{Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 8081, ContainerPort: 80}},
		},
	}
	zeroTimes(inv)
	if !reflect.DeepEqual(inv.Services, want) {
		t.Errorf("services:\n got %+v\nwant %+v", inv.Services, want)
	}
	wantEdges := []Edge{
		{From: "api", To: "web", Port: 8080, Protocol: "tcp", Via: "loopback", Count: 1},
		{From: "api", To: "web", Port: 8443, Protocol: "tcp", Via: "loopback", Count: 1},
		{From: "sidecar", To: "web", Port: 8443, Protocol: "tcp", Via: "loopback", Count: 1},
		{From: "worker", To: "web", Port: 8080, Protocol: "tcp", Via: "gateway", Count: 1},
	}
	if !reflect.DeepEqual(inv.Edges, wantEdges) {
		t.Errorf("edges:\n got %+v\nwant %+v", inv.Edges, wantEdges)
	}
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], `net/tcp line 8 skipped: local address: bad port "ZZZZ"`) {
		t.Errorf("warnings: got %q, want one about the malformed tcp line", inv.Warnings)
	}
	if inv.Version != InventoryVersion || inv.Project != "shop" || inv.Method != "procfs" || inv.Samples != 2 {
		t.Errorf("header: %+v", inv)
	}
}

func TestReadTablesTolerant(t *testing.T) {
	socks, warns, err := readTables(filepath.Join("..", "testdata", "proc", "100"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 {
		t.Errorf("warnings %q, want 1 (the bad tcp line)", warns)
	}
	count := map[string]int{}
	var short, timeWait, mapped bool
	for _, s := range socks {
		key := s.proto
		if s.v6 {
			key += "6"
		}
		count[key]++
		if s.proto == "udp" && s.inode == 55 && s.local.Port() == 0x1234 {
			short = true
		}
		if s.state == 0x06 && s.inode == 0 {
			timeWait = true
		}
		if s.v6 && s.local == netip.MustParseAddrPort("127.0.0.1:7000") {
			mapped = true
		}
	}
	want := map[string]int{"tcp": 11, "tcp6": 5, "udp": 4, "udp6": 1}
	if !reflect.DeepEqual(count, want) {
		t.Errorf("sockets per table %v, want %v", count, want)
	}
	if !short || !timeWait || !mapped {
		t.Errorf("short udp line kept %v, time-wait kept %v, mapped address unmapped %v", short, timeWait, mapped)
	}
}

func TestParseHexAddrPort(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000000000000000000001000000:20FB": "[::1]:8443",
		"0000000000000000FFFF00000100007F:1B58": "127.0.0.1:7000",
		"B80D0120000000000000000001000000:0050": "[2001:db8::1]:80",
	} {
		got, err := parseHexAddrPort(in)
		if err != nil || got.String() != want {
			t.Errorf("parseHexAddrPort(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "01007F:0050", "0100007F:FFFFF", "zz00007F:0050"} {
		if _, err := parseHexAddrPort(bad); err == nil {
			t.Errorf("parseHexAddrPort(%q): no error", bad)
		}
	}
}

func TestObserveErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no containers", func(t *testing.T) {
		o := fixtureOptions(fixtureDocker())
		o.Projects = []string{"nosuch"}
		_, err := Observe(ctx, o)
		if !errors.Is(err, ErrNoContainers) || !strings.Contains(err.Error(), `"nosuch"`) {
			t.Errorf("got %v, want ErrNoContainers naming the project", err)
		}
	})
	t.Run("pid namespace", func(t *testing.T) {
		d := fixtureDocker()
		d.ctrs[0].State.Pid = 4242 // not in the fixture tree
		_, err := Observe(ctx, fixtureOptions(d))
		if !errors.Is(err, ErrPIDNamespace) {
			t.Errorf("got %v, want ErrPIDNamespace", err)
		}
	})
	t.Run("pid of another process", func(t *testing.T) {
		d := fixtureDocker()
		d.ctrs[0].State.Pid = 200 // exists, but in api's cgroup
		_, err := Observe(ctx, fixtureOptions(d))
		if !errors.Is(err, ErrPIDNamespace) {
			t.Errorf("got %v, want ErrPIDNamespace", err)
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		o := fixtureOptions(nil)
		t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "nosuch.sock"))
		o.Docker = nil
		_, err := Observe(ctx, o)
		if !errors.Is(err, ErrNoDaemon) {
			t.Errorf("got %v, want ErrNoDaemon", err)
		}
	})
}

// TestObserveAllProjects puts api in another project: its connections to web
// become outside clients of web, not edges, and --all finds both projects.
func TestObserveAllProjects(t *testing.T) {
	d := fixtureDocker()
	d.ctrs[1].Config.Labels = map[string]string{LabelStackNamespace: "other", LabelSwarmService: "other_api"}
	o := fixtureOptions(d)
	o.Projects = nil
	o.All = true
	invs, err := ObserveAll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 2 || invs[0].Project != "other" || invs[1].Project != "shop" {
		t.Fatalf("projects: %+v", invs)
	}
	other, shop := invs[0], invs[1]
	stripStats(shop)
	if len(other.Services) != 1 || other.Services[0].Service != "api" || len(other.Edges) != 0 {
		t.Errorf("other: services %+v edges %+v", other.Services, other.Edges)
	}
	wantEdges := []Edge{
		{From: "sidecar", To: "web", Port: 8443, Protocol: "tcp", Via: "loopback"},
		{From: "worker", To: "web", Port: 8080, Protocol: "tcp", Via: "gateway"},
	}
	if !reflect.DeepEqual(shop.Edges, wantEdges) {
		t.Errorf("shop edges:\n got %+v\nwant %+v", shop.Edges, wantEdges)
	}
	var web ServiceObservation
	for _, s := range shop.Services {
		if s.Service == "web" {
			web = s
		}
	}
	wantOutside := []OutsideClient{
		{Port: 8080, Protocol: "tcp", Peers: []string{"127.0.0.1", "192.168.1.50"}},
		{Port: 8443, Protocol: "tcp", Peers: []string{"::1"}},
	}
	if !reflect.DeepEqual(web.OutsideClients, wantOutside) {
		t.Errorf("web outside clients:\n got %+v\nwant %+v", web.OutsideClients, wantOutside)
	}
}

// A swarm task says network mode "default" whatever it is attached to:
// detect names its first overlay network (ingress aside); a task on the
// external host network is "host" as Docker says; a plain container's
// "default" stays.
func TestFromInspectSwarmNetworkMode(t *testing.T) {
	nets := map[string]*network.EndpointSettings{"ingress": {}, "shop_internal": {}, "shop_default": {}}
	task := fakeCtr("shop_api.1.x", "", "api", 10, "default", nets, nil)
	task.Config.Labels = map[string]string{LabelStackNamespace: "shop", LabelSwarmService: "shop_api"}
	c := fromInspect(task)
	if c.project != "shop" || c.service != "api" || c.networkMode != "shop_default" {
		t.Errorf("overlay task: project %q service %q network mode %q, want shop, api, shop_default", c.project, c.service, c.networkMode)
	}
	host := fakeCtr("shop_web.1.y", "", "web", 11, "host", map[string]*network.EndpointSettings{"host": {}}, nil)
	host.Config.Labels = task.Config.Labels
	if c := fromInspect(host); c.networkMode != "host" {
		t.Errorf("host-network task: network mode %q, want host", c.networkMode)
	}
	plain := fakeCtr("x", "", "web", 12, "default", map[string]*network.EndpointSettings{"bridge": {}}, nil)
	plain.Config.Labels = map[string]string{}
	if c := fromInspect(plain); c.networkMode != "default" {
		t.Errorf("plain container: network mode %q, want default", c.networkMode)
	}
}

// stripStats clears the counts and times of edges and client ports, for
// tests that compare what was seen, not how often or when.
func stripStats(inv *Inventory) {
	for i := range inv.Edges {
		e := &inv.Edges[i]
		e.Count, e.FirstSeen, e.LastSeen = 0, time.Time{}, time.Time{}
	}
	for i := range inv.Services {
		s := &inv.Services[i]
		for _, l := range [][]OutsideClient{s.OutsideClients, s.RecentClients} {
			for j := range l {
				l[j].Count, l[j].Classes, l[j].FirstSeen, l[j].LastSeen = 0, nil, time.Time{}, time.Time{}
			}
		}
	}
}

// zeroTimes clears first and last seen times, which depend on the clock.
func zeroTimes(inv *Inventory) {
	for i := range inv.Edges {
		inv.Edges[i].FirstSeen, inv.Edges[i].LastSeen = time.Time{}, time.Time{}
	}
	for i := range inv.Services {
		s := &inv.Services[i]
		for _, l := range [][]OutsideClient{s.OutsideClients, s.RecentClients} {
			for j := range l {
				l[j].FirstSeen, l[j].LastSeen = time.Time{}, time.Time{}
			}
		}
	}
}

// Cancelling the context during a window (Ctrl-C) still gives the
// inventory of what was seen, marked partial.
func TestWindowCancelledIsPartial(t *testing.T) {
	o := fixtureOptions(fixtureDocker())
	o.Duration = time.Hour
	o.Method = MethodProcfs
	o.Interval = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	inv, err := Observe(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancelled window took %s", time.Since(start))
	}
	d, err := time.ParseDuration(inv.Duration)
	if !inv.Partial || err != nil || d <= 0 || d > 10*time.Second || inv.Method != MethodProcfs || inv.Samples < 2 {
		t.Errorf("header: partial %v duration %q method %q samples %d", inv.Partial, inv.Duration, inv.Method, inv.Samples)
	}
	if len(inv.Edges) != 4 || inv.Edges[0].Count != 1 {
		t.Errorf("edges of a cancelled window: %+v", inv.Edges)
	}
}

func TestObserveMethodErrors(t *testing.T) {
	o := fixtureOptions(fixtureDocker())
	o.Method = MethodEBPF
	if _, err := Observe(context.Background(), o); err == nil || !strings.Contains(err.Error(), "needs a duration") {
		t.Errorf("ebpf without duration: %v", err)
	}
	o.Method = "kprobe"
	if _, err := Observe(context.Background(), o); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Errorf("unknown method: %v", err)
	}
}

// Where the tracer cannot be attached, a window falls back to sampling and
// says why; with --method ebpf it fails instead.
func TestWindowFallsBackToProcfs(t *testing.T) {
	saved := attachTracer
	defer func() { attachTracer = saved }()
	attachTracer = func() (*tracer, error) { return nil, errors.New("load program: operation not permitted") }
	o := fixtureOptions(fixtureDocker())
	o.Duration = 300 * time.Millisecond
	o.Interval = 100 * time.Millisecond
	inv, err := Observe(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Method != MethodProcfs || inv.Partial || inv.Samples < 2 || inv.Interval != "100ms" {
		t.Errorf("header: method %q partial %v samples %d interval %q", inv.Method, inv.Partial, inv.Samples, inv.Interval)
	}
	found := false
	for _, w := range inv.Warnings {
		found = found || strings.Contains(w, "cannot watch with ebpf (load program: operation not permitted)")
	}
	if !found {
		t.Errorf("no warning about the fallback: %q", inv.Warnings)
	}
	o.Method = MethodEBPF
	if _, err := Observe(context.Background(), o); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("forced ebpf that cannot attach: %v", err)
	}
}
