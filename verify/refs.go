package verify

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// Ref is an address one service uses to reach another, itself, or a host
// outside the stack.
type Ref struct {
	From  string // service whose namespace the address is used in
	Field string // where: environment.DB_URL, command, healthcheck.test, plan
	Host  string // as written: a service name, alias, localhost, ...
	Port  int
	Proto string // tcp or udp
	Token string // the address as written (tcp:localhost:15432 -> localhost:15432)
	// Scheme is the URL scheme or prefix it was written with (http, tcp, ...).
	Scheme string
	Where  string // file:line:col, when from a file
	// Variable is set when the address depends on a variable.
	Variable string
}

func (r Ref) Addr() string { return joinHostPort(r.Host, r.Port) }

// target is the check's target: the address, with /udp for UDP.
func (r Ref) target() string {
	if r.Proto == "udp" {
		return r.Addr() + "/udp"
	}
	return r.Addr()
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// hostGateway reports whether host leads to services on the host, which
// may be production: the analysis's host-gateway names and address, and
// compose's literal "host-gateway".
func hostGateway(host string) bool {
	return host == "host-gateway" || analysis.ParseAddress(host).IsHostGateway()
}

// collectRefs are the address references of the services in services,
// found by the shared finder (analysis.Analyze, as migrate finds them):
// environment, command, entrypoint and healthcheck, in every form it reads
// (URLs, host:port, scheme:host:port, lists). Listen and advertised
// addresses are not references. The plan adds its service and self
// references that the files do not show.
//
// Loopback addresses in a service's env files and bind-mounted files
// (analysis.OutsideRefs) count too: the container reads them. A listen
// address among them is harmless to check, since the service accepts there.
func collectRefs(facts *analysis.Facts, outside []analysis.OutsideRef, services map[string]types.ServiceConfig, p *plan.Plan) []Ref {
	var refs []Ref
	seen := map[string]bool{}
	add := func(r Ref) {
		key := r.From + "\x00" + strings.ToLower(r.Host) + "\x00" + strconv.Itoa(r.Port) + "\x00" + r.Proto + "\x00" + r.Field
		if !seen[key] {
			seen[key] = true
			refs = append(refs, r)
		}
	}
	for _, name := range facts.Names() {
		if _, ok := services[name]; !ok {
			continue
		}
		for _, a := range facts.Services[name].Refs {
			if a.Role != analysis.RoleConnect {
				continue
			}
			proto := "tcp"
			if strings.EqualFold(a.Scheme, "udp") {
				proto = "udp"
			}
			add(Ref{From: name, Field: a.Field, Host: strings.ToLower(a.Host), Port: a.Port, Proto: proto, Token: a.Token, Scheme: strings.ToLower(a.Scheme), Where: a.Pos.String(), Variable: a.Variable})
		}
	}
	for _, o := range outside {
		if _, ok := services[o.Service]; !ok || o.Port <= 0 || !analysis.IsLoopback(o.Host) || o.Kind != "env_file" && o.Kind != "mount" {
			continue
		}
		field := o.Kind + " " + o.Pos.File
		if o.Kind == "mount" {
			field = "mounted file " + o.Pos.File
		}
		add(Ref{From: o.Service, Field: field, Host: strings.ToLower(strings.Trim(o.Host, "[]")), Port: o.Port, Proto: "tcp", Token: o.Token, Where: o.Pos.String()})
	}
	if p != nil {
		have := map[string]bool{}
		for _, r := range refs {
			have[r.From+"\x00"+r.Host+"\x00"+strconv.Itoa(r.Port)] = true
		}
		for _, pr := range p.References {
			if pr.From == "" || pr.Port <= 0 {
				continue
			}
			host := ""
			switch pr.Kind {
			case plan.RefService:
				host = pr.To
			case plan.RefSelf:
				host = "localhost"
			default:
				continue
			}
			if host == "" || have[pr.From+"\x00"+host+"\x00"+strconv.Itoa(pr.Port)] {
				continue
			}
			if _, ok := services[pr.From]; !ok {
				continue
			}
			add(Ref{From: pr.From, Field: "plan", Host: host, Port: pr.Port, Proto: planProto(p, pr), Token: joinHostPort(host, pr.Port)})
		}
	}
	sort.SliceStable(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Field < b.Field
	})
	return refs
}

// planProto is udp when the plan's target service listens on the port
// over UDP only.
func planProto(p *plan.Plan, r plan.Reference) string {
	to := r.To
	if r.Kind == plan.RefSelf {
		to = r.From
	}
	tcp, udp := false, false
	for _, s := range p.Services {
		if s.Name != to {
			continue
		}
		for _, l := range s.Listeners {
			if r.Port >= l.Port && r.Port <= max(l.Port, l.PortEnd) {
				if strings.EqualFold(l.Protocol, "udp") {
					udp = true
				} else {
					tcp = true
				}
			}
		}
	}
	if udp && !tcp {
		return "udp"
	}
	return "tcp"
}

