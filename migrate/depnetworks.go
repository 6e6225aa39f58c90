package migrate

import (
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
)

// Networks and followers (issue 10, items 9 and 10).
//
// A migrated service joins every network that a service it depends on is
// on: depends_on says it talks to it, whether or not an address in the
// files shows how. And the listeners of a follower (network_mode:
// service:X) are X's to publish: they share one network namespace.

// serviceNetworks returns the networks a service of the project is on:
// its networks: keys, or default.
func projectNetworks(s types.ServiceConfig) []string {
	if len(s.Networks) == 0 {
		return []string{"default"}
	}
	out := make([]string, 0, len(s.Networks))
	for n := range s.Networks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// missingNetworks returns the networks of deps (each a list of networks)
// that have is not on, sorted, without duplicates.
func missingNetworks(have []string, deps [][]string) []string {
	in := map[string]bool{}
	for _, h := range have {
		in[h] = true
	}
	var out []string
	for _, d := range deps {
		for _, n := range d {
			if !in[n] {
				in[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// joinDependencyNetworks puts each migrated service on the networks of the
// services it depends on (hook after planner.decideNetworks).
func (p *planner) joinDependencyNetworks() {
	all := p.all
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != "migrate" {
			continue
		}
		cfg, ok := all[n]
		if !ok {
			continue
		}
		var deps [][]string
		var names []string
		for d := range cfg.DependsOn {
			ds := p.svcs[d]
			dc, ok := all[d]
			switch {
			case ds == nil || !ok || p.onHostAfter(d):
				continue // on the host: reached through the host, not a network
			case ds.action == "migrate":
				nets := ds.networks
				if len(nets) == 0 {
					nets = []string{"default"}
				}
				deps = append(deps, nets)
			case ds.follows != "":
				continue
			default:
				deps = append(deps, projectNetworks(dc))
			}
			names = append(names, d)
		}
		have := s.networks
		if len(have) == 0 {
			have = []string{"default"}
		}
		add := missingNetworks(have, deps)
		if len(add) == 0 {
			continue
		}
		sort.Strings(names)
		s.networks = append(have, add...)
		s.netReason += "; joins " + strings.Join(add, ", ") + " to reach " + strings.Join(names, ", ") + " (depends_on)"
	}
}

// followerListeners gives a host-network service the listeners of its
// followers: observed ones from the inventory, else those their
// configuration declares (expose:, listener lists). The analysis gathers
// listeners of host-network services only.
func (p *planner) followerListeners() {
	all := p.all
	for _, n := range p.names {
		f := p.svcs[n]
		if f.follows == "" {
			continue
		}
		owner := p.svcs[p.netOwner(n)]
		if owner == nil || !owner.facts.HostNetwork() {
			continue
		}
		if so := p.inventoryOf(n); so != nil {
			for _, ol := range so.Listeners {
				if owner.find(ol.Protocol, ol.Port) != nil {
					continue
				}
				owner.listeners = append(owner.listeners, &listener{proto: ol.Protocol, port: ol.Port, addr: ol.Address, runtime: true, usedBy: map[string]bool{}, via: n,
					evidence: []analysis.Evidence{{Kind: "runtime", Detail: "observed " + ol.Protocol + " listener of " + n + " on " + ol.Address}}})
			}
			continue
		}
		if p.observed(owner.name) || len(f.facts.Listeners) > 0 {
			continue // observed, or the analysis gave them (gatherListeners)
		}
		cfg := all[n]
		for _, e := range cfg.Expose {
			sl, ok := exposeListener(e)
			if ok {
				owner.addStatic(&sl, n)
			}
		}
		for _, sl := range listenURLPorts(cfg) {
			sl := sl
			owner.addStatic(&sl, n)
		}
	}
}

// exposeListener reads one expose: entry ("8080", "8080/udp", "8000-8010").
func exposeListener(e string) (analysis.StaticListener, bool) {
	pcs, err := types.ParsePortConfig(e)
	if err != nil || len(pcs) == 0 {
		return analysis.StaticListener{}, false
	}
	proto := pcs[0].Protocol
	if proto == "" {
		proto = "tcp"
	}
	sl := analysis.StaticListener{Protocol: proto, Port: int(pcs[0].Target), Evidence: analysis.Evidence{Kind: "expose", Detail: "expose " + e}}
	if len(pcs) > 1 {
		sl.PortEnd = int(pcs[len(pcs)-1].Target)
	}
	return sl, true
}

// noOutsideNeeded reports whether there is evidence that a service (and
// its followers) needs nothing outside the stack: an observation of its
// outbound connections that found none (Options.NoOutbound). Without it,
// an internal network (no route out) could cut it off: internal: true is
// never chosen for lack of evidence (issue 10, item 9).
func (p *planner) noOutsideNeeded(name string) bool {
	if !p.opts.NoOutbound[name] {
		return false
	}
	for _, m := range p.names {
		if p.svcs[m].follows == name && !p.opts.NoOutbound[m] {
			return false
		}
	}
	return true
}
