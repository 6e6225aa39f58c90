package migrate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// gatherListeners merges the static listeners of every host-network
// service, by protocol and port.
func (p *planner) gatherListeners() {
	for _, n := range p.names {
		s := p.svcs[n]
		if !s.facts.HostNetwork() && s.follows == "" {
			continue
		}
		owner := p.svcs[p.netOwner(n)]
		if owner == nil {
			continue
		}
		for i := range s.facts.Listeners {
			sl := &s.facts.Listeners[i]
			via := ""
			if owner != s {
				via = n
			}
			owner.addStatic(sl, via)
		}
	}
}

func (s *svc) find(proto string, port int) *listener {
	for _, l := range s.listeners {
		if l.covers(proto, port) {
			return l
		}
	}
	return nil
}

// addStatic merges a static listener into the service's listeners; it
// returns the listener when it is a new one.
func (s *svc) addStatic(sl *analysis.StaticListener, via string) (created *listener) {
	l := s.find(sl.Protocol, sl.Port)
	if l == nil || (sl.PortEnd > 0 && l.portEnd != sl.PortEnd) {
		l = &listener{proto: sl.Protocol, port: sl.Port, portEnd: sl.PortEnd, assumed: true, addr: "0.0.0.0", usedBy: map[string]bool{}, via: via}
		s.listeners = append(s.listeners, l)
		created = l
	}
	if !hasEvidence(l.evidence, sl.Evidence) {
		l.evidence = append(l.evidence, sl.Evidence)
	}
	if sl.OutsideHint {
		l.outside = true
		if l.outsideWhy == "" {
			l.outsideWhy = "listed in the ignored ports: of the service (" + sl.Evidence.Where + ")"
		}
		if sl.PublishIP != "" && l.publishHint == "" {
			l.publishHint = sl.PublishIP
		}
	}
	if sl.Address != "" && !l.runtime {
		if l.assumed || analysis.IsLoopback(sl.Address) {
			l.addr = sl.Address
			l.assumed = false
		}
		if sl.Node != nil && analysis.IsLoopback(sl.Address) {
			l.bind = sl
		}
	}
	return created
}

// addListener adds a listener learnt while resolving references (the port
// a healthcheck connects to) and keeps the owner index current.
func (p *planner) addListener(s *svc, sl *analysis.StaticListener) {
	if l := s.addStatic(sl, ""); l != nil && p.ownIdx != nil {
		p.ownIdx.addListener(p.pos[s.name], s.name, l)
	}
}

