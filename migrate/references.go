package migrate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/plan"
)

// What the plan does with a reference (plan.Reference.Action).
const (
	refActionRewrite = "rewrite"
	refActionKeep    = "keep"
	refActionManual  = "manual"
)

// refCase is what a reference in a service's configuration turns out to
// be, decided by classifyRef from the services and their listeners alone.
// The words that explain each case are written by describeRef.
type refCase int

const (
	refIgnored        refCase = iota // nothing to plan: not about the host, or nothing changes
	refAdvertised                    // tells outside clients where to connect
	refVariablePort                  // the port comes from a variable
	refClusterList                   // an entry of a cluster's member list
	refNoPort                        // names the host without a port
	refOwnHealthcheck                // a healthcheck names a port nobody is known to listen on: the service's own
	refHostSwarm                     // a host service, from a swarm service: no host-gateway
	refHostGateway                   // a host service: rewritten to host.docker.internal
	refHostAlready                   // a host service already named through host.docker.internal
	refService                       // another service: rewritten to its name
	refServicePortVar                // another service, whose port number comes from a variable that must change
	refKeptSwarm                     // a service kept on the host, from a swarm service
	refKeptHost                      // a service kept on the host: rewritten to host.docker.internal
	refClientStays                   // the client stays on the host network and keeps the published port
	refAmbiguousPort                 // several services listen on the port
)

// refVerdict is the classification of one reference.
type refVerdict struct {
	c      refCase
	to     string  // the service it points at ("host" for a host service)
	target int     // the container port it reaches, when it differs
	after  string  // the rewritten token
	tasks  bool    // points at tasks.NAME (swarm replicas of a cluster)
	owners []owner // for refAmbiguousPort
	// record: the reference goes into the plan (the client migrates, or
	// what it reaches does)
	record bool
}

// resolveReferences decides what each address in configuration points at,
// and which of them are rewritten.
func (p *planner) resolveReferences() {
	p.indexOwners()
	for _, n := range p.names {
		s := p.svcs[n]
		for i := range s.facts.Refs {
			r := &s.facts.Refs[i]
			v := p.classifyRef(s, r)
			p.applyRef(s, r, v)
		}
		if len(s.facts.External) > 0 {
			s.external = true
			s.externalWhy = "names hosts outside the stack (" + strings.Join(s.facts.External, ", ") + ")"
		}
	}
	p.observedEdges()
}

// edgeDetail says what the inventory saw of one edge: how often, over which
// window, by which method (so a reviewer can judge what was not seen).
func edgeDetail(inv *detect.Inventory, e detect.Edge) string {
	d := fmt.Sprintf("%s connected to port %d (%s)", e.From, e.Port, e.Via)
	if e.Count > 0 {
		d += fmt.Sprintf(", %d connection(s)", e.Count)
	}
	if inv.Duration != "" {
		d += " in a " + inv.Duration + " window"
	}
	if inv.Method != "" {
		d += " (" + inv.Method + ")"
	}
	return d
}

// observedEdges adds what the inventory saw services connect to.
func (p *planner) observedEdges() {
	inv := p.opts.Inventory
	if inv == nil {
		return
	}
	for _, e := range inv.Edges {
		to := p.svcs[e.To]
		if to == nil {
			continue
		}
		owner := p.svcs[p.netOwner(e.To)]
		if l := owner.find(e.Protocol, e.Port); l != nil {
			l.usedBy[e.From] = true
			l.evidence = append(l.evidence, analysis.Evidence{Kind: "runtime", Detail: edgeDetail(inv, e)})
			if p.onHostAfter(e.From) && p.migrated(owner.name) {
				l.outside = true
				l.outsideWhy = e.From + " stays on the host network and connects to it"
			}
		}
		if !p.refSeen[refKey{e.From, e.To, e.Port}] {
			p.addRef(plan.Reference{From: e.From, To: e.To, Port: e.Port, Kind: plan.RefObserved,
				Before: fmt.Sprintf("%s port %d", e.Via, e.Port), Action: refActionManual,
				Reason: "observed at runtime, but no address in the compose files names it: the client's address is configured elsewhere (a config file, an env file, or a default)"})
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: e.From,
				What: fmt.Sprintf("%s connects to %s on port %d, but the compose files do not say where: point it at %s:%d", e.From, e.To, e.Port, e.To, e.Port),
				Hint: "look in its env files and mounted configuration"})
		}
	}
}

