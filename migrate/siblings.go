package migrate

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// Localhost references to a sibling whose port is not known (issue 10,
// item 6). KAFKA_ZOOKEEPER_CONNECT=127.0.0.1:2181 in kafka, next to a
// zookeeper service whose configuration says no port: no service is known
// to listen on 2181, yet zookeeper plausibly does. The reference is then
// evidence of the sibling's listener, picked by the variable's name, the
// image's documented port and depends_on. When several siblings fit, it is
// a blocker: the host gateway is never the silent fallback.

// siblingCandidate is a host-network service whose listeners are unknown.
type siblingCandidate struct {
	Name       string
	Image      string
	DependedOn bool // the referring service depends_on it
	// Documented is true when the image's documented ports include the
	// referenced port.
	Documented bool
}

// siblingWords returns the words a service or image is known by, in the
// upper-case underscore form of variable names: "zookeeper",
// "bitnami/zookeeper:3.9" -> ZOOKEEPER.
func siblingWords(c siblingCandidate) []string {
	norm := func(s string) string {
		return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
	}
	out := []string{norm(c.Name)}
	if c.Image != "" {
		base := path.Base(analysis.ImageName(c.Image))
		if b := norm(base); b != out[0] {
			out = append(out, b)
		}
	}
	return out
}

// pickSibling chooses the sibling a reference in field names. It returns
// the pick, or the candidates when several fit equally (ambiguous), or
// neither when none fits.
func pickSibling(field string, cands []siblingCandidate) (string, []string) {
	key := "_" + strings.ToUpper(strings.TrimPrefix(field, "environment.")) + "_"
	var strong, weak []string
	for _, c := range cands {
		named := false
		for _, w := range siblingWords(c) {
			named = named || strings.Contains(key, "_"+w+"_")
		}
		switch {
		case named || c.Documented:
			strong = append(strong, c.Name)
		case c.DependedOn:
			weak = append(weak, c.Name)
		}
	}
	sort.Strings(strong)
	sort.Strings(weak)
	switch {
	case len(strong) == 1:
		return strong[0], nil
	case len(strong) > 1:
		return "", strong
	case len(weak) == 1:
		return weak[0], nil
	case len(weak) > 1:
		return "", weak
	}
	return "", nil
}

// resolveSiblings gives siblings the ports that localhost references name
// (hook in planner.supplementFacts, before the gate): see above.
func (p *planner) resolveSiblings() {
	all := p.all
	for _, n := range p.names {
		s := p.svcs[n]
		if !p.onHostBefore(n) {
			continue
		}
		deps := all[n].DependsOn
		for i := range s.facts.Refs {
			r := &s.facts.Refs[i]
			if r.Role != analysis.RoleConnect || r.Port <= 0 || r.Field == "healthcheck.test" || !analysis.IsLocalHost(r.Host) || len(p.owners("tcp", r.Port)) > 0 {
				continue
			}
			var cands []siblingCandidate
			for _, m := range p.names {
				o := p.svcs[m]
				if m == n || m == p.netOwner(n) || o.follows != "" || !o.facts.HostNetwork() || len(o.listeners) > 0 {
					continue
				}
				doc := false
				for _, e := range analysis.KnownImagePorts(o.facts.Image) {
					doc = doc || e == strconv.Itoa(r.Port)
				}
				_, dep := deps[m]
				cands = append(cands, siblingCandidate{Name: m, Image: o.facts.Image, DependedOn: dep, Documented: doc})
			}
			pick, amb := pickSibling(r.Field, cands)
			switch {
			case pick != "":
				o := p.svcs[pick]
				o.addStatic(&analysis.StaticListener{Protocol: "tcp", Port: r.Port, Evidence: analysis.Evidence{Kind: "reference", Where: r.Pos.String(),
					Detail: fmt.Sprintf("%s of %s names %s, and %s is the sibling it means (by name, documented port or depends_on)", r.Field, n, r.Token, pick)}}, "")
			case len(amb) > 0:
				if p.ambiguous == nil {
					p.ambiguous = map[*analysis.AddressRef][]string{}
				}
				p.ambiguous[r] = amb
				p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: n, Where: r.Pos.String(),
					What: fmt.Sprintf("%s names %s, and no service is known to listen on port %d: %s could each be it", r.Field, r.Token, r.Port, strings.Join(amb, ", ")),
					Hint: fmt.Sprintf("run `unhost detect` on the host, or --publish SERVICE:%d for the one that serves it", r.Port)})
			}
		}
	}
}

// ambiguousRef reports a reference that names one of several siblings as
// a manual reference (hook in planner.resolveRef, before the host gateway
// fallback). It returns false when the reference is not ambiguous.
func (p *planner) ambiguousRef(r *analysis.AddressRef, ref plan.Reference) bool {
	names := p.ambiguous[r]
	if names == nil {
		return false
	}
	ref.Kind, ref.Action = plan.RefAmbiguous, "manual"
	ref.Reason = fmt.Sprintf("no service is known to listen on port %d, and %s could each serve it: not pointed at the host gateway", r.Port, strings.Join(names, ", "))
	p.plan.References = append(p.plan.References, ref)
	return true
}
