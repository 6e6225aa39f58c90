package migrate

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/load"
)

// Loopback binds written without a port (issue 10, item 5): `mongod
// --bind_ip 127.0.0.1`, `postgres -c listen_addresses=localhost`,
// `streamlit --server.address 127.0.0.1`. The service's ports are known
// from elsewhere (the image's documented port, a --port flag); its bind is
// this address. The reach invariant holds on what the service really binds:
// such listeners are loopback listeners, published on loopback only, and
// the bind is rewritten to 0.0.0.0 inside the container.
//
// The analysis branch adds these to analysis.StaticListener (a listener with
// an address and no port); until then commandBinds finds them here.

// bindFlags take a bind address as their value.
var bindFlags = map[string]bool{
	"bind_ip": true, "bind-ip": true, "bind_address": true, "bind-address": true, "bind": true,
	"host": true, "listen": true, "listen-address": true, "listen_address": true, "listen_addresses": true,
	"server.address": true, "address": true, "addr": true, "http-host": true, "web.listen-host": true,
}

// commandBinds returns the loopback bind addresses without a port in a
// service's command and entrypoint, with the scalar that holds each.
func commandBinds(nodes []load.NodeRef) []analysis.StaticListener {
	var out []analysis.StaticListener
	add := func(f *load.SourceFile, n *yaml.Node, field, flag, addr string) {
		a := strings.Trim(addr, `"'`)
		if i := strings.IndexByte(a, ','); i >= 0 {
			a = a[:i] // "127.0.0.1,::1": the first is enough to tell loopback
		}
		if !analysis.IsLoopback(a) || strings.Contains(strings.Trim(a, "[]"), ":") && !strings.HasPrefix(a, "[") && a != "::1" {
			return
		}
		out = append(out, analysis.StaticListener{Protocol: "tcp", Address: strings.Trim(a, "[]"), Node: n, File: f, BindText: a,
			Evidence: analysis.Evidence{Kind: field, Where: f.PosOf(n).String(), Detail: field + " " + flag + " " + a + " (the bind address of its listeners)"}})
	}
	for _, nr := range nodes {
		for _, field := range []string{"command", "entrypoint"} {
			v := load.MapValue(nr.Node, field)
			if v == nil {
				continue
			}
			var items []*yaml.Node
			switch v.Kind {
			case yaml.ScalarNode:
				items = []*yaml.Node{v}
			case yaml.SequenceNode:
				items = v.Content
			}
			// a flag and its value, across sequence items or inside one
			// scalar's words
			type word struct {
				s string
				n *yaml.Node
			}
			var words []word
			for _, it := range items {
				if it.Kind != yaml.ScalarNode {
					continue
				}
				for _, w := range strings.Fields(it.Value) {
					words = append(words, word{w, it})
				}
			}
			for i, w := range words {
				name, val, hasVal := strings.Cut(w.s, "=")
				flag := strings.ToLower(strings.TrimLeft(name, "-"))
				if !strings.HasPrefix(name, "-") {
					// postgres -c listen_addresses=localhost
					if i > 0 && words[i-1].s == "-c" && hasVal && (flag == "listen_addresses") {
						add(nr.File, w.n, field, name, val)
					}
					continue
				}
				if !bindFlags[flag] {
					continue
				}
				if !hasVal {
					if i+1 >= len(words) {
						continue
					}
					val = words[i+1].s
					w = words[i+1]
				}
				if strings.Contains(strings.TrimPrefix(strings.Trim(val, "[]"), "::1"), ":") {
					continue // host:port: the analysis reads it with its port
				}
				add(nr.File, w.n, field, name, val)
			}
		}
	}
	return out
}

// supplementFacts adds to host-network services what the analysis does
// not tell yet (hook after planner.applyInventory): listeners of
// "SCHEME://:PORT" listener lists, and the loopback bind their command says
// for listeners whose address was assumed. Observed listeners keep their
// observed address.
func (p *planner) supplementFacts() {
	p.capInventoryReach()
	p.followerListeners()
	defer p.resolveSiblings() // after the binds and listener lists below
	defer p.disownNamedPorts()
	all := p.all
	for _, n := range p.names {
		s := p.svcs[n]
		if !s.facts.HostNetwork() || s.follows != "" {
			continue
		}
		if !p.observed(n) {
			for _, sl := range listenURLPorts(all[n]) {
				sl := sl
				s.addStatic(&sl, "")
			}
			p.healthcheckListeners(s)
		}
		p.observedLiteralBinds(s)
		binds := commandBinds(p.c.ServiceNodes(n))
		if len(binds) != 1 {
			continue // none, or several: which port each serves is unknown
		}
		b := binds[0]
		for _, l := range s.listeners {
			if l.runtime || !l.assumed {
				continue
			}
			bb := b
			bb.Port = l.port
			l.addr, l.assumed, l.bind = b.Address, false, &bb
			l.evidence = append(l.evidence, b.Evidence)
		}
	}
}

// observed reports whether the inventory describes the service.
func (p *planner) observed(name string) bool { return p.inventoryOf(name) != nil }

