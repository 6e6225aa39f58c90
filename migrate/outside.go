package migrate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// resolveOutside reports addresses in env files, the project's .env and
// bind-mounted files that the migration changes the meaning of. unhost does
// not edit those files: each is a manual step with its file and line.
func (p *planner) resolveOutside() {
	wd := p.opts.WorkDir
	if wd == "" {
		wd = "."
	}
	for _, r := range analysis.OutsideRefs(p.c, wd) {
		where := r.Pos.String()
		if r.Service == "" {
			// the project's .env: its variables reach services through
			// interpolation; report once, for the migrated services
			owners := p.owners("tcp", r.Port)
			if len(owners) != 1 || !p.migrated(owners[0].name) {
				continue
			}
			to := owners[0].name + ":" + strconv.Itoa(owners[0].target)
			p.addRef(plan.Reference{To: owners[0].name, Port: r.Port, Kind: plan.RefOutside,
				Where: where, Field: r.Kind, Before: r.Token, After: to, Action: refActionManual,
				Reason: "in the project's .env, outside the compose files: unhost does not edit it"})
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Where: where,
				What: fmt.Sprintf("where a migrated service takes %s from .env, change it to %s", r.Token, to),
				Hint: "services on the host network keep using " + r.Token})
			continue
		}
		for _, u := range []string{r.Service} {
			if !p.onHostBefore(u) {
				continue
			}
			from := p.netOwner(u)
			owners := p.owners("tcp", r.Port)
			var to, what string
			switch {
			case len(owners) == 1 && owners[0].name == from:
				if l := p.svcs[from].find("tcp", r.Port); l != nil && analysis.IsLoopback(r.Host) && analysis.IsLoopback(l.addr) && l.bind == nil && p.migrated(from) {
					p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: u, Where: where,
						What: fmt.Sprintf("%s listens on %s:%d only; %s (a %s) names %s: if that is its bind address, change it to 0.0.0.0:%d", from, l.addr, r.Port, r.Pos.File, r.Kind, r.Token, r.Port)})
				}
				continue
			case len(owners) == 1 && p.migrated(from) && !p.onHostAfter(owners[0].name):
				to = owners[0].name + ":" + strconv.Itoa(owners[0].target)
				what = fmt.Sprintf("change %s to %s", r.Token, to)
				if l := p.svcs[owners[0].name].find("tcp", r.Port); l != nil {
					l.usedBy[u] = true
				}
			case len(owners) == 1 && p.migrated(owners[0].name) && p.onHostAfter(from):
				if l := p.svcs[owners[0].name].find("tcp", r.Port); l != nil {
					l.usedBy[u] = true
					l.outside = true
					if l.outsideWhy == "" {
						l.outsideWhy = u + " stays on the host network and uses it (" + where + ")"
					}
				}
				continue
			case len(owners) == 1 && p.migrated(from):
				to = "host.docker.internal:" + strconv.Itoa(r.Port)
				what = fmt.Sprintf("change %s to %s (%s stays on the host network) and give %s extra_hosts: [\"host.docker.internal:host-gateway\"]", r.Token, to, owners[0].name, u)
			case len(owners) == 0 && p.migrated(from):
				to = "host.docker.internal:" + strconv.Itoa(r.Port)
				what = fmt.Sprintf("if %s is a service on the host, change it to %s and give %s extra_hosts: [\"host.docker.internal:host-gateway\"]", r.Token, to, u)
			case len(owners) > 1 && p.migrated(from):
				what = fmt.Sprintf("%s: several services listen on port %d: point it at the right one by service name", r.Token, r.Port)
			default:
				continue
			}
			p.addRef(plan.Reference{From: u, To: strings.Split(to, ":")[0], Port: r.Port, Kind: plan.RefOutside,
				Where: where, Field: r.Kind, Before: r.Token, After: to, Action: refActionManual,
				Reason: "in a file outside the compose files (" + r.Kind + "): unhost does not edit it"})
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: u, Where: where, What: what,
				Hint: "this " + r.Kind + " is outside the compose files, which is all unhost edits"})
		}
	}
}
