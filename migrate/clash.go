package migrate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// Port ownership and clashes (issue 10, item 8). A port belongs to the
// service whose configuration binds it: a service that only names the port
// (NEXT_PUBLIC_API_URL=http://localhost:8080 in a front end, the port an
// API listens on) does not listen there. Two services that would both hold
// one host port after the migration cannot run together: that is a
// blocker, and no file is written.

// portClaim is a host port a service holds after the migration.
type portClaim struct {
	Service string
	Proto   string
	Lo, Hi  int
}

// clashes returns, for every host port claimed by more than one service,
// "PORT/PROTO" and the services, sorted.
func clashes(claims []portClaim) map[string][]string {
	by := map[string]map[string]bool{}
	for _, c := range claims {
		for p := c.Lo; p <= max(c.Lo, c.Hi); p++ {
			k := strconv.Itoa(p) + "/" + c.Proto
			if by[k] == nil {
				by[k] = map[string]bool{}
			}
			by[k][c.Service] = true
		}
	}
	out := map[string][]string{}
	for k, m := range by {
		if len(m) < 2 {
			continue
		}
		var s []string
		for n := range m {
			s = append(s, n)
		}
		sort.Strings(s)
		out[k] = s
	}
	return out
}

// onlyNamed reports whether all evidence of a listener is a service naming
// the port (an advertised or public URL), none of it a bind.
func onlyNamed(ev []analysis.Evidence) bool {
	for _, e := range ev {
		if !strings.Contains(e.Detail, " advertises ") {
			return false
		}
	}
	return len(ev) > 0
}

// disownNamedPorts drops from host-network services the ports they only
// name, when another service of the stack binds them (hook in
// planner.supplementFacts, before the gate counts listeners).
func (p *planner) disownNamedPorts() {
	binds := func(other string, proto string, port int) bool {
		o := p.svcs[other]
		if o.facts.HostNetwork() {
			l := o.find(proto, port)
			return l != nil && !onlyNamed(l.evidence)
		}
		return len(p.owners(proto, port)) > 0 && containsOwner(p.owners(proto, port), other)
	}
	for _, n := range p.names {
		s := p.svcs[n]
		var keep []*listener
		for _, l := range s.listeners {
			drop := ""
			if onlyNamed(l.evidence) && !l.runtime {
				for _, m := range p.names {
					if m != n && p.svcs[m].follows == "" && binds(m, l.proto, l.port) {
						drop = m
						break
					}
				}
			}
			if drop == "" {
				keep = append(keep, l)
				continue
			}
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: n,
				What: fmt.Sprintf("%s names port %d, which %s binds: it is %s's port, not %s's (check where %s's clients are told to connect)", n, l.port, drop, drop, n, n)})
		}
		s.listeners = keep
	}
}

func containsOwner(os []owner, name string) bool {
	for _, o := range os {
		if o.name == name {
			return true
		}
	}
	return false
}

// checkClashes turns two services holding one host port after the
// migration into a blocker (hook at the end of planner.decidePublication).
// It reports whether there is any: then no file is written.
func (p *planner) checkClashes() bool {
	var claims []portClaim
	p.eachPublished(func(n string, l *listener) {
		claims = append(claims, portClaim{n, l.proto, l.port, l.portEnd})
	})
	for _, n := range p.names {
		s := p.svcs[n]
		switch {
		case s.action == plan.ActionMigrate:
		case s.facts.HostNetwork() && s.follows == "":
			for _, l := range s.listeners {
				claims = append(claims, portClaim{n, l.proto, l.port, l.portEnd})
			}
		case !s.facts.HostNetwork() && s.follows == "":
			for _, pc := range s.facts.Published {
				a, b, ok := publishedRange(pc.Published)
				if !ok {
					continue
				}
				proto := pc.Protocol
				if proto == "" {
					proto = "tcp"
				}
				claims = append(claims, portClaim{n, proto, a, b})
			}
		}
	}
	cl := clashes(claims)
	keys := make([]string, 0, len(cl))
	for k := range cl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	clashed := false
	for _, k := range keys {
		moved := false
		for _, n := range cl[k] {
			moved = moved || p.migrated(n)
		}
		if !moved {
			continue // they held it before: not the migration's doing
		}
		clashed = true
		p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: cl[k][0],
			What: fmt.Sprintf("%s would all hold host port %s after the migration: they cannot run together, so no file is written", strings.Join(cl[k], " and "), k),
			Hint: "a port belongs to the service whose configuration binds it: remove it from the other's configuration, or --publish it on another host port by hand"})
	}
	return clashed
}

// publishedRange reads a ports: entry's published host port or range
// ("8080", "8000-8010").
func publishedRange(pub string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(pub, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
	}
	return lo, hi, true
}