// inventoryOf returns what the inventory observed of a service, or nil.
func (p *planner) inventoryOf(name string) *detect.ServiceObservation {
	if p.opts.Inventory == nil {
		return nil
	}
	for i := range p.opts.Inventory.Services {
		if p.opts.Inventory.Services[i].Service == name {
			return &p.opts.Inventory.Services[i]
		}
	}
	return nil
}

// listenURLRe finds "SCHEME://:PORT" (every interface) in a listener list.
var listenURLRe = regexp.MustCompile(`[A-Za-z][A-Za-z0-9_+.-]*://:(\d{1,5})\b`)

// listenURLPorts reads listener lists such as Kafka's
// KAFKA_LISTENERS=INSIDE://:9092,OUTSIDE://:9093, whose entries name no
// host (every interface).
func listenURLPorts(s types.ServiceConfig) []analysis.StaticListener {
	var out []analysis.StaticListener
	keys := make([]string, 0, len(s.Environment))
	for k := range s.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		uk := strings.ToUpper(k)
		v := s.Environment[k]
		if v == nil || !strings.Contains(uk, "LISTEN") || strings.Contains(uk, "ADVERTIS") {
			continue
		}
		for _, m := range listenURLRe.FindAllStringSubmatch(*v, -1) {
			n, err := strconv.Atoi(m[1])
			if err != nil || n < 1 || n > 65535 {
				continue
			}
			out = append(out, analysis.StaticListener{Protocol: "tcp", Port: n,
				Evidence: analysis.Evidence{Kind: "environment", Detail: "environment." + k + " listens on " + m[0]}})
		}
	}
	return out
}

// healthcheckListeners gives a host-network service the ports its own
// healthcheck connects to on localhost when no service is known to listen
// there: a healthcheck runs inside the service's container. The planner
// reads them too (resolveRef), but only after the gate has counted the
// service's listeners.
func (p *planner) healthcheckListeners(s *svc) {
	for i := range s.facts.Refs {
		r := &s.facts.Refs[i]
		if r.Field != "healthcheck.test" || r.Port <= 0 || !analysis.IsLocalHost(r.Host) || len(p.owners("tcp", r.Port)) > 0 {
			continue
		}
		s.addStatic(&analysis.StaticListener{Protocol: "tcp", Port: r.Port,
			Evidence: analysis.Evidence{Kind: "healthcheck", Where: r.Pos.String(), Detail: "healthcheck connects to " + r.Token}}, "")
	}
}

// observedLiteralBinds matches observed loopback listeners to their text
// (issue 10, item 12): when ADDRESS:PORT of a listener seen on loopback
// appears literally in one scalar of the service's own command,
// entrypoint or environment (LISTEN=tcp:127.0.0.1:19001), that literal is
// its bind, and it is rewritten like any other.
func (p *planner) observedLiteralBinds(s *svc) {
	nodes := p.c.ServiceNodes(s.name)
	for _, l := range s.listeners {
		if !l.runtime || l.bind != nil || !analysis.IsLoopback(l.addr) {
			continue
		}
		if b := literalBind(nodes, l.addr, l.port); b != nil {
			l.bind = b
			l.evidence = append(l.evidence, b.Evidence)
		}
	}
}

// literalBind finds the one scalar of a service's command, entrypoint or
// environment that holds addr:port as a whole token ("localhost" for
// 127.0.0.1 too), or nil when none or several do.
func literalBind(nodes []load.NodeRef, addr string, port int) *analysis.StaticListener {
	hosts := []string{addr}
	if addr == "127.0.0.1" {
		hosts = append(hosts, "localhost")
	}
	if addr == "::1" {
		hosts = []string{"[::1]"}
	}
	var found *analysis.StaticListener
	n := 0
	visit := func(f *load.SourceFile, field string, v *yaml.Node) {
		for _, h := range hosts {
			lit := h + ":" + strconv.Itoa(port)
			i := strings.Index(v.Value, lit)
			if i < 0 {
				continue
			}
			end := i + len(lit)
			if i > 0 && isTokenChar(v.Value[i-1]) || end < len(v.Value) && v.Value[end] >= '0' && v.Value[end] <= '9' {
				continue
			}
			n++
			found = &analysis.StaticListener{Protocol: "tcp", Port: port, Address: strings.Trim(h, "[]"), Node: v, File: f, BindText: h,
				Evidence: analysis.Evidence{Kind: "runtime", Where: f.PosOf(v).String(), Detail: "the observed bind " + lit + " is written in " + field}}
			return
		}
	}
	for _, nr := range nodes {
		for _, field := range []string{"command", "entrypoint", "environment"} {
			v := load.MapValue(nr.Node, field)
			if v == nil {
				continue
			}
			switch v.Kind {
			case yaml.ScalarNode:
				visit(nr.File, field, v)
			case yaml.SequenceNode:
				for _, it := range v.Content {
					if it.Kind == yaml.ScalarNode {
						visit(nr.File, field, it)
					}
				}
			case yaml.MappingNode:
				for i := 1; i < len(v.Content); i += 2 {
					if v.Content[i].Kind == yaml.ScalarNode {
						visit(nr.File, field+"."+v.Content[i-1].Value, v.Content[i])
					}
				}
			}
		}
	}
	if n != 1 {
		return nil
	}
	return found
}
