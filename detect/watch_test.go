package detect

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// The watcher's matching of server ends (namespace + listening port) with
// client ends (tuple, and namespace for loopback), without a kernel.
func TestWatcherResolve(t *testing.T) {
	ap := netip.MustParseAddrPort
	const hostNS, bridgeNS, otherNS = 4026531833, 4026532000, 4026532111
	nsName := func(n uint32) string { return "net:[" + strconv.FormatUint(uint64(n), 10) + "]" }
	web := &ctr{name: "p-web-1", project: "p", service: "web", networkMode: "host", hostNet: true}
	api := &ctr{name: "p-api-1", project: "p", service: "api", networkMode: "host", hostNet: true}
	worker := &ctr{name: "p-worker-1", project: "p", service: "worker", networkMode: "p_default", gateways: []netip.Addr{netip.MustParseAddr("172.18.0.1")}}
	foreign := &ctr{name: "q-x-1", project: "q", service: "x", networkMode: "host", hostNet: true}
	o := newObserver(Options{}, []*ctr{web, api, worker, foreign})
	o.nsOf = map[*ctr]string{web: nsName(hostNS), api: nsName(hostNS), worker: nsName(bridgeNS), foreign: nsName(hostNS)}
	o.listeners = map[*ctr]map[listenerKey]Listener{
		web: {{"tcp", netip.IPv4Unspecified(), 8080}: {}},
		api: {{"tcp", netip.MustParseAddr("127.0.0.1"), 9090}: {}},
	}
	w := newWatcher(o, nil)
	w.index()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	client := func(src, dst string, ns uint32, c *ctr, known bool, at time.Duration) clientEnd {
		return clientEnd{key: keyOf(ap(src), ap(dst), ns), c: c, known: known, at: t0.Add(at)}
	}
	server := func(local, remote string, ns uint32, at time.Duration) tcpEvent {
		return tcpEvent{oldState: tcpSynRecv, newState: tcpEstablished, src: ap(local), dst: ap(remote), netns: ns, at: t0.Add(at)}
	}
	w.clients = []clientEnd{
		client("127.0.0.1:40001", "127.0.0.1:8080", hostNS, api, true, 0),             // api -> web, loopback
		client("127.0.0.1:40002", "127.0.0.1:8080", hostNS, api, true, 2*time.Second), // again
		client("172.18.0.2:40003", "172.18.0.1:8080", bridgeNS, worker, true, 0),      // worker -> web through the gateway
		client("127.0.0.1:40004", "127.0.0.1:9090", hostNS, web, true, 0),             // web -> api
		client("127.0.0.1:40005", "127.0.0.1:9090", hostNS, foreign, true, 0),         // another project: outside
		client("127.0.0.1:40006", "127.0.0.1:9090", hostNS, nil, false, 0),            // process gone: outside, warned
		client("127.0.0.1:40007", "127.0.0.1:8080", otherNS, api, true, 0),            // same tuple shape, other namespace
		client("127.0.0.1:40008", "127.0.0.1:8080", hostNS, web, true, 0),             // web -> web: inside one container
		client("127.0.0.1:40010", "127.0.0.1:9090", hostNS, web, true, 0),             // counted by the first sample
	}
	o.sampled = map[connID]bool{{server: ap("127.0.0.1:9090"), client: ap("127.0.0.1:40010"), ns: nsName(hostNS)}: true}
	w.sampledUntil = t0.Add(time.Second)
	w.servers = []tcpEvent{
		server("127.0.0.1:8080", "127.0.0.1:40001", hostNS, 0),
		server("127.0.0.1:8080", "127.0.0.1:40002", hostNS, 2*time.Second),
		server("172.18.0.1:8080", "172.18.0.2:40003", hostNS, 0),
		server("127.0.0.1:9090", "127.0.0.1:40004", hostNS, 0),
		server("127.0.0.1:9090", "127.0.0.1:40005", hostNS, 0),
		server("127.0.0.1:9090", "127.0.0.1:40006", hostNS, 0),
		server("127.0.0.1:8080", "127.0.0.1:40007", hostNS, 0),    // its client is in otherNS: outside
		server("127.0.0.1:8080", "127.0.0.1:40008", hostNS, 0),    // inside web
		server("192.168.1.9:8080", "203.0.113.7:5555", hostNS, 0), // another host
		server("127.0.0.1:7777", "127.0.0.1:40009", hostNS, 0),    // not a port of ours
		server("127.0.0.1:9090", "127.0.0.1:40010", hostNS, 0),
	}
	// Not yet: the server ends are younger than matchDelay.
	w.process(t0.Add(500*time.Millisecond), false)
	if len(o.edges) != 0 || len(w.pendingServers) != 11 {
		t.Fatalf("resolved too early: edges %v, pending %d", o.edges, len(w.pendingServers))
	}
	w.process(t0.Add(10*time.Second), true)
	inv := o.inventory("p")
	zeroTimes(inv)
	wantEdges := []Edge{
		{From: "api", To: "web", Port: 8080, Protocol: "tcp", Via: "loopback", Count: 2},
		{From: "web", To: "api", Port: 9090, Protocol: "tcp", Via: "loopback", Count: 1},
		{From: "worker", To: "web", Port: 8080, Protocol: "tcp", Via: "gateway", Count: 1},
	}
	if len(inv.Edges) != len(wantEdges) {
		t.Fatalf("edges %+v, want %+v", inv.Edges, wantEdges)
	}
	for i := range wantEdges {
		if inv.Edges[i] != wantEdges[i] {
			t.Errorf("edge %d: %+v, want %+v", i, inv.Edges[i], wantEdges[i])
		}
	}
	outside := map[string][]OutsideClient{}
	for _, s := range inv.Services {
		outside[s.Service] = s.OutsideClients
	}
	if oc := outside["api"]; len(oc) != 1 || oc[0].Port != 9090 || oc[0].Count != 2 || oc[0].Classes["loopback"] != 2 {
		t.Errorf("api outside clients: %+v, want 2 loopback on 9090", oc)
	}
	if oc := outside["web"]; len(oc) != 1 || oc[0].Port != 8080 || oc[0].Count != 2 || oc[0].Classes["loopback"] != 1 || oc[0].Classes["public"] != 1 {
		t.Errorf("web outside clients: %+v, want 1 loopback (other namespace) and 1 public on 8080", oc)
	}
	if w.unknownClients != 1 {
		t.Errorf("%d clients counted as unnamed, want 1", w.unknownClients)
	}
	if len(w.pendingClients) != 0 || len(w.pendingServers) != 0 { // 40010 included: taken, not counted
		t.Errorf("left pending: %d clients, %d servers", len(w.pendingClients), len(w.pendingServers))
	}
}
