package detect

import (
	"net/netip"
	"testing"
)

// Connected UDP sockets name their peer, so sampling records UDP edges
// from them: on loopback within a namespace, to a bridge container's
// address, and to a host-network service through the gateway. An
// unconnected client (sendto) leaves nothing to see.
func TestUDPEdges(t *testing.T) {
	ap := netip.MustParseAddrPort
	host := "net:[1]"
	bridgeNS := "net:[2]"
	dns := &ctr{name: "p-dns-1", project: "p", service: "dns", networkMode: "host", hostNet: true}
	app := &ctr{name: "p-app-1", project: "p", service: "app", networkMode: "host", hostNet: true}
	stats := &ctr{name: "p-stats-1", project: "p", service: "stats", networkMode: "p_default", ips: []netip.Addr{netip.MustParseAddr("172.18.0.3")}, gateways: []netip.Addr{netip.MustParseAddr("172.18.0.1")}}
	o := newObserver(Options{}, []*ctr{dns, app, stats})
	owners := map[uint64]owner{
		1: {c: dns, pid: 10}, 2: {c: app, pid: 20}, 3: {c: stats, pid: 30},
		4: {c: app, pid: 20}, 5: {c: stats, pid: 30}, 6: {c: app, pid: 20},
	}
	socks := map[string][]sock{
		host: {
			{proto: "udp", local: ap("0.0.0.0:53"), remote: ap("0.0.0.0:0"), state: stateClose, inode: 1},
			{proto: "udp", local: ap("127.0.0.1:40000"), remote: ap("127.0.0.1:53"), state: stateEstablished, inode: 2},
			{proto: "udp", local: ap("10.0.0.5:40001"), remote: ap("172.18.0.3:8125"), state: stateEstablished, inode: 4},
			{proto: "udp", local: ap("0.0.0.0:40002"), remote: ap("0.0.0.0:0"), state: stateClose, inode: 6}, // sendto client: a bound socket
		},
		bridgeNS: {
			{proto: "udp", local: ap("0.0.0.0:8125"), remote: ap("0.0.0.0:0"), state: stateClose, inode: 3},
			{proto: "udp", local: ap("172.18.0.3:40003"), remote: ap("172.18.0.1:53"), state: stateEstablished, inode: 5},
		},
	}
	nsOf := map[*ctr]string{dns: host, app: host, stats: bridgeNS}
	o.attribute(socks, owners, nsOf)
	inv := o.inventory("p")
	stripStats(inv)
	want := []Edge{
		{From: "app", To: "dns", Port: 53, Protocol: "udp", Via: "loopback"},
		{From: "app", To: "stats", Port: 8125, Protocol: "udp", Via: "container-address"},
		{From: "stats", To: "dns", Port: 53, Protocol: "udp", Via: "gateway"},
	}
	if len(inv.Edges) != len(want) {
		t.Fatalf("edges %+v, want %+v", inv.Edges, want)
	}
	for i := range want {
		if inv.Edges[i] != want[i] {
			t.Errorf("edge %d: %+v, want %+v", i, inv.Edges[i], want[i])
		}
	}
}