// refKey identifies a reference by its ends and port.
type refKey struct {
	from, to string
	port     int
}

// addRef appends a reference to the plan.
func (p *planner) addRef(r plan.Reference) {
	p.plan.References = append(p.plan.References, r)
	p.refSeen[refKey{r.From, r.To, r.Port}] = true
}

// classifyRef decides what one reference is. It changes nothing.
func (p *planner) classifyRef(s *svc, r *analysis.AddressRef) refVerdict {
	if r.Role == analysis.RoleListen {
		return refVerdict{}
	}
	local := analysis.IsLocalHost(r.Host)
	before := p.onHostBefore(s.name)
	fromOwner := p.netOwner(s.name)
	clientMigrates := p.migrated(fromOwner)
	if r.Role == analysis.RoleAdvertise {
		if !local && !before {
			return refVerdict{}
		}
		return refVerdict{c: refAdvertised, record: clientMigrates}
	}
	if !(before && local || !before && analysis.ParseAddress(r.Host).IsHostGateway()) {
		return refVerdict{} // it does not name the host
	}
	switch {
	case r.Variable != "" && r.Port == 0:
		return refVerdict{c: refVariablePort, record: clientMigrates}
	case r.Role == analysis.RoleServerList:
		return refVerdict{c: refClusterList, record: clientMigrates}
	case r.Port == 0:
		return refVerdict{c: refNoPort, record: clientMigrates}
	}
	owners := p.owners("tcp", r.Port)
	for _, o := range owners {
		if o.name == fromOwner && (r.Field == "healthcheck.test" || len(owners) == 1) {
			return refVerdict{} // its own port: localhost stays right
		}
	}
	if r.Field == "healthcheck.test" && len(owners) == 0 {
		return refVerdict{c: refOwnHealthcheck}
	}
	fromMigrates := clientMigrates || !before
	switch len(owners) {
	case 0:
		v := refVerdict{to: "host", record: clientMigrates}
		switch {
		case p.swarm():
			v.c = refHostSwarm
		default:
			v.after = replaceHost(r.Token, "host.docker.internal")
			v.c = refHostGateway
			if v.after == r.Token {
				v.c = refHostAlready
			}
		}
		return v
	case 1:
		o := owners[0]
		v := refVerdict{to: o.name, target: o.target, record: true}
		target := p.svcs[o.name]
		switch {
		case fromMigrates && !p.onHostAfter(o.name):
			name := o.name
			if p.swarm() && target.facts.Replicas > 1 && clusterKey(r.Field) {
				name, v.tasks = "tasks."+o.name, true
			}
			v.after = replaceHost(r.Token, name)
			if o.target != r.Port {
				v.after = replacePort(v.after, r.Port, o.target)
			}
			v.c = refService
			if r.PortFrom != "" && o.target != r.Port {
				v.c = refServicePortVar
			}
		case fromMigrates && p.swarm():
			v.c = refKeptSwarm
		case fromMigrates:
			v.c, v.after = refKeptHost, replaceHost(r.Token, "host.docker.internal")
		default:
			v.c, v.record = refClientStays, p.migrated(o.name)
		}
		return v
	}
	return refVerdict{c: refAmbiguousPort, owners: owners, record: fromMigrates}
}