// applyInventory replaces static guesses by what was observed.
func (p *planner) applyInventory() {
	inv := p.opts.Inventory
	if inv == nil {
		return
	}
	p.plan.Evidence = plan.EvidenceRuntime
	for _, so := range inv.Services {
		s := p.svcs[so.Service]
		if s == nil {
			p.warn(fmt.Sprintf("inventory names service %s, which the compose files do not define", so.Service))
			continue
		}
		if !s.facts.HostNetwork() {
			continue
		}
		static := s.listeners
		s.listeners = nil
		for _, ol := range so.Listeners {
			l := &listener{proto: ol.Protocol, port: ol.Port, addr: ol.Address, runtime: true, usedBy: map[string]bool{}}
			ev := analysis.Evidence{Kind: "runtime", Detail: fmt.Sprintf("observed %s listener on %s port %d", ol.Protocol, ol.Address, ol.Port)}
			if ol.Process != "" {
				ev.Detail += " (" + ol.Process + ")"
			}
			l.evidence = append(l.evidence, ev)
			for _, st := range static {
				if st.covers(ol.Protocol, ol.Port) {
					l.evidence = append(l.evidence, st.evidence...)
					if st.outside {
						l.outside, l.outsideWhy, l.publishHint = true, st.outsideWhy, st.publishHint
					}
					if st.bind != nil {
						l.bind = st.bind
					}
					l.via = st.via
				}
			}
			if l.bind == nil && analysis.IsLoopback(ol.Address) {
				// a literal bind may sit in config without a port beside it
				for i := range s.facts.Listeners {
					sl := &s.facts.Listeners[i]
					if sl.Node != nil && analysis.IsLoopback(sl.Address) && (sl.Port == 0 || sl.Port == ol.Port) {
						l.bind = sl
					}
				}
			}
			if l.bind == nil && analysis.IsLoopback(ol.Address) {
				// the process bound 127.0.0.1:P and the service's own
				// command or environment says 127.0.0.1:P: that is its bind
				for _, r := range s.facts.Refs {
					if r.Port == ol.Port && analysis.IsLoopback(r.Host) && r.Field != "healthcheck.test" && r.Node != nil && r.Token == r.Host+":"+strconv.Itoa(r.Port) {
						l.bind = &analysis.StaticListener{Protocol: ol.Protocol, Port: ol.Port, Address: r.Host, Node: r.Node, File: r.File, BindText: r.Host,
							Evidence: analysis.Evidence{Kind: "runtime", Where: r.Pos.String(), Detail: "observed bind " + r.Token + " matches " + r.Field}}
						l.evidence = append(l.evidence, l.bind.Evidence)
						break
					}
				}
			}
			s.listeners = append(s.listeners, l)
		}
		for _, st := range static {
			if s.find(st.proto, st.port) == nil {
				p.warn(fmt.Sprintf("%s: configuration suggests port %d/%s but nothing listened there at detection time: not published", s.name, st.port, st.proto))
			}
		}
		for _, oc := range so.OutsideClients {
			if l := s.find(oc.Protocol, oc.Port); l != nil {
				l.outside = true
				l.outsideWhy = fmt.Sprintf("clients outside the stack were observed (%d peer(s))", len(oc.Peers))
			}
		}
	}
}

func (p *planner) decideServices() {
	for _, n := range p.names {
		s := p.svcs[n]
		if s.follows != "" {
			s.action = plan.ActionFollow
			s.reason = "shares the network namespace of " + s.follows + " (network_mode: service:" + s.follows + "); its listeners are published on " + s.follows
			continue
		}
		if !s.facts.HostNetwork() {
			continue
		}
		s.evidence = append(s.evidence, analysis.Evidence{Kind: "network_mode", Detail: "network_mode: host"})
		if p.opts.Selected != nil && !p.opts.Selected[n] {
			s.action = plan.ActionNotSelected
			s.reason = "not in the profiles selected with --profile: left on the host network"
			continue
		}
		// the evidence gate keeps a service that needs the host network
		// or whose listeners are unknown (gate.go)
		if p.gateService(s) {
			continue
		}
		s.action = plan.ActionMigrate
		s.reason = "on the host network; nothing in its configuration needs it"
	}
	// followers of services that stay on the host stay with them
	for _, n := range p.names {
		s := p.svcs[n]
		if s.follows != "" && p.svcs[s.follows] == nil {
			s.reason = "follows " + s.follows + ", which is not a service of this project"
		}
	}
}

// needsHost says why a service's listeners, observed ones included, need
// the host network (LAN discovery, a range too big to publish), or "".
// What its configuration needs is the analysis's (gate.go).
func (p *planner) needsHost(s *svc) (string, []analysis.Evidence) {
	for _, l := range s.listeners {
		if why := analysis.DiscoveryPort(l.proto, l.port, l.portEnd); why != "" {
			return why, l.evidence
		}
		if l.count() > 100 {
			return fmt.Sprintf("it listens on a range of %d ports (%d-%d/%s): Docker runs one proxy process and firewall rules per published port", l.count(), l.port, l.portEnd, l.proto), l.evidence
		}
	}
	return "", nil
}

// hasEvidence reports whether ev holds e, or another observation at the
// same place (one argument read both as a flag and as an address).
func hasEvidence(ev []analysis.Evidence, e analysis.Evidence) bool {
	for _, x := range ev {
		if x == e || e.Where != "" && x.Where == e.Where && x.Kind == e.Kind && lastWord(x.Detail) == lastWord(e.Detail) {
			return true
		}
	}
	return false
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