// knownHosts maps the names by which services reach each other (service
// names, network aliases, hostnames, links aliases, container names) to
// the service.
func knownHosts(services map[string]types.ServiceConfig) map[string]string {
	names := map[string]string{}
	set := func(n, svc string) {
		n = strings.ToLower(n)
		if _, ok := names[n]; !ok && n != "" {
			names[n] = svc
		}
	}
	keys := make([]string, 0, len(services))
	for name := range services {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	for _, name := range keys {
		set(name, name)
	}
	for _, name := range keys {
		s := services[name]
		set(s.Hostname, name)
		set(s.ContainerName, name)
		for _, n := range s.Networks {
			if n == nil {
				continue
			}
			for _, a := range n.Aliases {
				set(a, name)
			}
		}
	}
	for _, name := range keys {
		for _, l := range services[name].Links {
			target, alias, ok := strings.Cut(l, ":")
			if ok {
				set(alias, target)
			}
		}
	}
	return names
}

// listenersOn are the services that listen on port/proto by the files and
// the plan: published or exposed targets, listen addresses, the plan's
// listeners. They are the likely fix of a broken localhost reference.
func listenersOn(facts *analysis.Facts, services map[string]types.ServiceConfig, p *plan.Plan, port int, proto string) []string {
	found := map[string]bool{}
	for name, s := range services {
		for _, pt := range s.Ports {
			if int(pt.Target) == port && protoOr(pt.Protocol) == proto {
				found[name] = true
			}
		}
		for _, e := range s.Expose {
			if q, pr := exposePort(e); q == port && pr == proto {
				found[name] = true
			}
		}
		if sf := facts.Services[name]; sf != nil {
			for _, a := range sf.Refs {
				if a.Role == analysis.RoleListen && a.Port == port {
					found[name] = true
				}
			}
			for _, l := range sf.Listeners {
				if port >= l.Port && port <= max(l.Port, l.PortEnd) && strings.EqualFold(l.Protocol, proto) {
					found[name] = true
				}
			}
		}
	}
	if p != nil {
		for _, s := range p.Services {
			for _, l := range s.Listeners {
				if _, ok := services[s.Name]; ok && port >= l.Port && port <= max(l.Port, l.PortEnd) && strings.EqualFold(l.Protocol, proto) {
					found[s.Name] = true
				}
			}
		}
	}
	out := make([]string, 0, len(found))
	for n := range found {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// exposePort reads an expose entry: "5432", "53/udp" (a range: its first port).
func exposePort(e string) (int, string) {
	num, proto, _ := strings.Cut(e, "/")
	if proto == "" {
		proto = "tcp"
	}
	num, _, _ = strings.Cut(num, "-")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return 0, proto
	}
	return n, strings.ToLower(proto)
}

// refChecks: every reference found in the files (and the plan's) is
// checked from inside the namespace of the service that holds it:
//   - localhost/127.0.0.1/::1: something in that namespace must accept
//     on the port; a failure names the service that listens there;
//   - a service of the stack must connect;
//   - the host gateway is skipped beside production (--in-place runs it);
//   - hosts outside the stack are reported, not failed.
func (r *runner) refChecks(tasks map[string][]task) {
	services := r.prep.Original
	hosts := knownHosts(services)
	skipped := map[string]string{}
	for _, s := range r.prep.Skipped {
		skipped[s.Service] = s.Reason
	}
	for _, ref := range collectRefs(r.stack.Facts, r.stack.Outside, services, r.plan) {
		check := Check{Name: CheckRef, Service: ref.From, Target: ref.target()}
		where := fmt.Sprintf("%s %s %s", ref.From, ref.Field, ref.Token)
		if ref.Where != "" {
			where += " (" + ref.Where + ")"
		}
		skip := func(why string) {
			check.Status, check.Reason = Skip, where+": "+why
			r.report.add(check)
		}
		host := strings.Trim(ref.Host, "[]")
		local := analysis.IsLoopback(host)
		toSvc, inStack := hosts[host]
		switch {
		case ref.Variable != "":
			skip(fmt.Sprintf("the address depends on %s, which verify does not resolve", ref.Variable))
			continue
		case ref.Port <= 0:
			skip("no port is known for this address")
			continue
		case skipped[ref.From] != "":
			skip(ref.From + " is skipped")
			continue
		case analysis.IsBindAll(host):
			continue // a listen address in connect position: not a reference
		case hostGateway(host) && !r.opts.InPlace:
			skip("leads to a service on the host, which may be the running deployment (--in-place checks it)")
			continue
		case !local && !inStack && !hostGateway(host):
			check.Status, check.Reason = Note, where+": a host outside the stack; not checked"
			r.report.add(check)
			continue
		case inStack && skipped[toSvc] != "":
			skip(fmt.Sprintf("leads to %s, which is skipped", toSvc))
			continue
		}
		if why := r.refSkip(ref); why != "" {
			skip(why)
			continue
		}
		if _, ok := r.containers[ref.From]; !ok {
			check.Status, check.Reason = Fail, fmt.Sprintf("%s: %s has no running container", where, ref.From)
			r.report.add(check)
			continue
		}
		t := task{ProbeTask: ProbeTask{Kind: ref.Proto, Addr: ref.Addr()}, wait: r.opts.RefWait}
		t.report = func(res ProbeResult) {
			check := check
			if res.OK {
				check.Status, check.Reason = Pass, fmt.Sprintf("%s: %s inside %s's network namespace", where, res.Detail, ref.From)
				r.report.add(check)
				return
			}
			check.Status = Fail
			if local {
				check.Reason = fmt.Sprintf("%s: nothing listens on %d/%s inside %s's own network namespace (%s)", where, ref.Port, ref.Proto, ref.From, res.Detail)
				if ls := listenersOn(r.stack.Facts, services, r.plan, ref.Port, ref.Proto); len(ls) > 0 {
					check.Reason += fmt.Sprintf("; %s listens on %d: use %s", strings.Join(ls, ", "), ref.Port, joinHostPort(ls[0], ref.Port))
				}
			} else {
				check.Reason = fmt.Sprintf("%s: %s inside %s's network namespace", where, res.Detail, ref.From)
			}
			r.report.add(check)
		}
		tasks[ref.From] = append(tasks[ref.From], t)
	}
}
