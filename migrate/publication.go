package migrate

import (
	"fmt"
	"iter"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// decidePublication applies rules 2, 3 and 5 to every listener of every
// migrated service.
func (p *planner) decidePublication() error {
	forced := map[string]bool{}
	for _, pr := range p.opts.Publish {
		s := p.svcs[p.netOwner(pr.Service)]
		if s.action != plan.ActionMigrate {
			// not an error: a bot re-running with the same flags on
			// migrated files must get a no-op
			p.warn(fmt.Sprintf("--publish %s:%d has no effect: %s is not being migrated (%s)", pr.Service, pr.Port, s.name, s.action))
			continue
		}
		l := s.find(pr.Protocol, pr.Port)
		if l == nil {
			l = &listener{proto: pr.Protocol, port: pr.Port, addr: "0.0.0.0", assumed: true, usedBy: map[string]bool{}}
			s.listeners = append(s.listeners, l)
		}
		l.evidence = append(l.evidence, analysis.Evidence{Kind: "flag", Detail: fmt.Sprintf("--publish %s:%d", pr.Service, pr.Port)})
		forced[fmt.Sprintf("%s/%d/%s", s.name, pr.Port, pr.Protocol)] = true
	}
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		sort.SliceStable(s.listeners, func(i, j int) bool {
			a, b := s.listeners[i], s.listeners[j]
			if a.proto != b.proto {
				return a.proto < b.proto
			}
			return a.port < b.port
		})
		for _, l := range s.listeners {
			key := fmt.Sprintf("%s/%d/%s", n, l.port, l.proto)
			used := len(l.usedBy) > 0
			var users []string
			for u := range l.usedBy {
				users = append(users, u)
			}
			sort.Strings(users)
			publish := false
			switch {
			case forced[key]:
				publish, l.why = true, "named with --publish"
			case p.opts.Policy == PolicyNone:
				l.why = "--publish none"
			case p.opts.Policy == PolicyAll:
				publish, l.why = true, "--publish all"
			case l.outside:
				publish, l.why = true, "outside clients: "+l.outsideWhy
			case used && !l.runtime:
				// static evidence cannot rule out outside clients (publish.go)
				publish, l.why, l.narrow = true, usedInsideStatic(users, p.swarm()), !p.swarm()
			case used:
				l.why = "used only inside the stack (by " + strings.Join(users, ", ") + ") and no sign of outside clients: reached by service name, not published"
			default:
				publish, l.why = true, "not used by other services of the stack: published as it was reachable before"
			}
			loop := analysis.IsLoopback(l.addr)
			if loop {
				if l.bind != nil && l.bind.Node != nil {
					l.rewriteBind = true
					p.binds = append(p.binds, l)
				} else {
					l.blocker = fmt.Sprintf("listens on %s:%d only, which no published port and no other container can reach, and the bind address is not in the compose file", l.addr, l.port)
					p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: n,
						What: fmt.Sprintf("%s %s", n, l.blocker),
						Hint: "configure it to listen on 0.0.0.0 inside the container (its config file or a command-line flag); unhost then publishes it on 127.0.0.1 to keep its reach"})
				}
			}
			if publish && p.swarm() && !analysis.IsBindAll(l.addr) {
				publish = false
				l.why = fmt.Sprintf("swarm cannot publish a port on %s only (it publishes on every node address): left unpublished, reachable by service name inside the stack", l.addr)
				p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: n,
					What: fmt.Sprintf("%s port %d was reachable on %s only; swarm cannot publish it that narrowly, so it is not published", n, l.port, l.addr),
					Hint: "to reach it from the host, publish it with mode: host and restrict it with the node's firewall, or use docker exec / an SSH tunnel"})
			}
			if publish {
				l.decision = plan.DecisionPublish
				switch {
				case loop:
					l.publishIP = "127.0.0.1"
					if strings.Contains(l.addr, ":") {
						l.publishIP = "::1"
					}
				case l.narrow: // loopback only (publish.go)
					l.publishIP = narrowIP(l.addr)
				case !analysis.IsBindAll(l.addr):
					l.publishIP = l.addr
				case l.publishHint != "" && !analysis.IsBindAll(l.publishHint):
					l.publishIP = l.publishHint
					l.why += "; published on " + l.publishHint + " as its ports: entry asked"
				case p.opts.PublishAddress != "":
					l.publishIP = p.opts.PublishAddress
				}
				if l.count() > 100 {
					p.warn(fmt.Sprintf("%s publishes %d ports (%d-%d/%s): Docker runs one proxy process and firewall rules per port", n, l.count(), l.port, l.portEnd, l.proto))
				}
			} else {
				l.decision = plan.DecisionInternal
			}
		}
	}
	// two services holding one host port: a blocker, and nothing is
	// written (clash.go)
	p.clashed = p.checkClashes()
	p.warnVariablePorts()
	return nil
}

// warnVariablePorts warns of the ports: entries of migrated services whose
// published port depends on a variable: the edits leave them as written.
func (p *planner) warnVariablePorts() {
	if !p.anyFileHas("$") {
		return
	}
	for _, n := range p.names {
		if !p.migrated(n) {
			continue
		}
		for _, nr := range p.serviceNodes(n) {
			seq := load.MapValue(nr.Node, "ports")
			if seq == nil || seq.Kind != yaml.SequenceNode {
				continue
			}
			for _, item := range seq.Content {
				if !strings.Contains(item.Value, "$") && !(item.Kind == yaml.MappingNode && mappingHasVar(item)) {
					continue
				}
				if pcs, err := analysis.ParsePortItem(withoutVars(item)); err != nil || len(pcs) == 0 {
					continue
				}
				p.warn(fmt.Sprintf("%s: %s: the published port depends on a variable: left as written; check that it keeps the port's reach", n, nr.File.PosOf(item)))
			}
		}
	}
}

// checkReach is the migration's promise, checked on every decision: no
// listener becomes reachable on more addresses than its bind allowed. A
// loopback listener is published on loopback only; one bound to a specific
// address on that address (or loopback); one bound everywhere anywhere.
func (p *planner) checkReach() error {
	for n, l := range p.published() {
		ip := l.publishIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		switch {
		case analysis.IsBindAll(l.addr):
		case analysis.IsLoopback(l.addr) && analysis.IsLoopback(ip):
		case !analysis.IsLoopback(l.addr) && (ip == l.addr || analysis.IsLoopback(ip)):
		default:
			return fmt.Errorf("internal error: %s port %d is bound to %s but would be published on %s", n, l.port, l.addr, ip)
		}
	}
	return nil
}

// published yields the published listeners of the migrated services, by
// service name, in service order.
func (p *planner) published() iter.Seq2[string, *listener] {
	return func(yield func(string, *listener) bool) {
		for _, n := range p.names {
			s := p.svcs[n]
			if s.action != plan.ActionMigrate {
				continue
			}
			for _, l := range s.listeners {
				if l.decision == plan.DecisionPublish && !yield(n, l) {
					return
				}
			}
		}
	}
}
