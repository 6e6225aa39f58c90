package migrate

import (
	"sort"
	"strconv"
)

// owner is a service that listens on a host port before the migration,
// with the port its container sees.
type owner struct {
	name   string
	target int
}

// ownerIndex answers "who listens on proto/port on the host" without
// walking every service for every reference: single ports by key, port
// ranges (few) in a list.
type ownerIndex struct {
	exact  map[string][]ownerAt
	ranges []ownerRange
}

// ownerAt is an owner with its place in the project (service order, then
// the order of its ports: entries), so that answers come out in the order
// a walk over the services would give.
type ownerAt struct {
	svc, seq int
	o        owner
}

type ownerRange struct {
	proto  string
	lo, hi int
	base   int // container port of lo
	at     ownerAt
}

func portKey(proto string, port int) string { return proto + "/" + strconv.Itoa(port) }

// indexOwners builds the index from the listeners known now: those of
// host-network services (followers count as their owner), and the
// published ports of the others.
func (p *planner) indexOwners() {
	p.ownIdx = &ownerIndex{exact: map[string][]ownerAt{}}
	for i, n := range p.names {
		s := p.svcs[n]
		if s.follows != "" {
			continue
		}
		if s.facts.HostNetwork() {
			for _, l := range s.listeners {
				p.ownIdx.addListener(i, n, l)
			}
			continue
		}
		for j, pc := range s.facts.Published {
			pub := pc.Published
			if pub == "" {
				continue
			}
			a, b, ok := publishedRange(pub) // clash.go
			if !ok {
				continue
			}
			at := ownerAt{svc: i, seq: j, o: owner{n, int(pc.Target)}}
			// an entry without a protocol answers for both
			for _, proto := range protocolsOf(pc.Protocol) {
				if b == a {
					p.ownIdx.exact[portKey(proto, a)] = append(p.ownIdx.exact[portKey(proto, a)], at)
				} else {
					p.ownIdx.ranges = append(p.ownIdx.ranges, ownerRange{proto: proto, lo: a, hi: b, base: int(pc.Target), at: at})
				}
			}
		}
	}
}

func protocolsOf(proto string) []string {
	if proto == "" {
		return []string{"tcp", "udp"}
	}
	return []string{proto}
}

// addListener records a listener of host-network service name (at index i
// of the project's services). A service answers once per port, as its
// first listener covering it.
func (x *ownerIndex) addListener(i int, name string, l *listener) {
	at := ownerAt{svc: i, o: owner{name, 0}}
	if l.portEnd > l.port {
		x.ranges = append(x.ranges, ownerRange{proto: l.proto, lo: l.port, hi: l.portEnd, base: l.port, at: at})
		return
	}
	k := portKey(l.proto, l.port)
	x.exact[k] = append(x.exact[k], at)
}

// owners returns the services that listen on proto/port on the host before
// the migration, with the port their container sees, in service order.
func (p *planner) owners(proto string, port int) []owner {
	if p.ownIdx == nil {
		// asked before the references step (siblings.go): index what is
		// known now; resolveReferences indexes again
		p.indexOwners()
	}
	x := p.ownIdx
	found := append([]ownerAt(nil), x.exact[portKey(proto, port)]...)
	for _, r := range x.ranges {
		if r.proto == proto && port >= r.lo && port <= r.hi {
			at := r.at
			at.o.target = r.base + (port - r.lo)
			found = append(found, at)
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		if found[i].svc != found[j].svc {
			return found[i].svc < found[j].svc
		}
		return found[i].seq < found[j].seq
	})
	var out []owner
	last := -1
	for _, f := range found {
		s := p.svcs[f.o.name]
		if s.facts.HostNetwork() {
			// a host-network service answers once, with the port itself
			if f.svc == last {
				continue
			}
			last = f.svc
			f.o.target = port
		}
		out = append(out, f.o)
	}
	return out
}