// applyRef records a classified reference: the plan's entry, its manual
// step or warning, the rewrite to make, and what it tells about the
// listener it reaches.
func (p *planner) applyRef(s *svc, r *analysis.AddressRef, v refVerdict) {
	fromOwner := p.netOwner(s.name)
	switch v.c {
	case refIgnored:
		return
	case refOwnHealthcheck:
		if own := p.svcs[fromOwner]; own != nil && own.facts.HostNetwork() {
			p.addListener(own, &analysis.StaticListener{Protocol: "tcp", Port: r.Port,
				Evidence: analysis.Evidence{Kind: "healthcheck", Where: r.Pos.String(), Detail: "healthcheck connects to " + r.Token}})
		}
		return
	}
	if v.c >= refService && v.c <= refClientStays {
		if l := p.svcs[v.to].find("tcp", r.Port); l != nil {
			l.usedBy[s.name] = true
			if v.c == refClientStays && v.record {
				l.outside = true
				if l.outsideWhy == "" {
					l.outsideWhy = s.name + " stays on the host network and uses it (" + r.Pos.String() + ")"
				}
			}
		}
	}
	if !v.record {
		return
	}
	ref := plan.Reference{From: s.name, Port: r.Port, Where: r.Pos.String(), Field: r.Field, Before: r.Token}
	switch v.c {
	case refHostGateway, refHostAlready, refHostSwarm:
		// no service owns the port, but several siblings could serve it:
		// never the host gateway then (siblings.go)
		if p.ambiguousRef(r, ref) {
			return
		}
	}
	d := p.describeRef(s, r, v)
	ref.Kind, ref.Action, ref.Reason, ref.To, ref.After = d.kind, d.action, d.reason, v.to, d.after
	if d.step != "" {
		p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(), What: d.step, Hint: d.hint})
	}
	if d.warning != "" {
		p.warn(d.warning)
	}
	if ref.Action == refActionRewrite {
		p.rewrites = append(p.rewrites, refRewrite{ref: r, to: ref.After})
	}
	switch v.c {
	case refHostGateway, refHostAlready, refKeptHost:
		p.svcs[fromOwner].hostRefs = true
	case refService:
		if !p.migrated(fromOwner) && !p.onHostBefore(s.name) {
			p.svcs[s.name].action = plan.ActionRefsOnly
			p.svcs[s.name].reason = "not on the host network; its references to migrated services are rewritten"
		}
	}
	p.addRef(ref)
}

// refWords is what the plan says about a reference.
type refWords struct {
	kind       plan.RefKind
	action     string
	after      string
	reason     string
	step, hint string // a manual step, when one is needed
	warning    string
}

