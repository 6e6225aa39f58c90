package migrate

import (
	"slices"
	"sort"
	"strings"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// decideNetworks applies rule 6.
func (p *planner) decideNetworks() {
	internalName := "internal"
	for _, f := range p.c.Files {
		if nets := load.MapValue(f.Root, "networks"); nets != nil {
			if k, _ := load.MapEntry(nets, internalName); k != nil {
				internalName = "unhost_internal"
			}
		}
	}
	// a service's group: itself and its followers, whose configuration
	// counts as its own; and the references each service is an end of
	group := map[string][]string{}
	for _, m := range p.names {
		group[m] = append(group[m], m)
		if f := p.svcs[m].follows; f != "" && f != m {
			group[f] = append(group[f], m)
		}
	}
	refsOf := p.referencesByEnd()
	public := map[string]bool{}
	var internalOnly []string
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		isPublic, why := false, ""
		for _, l := range s.listeners {
			if l.decision == plan.DecisionPublish {
				isPublic, why = true, "publishes ports"
				break
			}
		}
		if len(s.listeners) == 0 {
			// nothing is known of it: cutting it off from the outside
			// world (internal: true has no route out) could break it
			isPublic, why = true, "no listener is known, so nothing tells that it needs no outbound access"
		}
		for _, m := range group[n] {
			f := p.svcs[m]
			if f.external {
				isPublic, why = true, f.externalWhy
			}
			if f.hostRefs {
				isPublic, why = true, "reaches services on the host"
			}
		}
		if !isPublic && !p.noOutsideNeeded(n) { // internal only with evidence (depnetworks.go)
			isPublic, why = true, "nothing shows that it needs no access outside the stack (its outbound connections were not observed)"
		}
		if !isPublic {
			// a client or server that is not migrated sits on the default
			// network: stay there with it
			for _, i := range refsOf[n] {
				r := p.plan.References[i]
				if r.Kind != plan.RefService && r.Kind != plan.RefOutside || r.Action == refActionManual && r.Kind == plan.RefService || r.From == "" || p.svcs[r.To] == nil {
					continue
				}
				other := ""
				if r.To == n {
					other = p.netOwner(r.From)
				} else if p.netOwner(r.From) == n {
					other = r.To
				}
				if other != "" && other != n && !p.migrated(other) {
					isPublic, why = true, "talks to "+other+", which is not migrated and stays on the default network"
				}
			}
		}
		if isPublic {
			public[n] = true
			s.netReason = why + ": on the default network"
		} else {
			internalOnly = append(internalOnly, n)
		}
	}
	defer p.joinPeerNetworks()
	if len(internalOnly) == 0 {
		return
	}
	// public services that talk to internal-only ones join both
	peers := map[string]bool{}
	internalSet := map[string]bool{}
	for _, n := range internalOnly {
		internalSet[n] = true
	}
	for _, r := range p.plan.References {
		if r.Kind != plan.RefService && r.Kind != plan.RefOutside || r.From == "" || p.svcs[r.To] == nil {
			continue
		}
		from := p.netOwner(r.From)
		if internalSet[r.To] && public[from] {
			peers[from] = true
		}
		if internalSet[from] && public[r.To] {
			peers[r.To] = true
		}
	}
	if inv := p.opts.Inventory; inv != nil {
		for _, e := range inv.Edges {
			from, to := p.netOwner(e.From), p.netOwner(e.To)
			if internalSet[to] && public[from] {
				peers[from] = true
			}
			if internalSet[from] && public[to] {
				peers[to] = true
			}
		}
	}
	members := append([]string(nil), internalOnly...)
	for _, n := range p.names {
		if peers[n] {
			members = append(members, n)
			s := p.svcs[n]
			s.networks = []string{"default", internalName}
			s.netReason += "; also on " + internalName + " to reach " + strings.Join(p.internalPeers(n, internalSet, refsOf[n]), ", ")
		}
	}
	sort.Strings(members)
	for _, n := range internalOnly {
		s := p.svcs[n]
		s.networks = []string{internalName}
		s.netReason = "publishes nothing and names nothing outside the stack: only on the internal network, with no route out"
	}
	p.plan.Networks = append(p.plan.Networks, plan.NetworkPlan{Name: internalName, Internal: true, Services: members,
		Reason: "services that only the stack uses: no outbound route, no published ports (internal: true)"})
}

// referencesByEnd indexes the plan's references by the services at their
// ends (the client's network owner, and what it reaches), in plan order.
func (p *planner) referencesByEnd() map[string][]int {
	out := map[string][]int{}
	for i, r := range p.plan.References {
		from := p.netOwner(r.From)
		out[from] = append(out[from], i)
		if r.To != from {
			out[r.To] = append(out[r.To], i)
		}
	}
	return out
}

// internalPeers lists the internal-only services that n reaches or is
// reached by; refs are the indexes of the references n is an end of.
func (p *planner) internalPeers(n string, internalSet map[string]bool, refs []int) []string {
	var out []string
	for _, i := range refs {
		r := p.plan.References[i]
		from := p.netOwner(r.From)
		if from == n && internalSet[r.To] {
			out = append(out, r.To)
		}
		if r.To == n && internalSet[from] {
			out = append(out, from)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// joinPeerNetworks puts a migrated service on the networks of the services
// that are not migrated and that it talks to (either way), so that names
// resolve between them: a bridge service on a network of its own keeps
// reaching a migrated database.
func (p *planner) joinPeerNetworks() {
	all := p.all
	netsOf := func(name string) []string {
		s, ok := all[name]
		if !ok || len(s.Networks) == 0 {
			return []string{"default"}
		}
		var out []string
		for n := range s.Networks {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	for _, r := range p.plan.References {
		if r.Kind != plan.RefService || r.Action != refActionRewrite {
			continue
		}
		from := p.netOwner(r.From)
		var m, other string
		switch {
		case p.migrated(r.To) && !p.migrated(from) && !p.onHostAfter(from):
			m, other = r.To, from
		case p.migrated(from) && !p.migrated(r.To) && !p.onHostAfter(r.To):
			m, other = from, r.To
		default:
			continue
		}
		s := p.svcs[m]
		have := s.networks
		if len(have) == 0 {
			have = []string{"default"}
		}
		added := false
		for _, n := range netsOf(other) {
			found := false
			for _, h := range have {
				found = found || h == n
			}
			if !found {
				have = append(have, n)
				added = true
			}
		}
		if added {
			s.networks = have
			s.netReason += "; joins " + strings.Join(netsOf(other), ", ") + " to reach " + other
		}
	}
}
