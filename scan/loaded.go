package scan

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
)

// scanLoaded checks a project that Compose loaded: effective values come
// from the loaded project (overrides, extends, interpolation, !reset),
// positions from the files.
func scanLoaded(c *load.Compose) []Finding {
	v := loadedView(c)
	out := v.check()
	out = append(out, checkLoopback(c, v)...)
	return out
}

func loadedView(c *load.Compose) *view {
	hostKeys := analysis.ProjectHostNetworkKeys(c.Project)
	v := &view{services: map[string]*service{}, hostNets: hostKeys, containers: map[string]string{}}
	needPlan := false
	for name, s := range c.Project.AllServices() {
		sv := &service{name: name, mode: s.NetworkMode, hasPorts: len(s.Ports) > 0}
		for _, nr := range c.ServiceNodes(name) {
			sv.parts = append(sv.parts, part{file: nr.File.Path, node: nr.Node, via: nr.Via})
		}
		for n := range s.Networks {
			sv.networks = append(sv.networks, n)
		}
		sort.Strings(sv.networks)
		if s.ContainerName != "" {
			v.containers[s.ContainerName] = name
		}
		needPlan = needPlan || analysis.OnHostNetwork(s, hostKeys)
		v.services[name] = sv
	}
	if needPlan {
		v.fix = planFixer(c)
	}
	return v
}

// migratePlan is what `unhost migrate` would decide, with default options.
type migratePlan struct {
	p     *plan.Plan
	facts *analysis.Facts // the analysis the planner ran
}

// planFixer runs the planner. It does not recover from a panic: that is a
// bug, which scanProject reports as a finding of the project's files (the
// planner does not panic on any file of the corpus).
func planFixer(c *load.Compose) fixer {
	res, err := migrate.Migrate(c, migrate.Options{Policy: migrate.PolicyAuto})
	if err != nil || res == nil || res.Plan == nil {
		return nil
	}
	return &migratePlan{p: res.Plan, facts: res.Facts}
}

func (p *migratePlan) serviceAction(name string) (string, string) {
	for _, s := range p.p.Services {
		if s.Name == name {
			return string(s.Action), s.Reason
		}
	}
	return "", ""
}

func (p *migratePlan) reference(where, token string) (string, string) {
	for _, r := range p.p.References {
		if r.Where == where && r.Before == token {
			return r.Action, r.Reason
		}
	}
	return "", ""
}

// checkLoopback finds localhost references to a port that another service
// of the project listens on or publishes.
func checkLoopback(c *load.Compose, v *view) []Finding {
	var pl *migratePlan
	if p, ok := v.fix.(*migratePlan); ok {
		pl = p
	}
	// The planner's analysis, where it ran: the same facts (no image
	// metadata in either), computed once.
	var facts *analysis.Facts
	if pl != nil && pl.facts != nil {
		facts = pl.facts
	} else {
		facts = analysis.Analyze(c, nil)
	}
	var out []Finding
	for _, name := range facts.Names() {
		sf := facts.Services[name]
		for _, r := range sf.Refs {
			if r.Port <= 0 || !analysis.IsLoopback(r.Host) || r.File == nil {
				continue
			}
			if r.Role != analysis.RoleConnect && r.Role != analysis.RoleServerList {
				continue
			}
			if serves(sf, r.Port) {
				continue // its own port
			}
			var targets []string
			for _, other := range facts.Names() {
				if other != name && serves(facts.Services[other], r.Port) {
					targets = append(targets, other)
				}
			}
			if len(targets) == 0 {
				continue
			}
			fixed := false
			advice := fmt.Sprintf("use the service name instead (%s:%d)", targets[0], r.Port)
			if len(targets) > 1 {
				advice = fmt.Sprintf("use the name of the service meant (%s) instead", strings.Join(targets, " or "))
			}
			if pl != nil {
				action, reason := pl.reference(r.Pos.String(), r.Token)
				switch action {
				case "rewrite":
					fixed = true
					advice += "; `unhost migrate` rewrites it"
				case "":
					advice += "; `unhost migrate` does not change it"
				default:
					advice += "; `unhost migrate` leaves it (" + action + ": " + reason + ")"
				}
			} else {
				advice += "; `unhost migrate` does not change it"
			}
			out = append(out, Finding{Rule: RuleLoopbackReference, File: r.File.Path, Line: r.Pos.Line, Col: r.Pos.Col, Services: []string{name},
				format: fmt.Sprintf("{services} reach{es} %s at %s (%s): that works only while both share the host's network; on a bridge network localhost is the container itself; %s",
					strings.Join(targets, " or "), migrate.Redact(r.Token), r.Field, advice),
				Fix: advice, FixedByMigrate: fixed})
		}
	}
	return out
}

// serves reports whether a service listens on port (host network) or
// publishes it.
func serves(s *analysis.ServiceFacts, port int) bool {
	for _, l := range s.Listeners {
		if l.Port == port || l.PortEnd > 0 && port >= l.Port && port <= l.PortEnd {
			return true
		}
	}
	for _, p := range s.Published {
		lo, hi, ok := strings.Cut(p.Published, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if ok {
			if n, err := strconv.Atoi(hi); err == nil {
				b = n
			}
		}
		if port >= a && port <= b {
			return true
		}
	}
	return false
}