// describeRef writes the plan's words for a classified reference.
func (p *planner) describeRef(s *svc, r *analysis.AddressRef, v refVerdict) refWords {
	switch v.c {
	case refAdvertised:
		return refWords{kind: plan.RefAdvertised, action: refActionManual,
			reason: "tells outside clients where to connect: not rewritten",
			step:   fmt.Sprintf("%s advertises %s to its clients: after the migration, clients inside the stack must use the service name and clients outside the published address", r.Field, Redact(r.Token)),
			hint:   "give it separate internal and external listeners (e.g. Kafka: INTERNAL://" + s.name + ":PORT for the stack, EXTERNAL://HOST:PORT for outside clients)"}
	case refVariablePort:
		return refWords{kind: plan.RefUnresolved, action: refActionManual,
			reason: "the port comes from " + r.Variable + ": unhost cannot tell which service it names",
			step:   fmt.Sprintf("%s names %s, whose port comes from %s: point it at the service by name (SERVICE:PORT), or at host.docker.internal for a service on the host", r.Field, r.Token, r.Variable)}
	case refClusterList:
		return refWords{kind: plan.RefAmbiguous, action: refActionManual,
			reason: "an entry of a cluster's member list: the configuration does not say which member owns the port",
			step:   fmt.Sprintf("%s lists cluster members as %s: point each entry at its member's service name (its own entry may stay as it is)", r.Field, Redact(r.Token)),
			hint:   "members reach each other by service name on the stack's network; ports between them need no publishing"}
	case refNoPort:
		return refWords{kind: plan.RefUnresolved, action: refActionManual,
			reason: "names the host without a port: cannot tell which service it means",
			step:   fmt.Sprintf("%s names %s without a port: point it at the service it means", r.Field, r.Token)}
	case refHostSwarm:
		return refWords{kind: plan.RefHostService, action: refActionManual,
			reason: fmt.Sprintf("no service of the stack listens on port %d: a service on the host; swarm services have no host-gateway on Engine 20.10", r.Port),
			step:   fmt.Sprintf("%s names a host service at %s: point it at an address of the node that the overlay network can reach", r.Field, Redact(r.Token))}
	case refHostAlready, refHostGateway:
		w := refWords{kind: plan.RefHostService, action: refActionKeep, after: v.after,
			reason:  "already names the host through host.docker.internal",
			warning: fmt.Sprintf("%s reaches a host service on port %d through host.docker.internal: that service must listen on the bridge gateway address (not only 127.0.0.1), and the host firewall must let the bridge in", s.name, r.Port)}
		if v.c == refHostGateway {
			w.action, w.reason = refActionRewrite, fmt.Sprintf("no service of the stack listens on port %d: a service on the host", r.Port)
		}
		return w
	case refServicePortVar:
		why := fmt.Sprintf("%s publishes %d for container port %d: set %s to %d", v.to, r.Port, v.target, r.PortFrom, v.target)
		return refWords{kind: plan.RefService, action: refActionManual, after: v.after, reason: why, step: why}
	case refService:
		w := refWords{kind: plan.RefService, action: refActionRewrite, after: v.after,
			reason: fmt.Sprintf("%s listens on port %d: reach it by service name on the stack's network", v.to, v.target)}
		if v.tasks {
			w.reason = fmt.Sprintf("%s runs %d replicas and %s lists cluster members: tasks.%s resolves to every replica, where %s alone is one virtual IP", v.to, p.svcs[v.to].facts.Replicas, r.Field, v.to, v.to)
		}
		return w
	case refKeptSwarm:
		return refWords{kind: plan.RefService, action: refActionManual,
			reason: v.to + " stays on the host network, which swarm services on an overlay cannot reach by name",
			step:   fmt.Sprintf("%s reaches %s, which stays on the host network: point it at the node's address", r.Field, v.to)}
	case refKeptHost:
		if v.after == r.Token { // already names the host (a second run)
			return refWords{kind: plan.RefService, action: refActionKeep,
				reason: fmt.Sprintf("%s stays on the host network: reached through the host", v.to)}
		}
		return refWords{kind: plan.RefService, action: refActionRewrite, after: v.after,
			reason:  fmt.Sprintf("%s stays on the host network: reach it through the host", v.to),
			warning: fmt.Sprintf("%s reaches %s (kept on the host network) through host.docker.internal:%d: %s must listen on the bridge gateway address, not only 127.0.0.1", s.name, v.to, r.Port, v.to)}
	case refClientStays:
		return refWords{kind: plan.RefService, action: refActionKeep,
			reason: s.name + " stays on the host network: it keeps reaching the published port"}
	case refAmbiguousPort:
		var names []string
		for _, o := range v.owners {
			names = append(names, o.name)
		}
		return refWords{kind: plan.RefAmbiguous, action: refActionManual,
			reason: "several services listen on port " + strconv.Itoa(r.Port) + ": " + strings.Join(names, ", "),
			step:   fmt.Sprintf("%s names port %d, where %s all listen: point it at the right service by name", r.Field, r.Port, strings.Join(names, ", "))}
	}
	panic(fmt.Sprintf("describeRef: case %d has no words", v.c))
}

// replaceHost swaps the host part of a host[:port] token.
func replaceHost(tok, host string) string {
	if strings.HasPrefix(tok, "[") {
		if i := strings.Index(tok, "]"); i >= 0 {
			return host + tok[i+1:]
		}
	}
	if h, rest, ok := strings.Cut(tok, ":"); ok && !strings.Contains(rest, ":") || ok && h != "" && !strings.Contains(h, ":") {
		return host + ":" + rest
	}
	return host
}

func replacePort(tok string, from, to int) string {
	suffix := ":" + strconv.Itoa(from)
	if strings.HasSuffix(tok, suffix) {
		return strings.TrimSuffix(tok, suffix) + ":" + strconv.Itoa(to)
	}
	return tok
}

// clusterKey reports whether a field names cluster members (seed hosts,
// peers), where a client must reach every replica.
func clusterKey(field string) bool {
	f := strings.ToUpper(field)
	for _, k := range []string{"SEED", "PEER", "CLUSTER", "DISCOVERY", "MEMBER", "NODES", "JOIN", "GOSSIP"} {
		if strings.Contains(f, k) {
			return true
		}
	}
	return false
}
