package scan

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
)

// part is one YAML mapping that defines (part of) a service.
type part struct {
	file string // shown path
	node *yaml.Node
	via  string // "", "merge" or "extends", as load.NodeRef.Via
}

// service is what the rules look at, whether the project loaded or not.
type service struct {
	name  string
	parts []part // lowest precedence first
	// mode is the effective network_mode ("" when unset).
	mode string
	// networks are the keys of the networks the service joins.
	networks []string
	// hasPorts is false when the effective configuration publishes nothing
	// (a `!reset` in an override), whatever the parts show.
	hasPorts bool
}

// view is a project as the rules see it.
type view struct {
	services map[string]*service
	// hostNets are network keys that stand for the host network of a
	// swarm stack (external, named host).
	hostNets map[string]bool
	// containers maps container_name to service name.
	containers map[string]string
	fix        fixer
}

// fixer says what `unhost migrate` would do; nil when the project cannot
// be migrated (it does not load).
type fixer interface {
	serviceAction(name string) (action, reason string)
}

func (v *view) names() []string {
	var out []string
	for n := range v.services {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// check runs the rules that need no runtime facts on every service.
func (v *view) check() []Finding {
	var out []Finding
	for _, name := range v.names() {
		s := v.services[name]
		out = append(out, v.checkHostNetwork(s)...)
		switch {
		case s.mode == "host":
			out = append(out, v.checkPortsIgnored(s)...)
		case s.mode == "none" || strings.HasPrefix(s.mode, "service:") || strings.HasPrefix(s.mode, "container:"):
		default:
			if s.hasPorts {
				out = append(out, v.checkAllInterfaces(s)...)
			}
		}
	}
	return out
}

// effective returns the highest-precedence value of key among the parts,
// with its part; merged mappings lose to the mapping that merges them.
func (s *service) effective(key string) (*yaml.Node, *yaml.Node, part, bool) {
	for i := len(s.parts) - 1; i >= 0; i-- {
		k, val := load.MapEntry(s.parts[i].node, key)
		if k != nil {
			return k, resolve(val), s.parts[i], true
		}
	}
	return nil, nil, part{}, false
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// onHostNetwork reports whether a service of the view is on the host
// network: network_mode host, or a network that stands for it. The views
// decide both when they are built: from analysis.OnHostNetwork's inputs
// when the project loaded, from the raw-YAML predicates (hostModeValue,
// isHostNetworkDef) when it did not.
func (v *view) onHostNetwork(s *service) bool {
	if s.mode == "host" {
		return true
	}
	for _, n := range s.networks {
		if v.hostNets[n] {
			return true
		}
	}
	return false
}

func (v *view) migrateSays(name string) (fixed bool, advice string) {
	if v.fix == nil {
		return false, "`unhost migrate` cannot rewrite {it} until Compose loads the file: move {it} to a bridge network by hand"
	}
	action, reason := v.fix.serviceAction(name)
	switch action {
	case string(plan.ActionMigrate):
		return true, "`unhost migrate` moves {it} to a bridge network with explicit ports"
	case string(plan.ActionKeepHost):
		return false, "`unhost migrate` keeps {it} on the host network (" + reason + "): where the host network is needed for real, suppress this with `# unhost:ignore host-network`"
	case "":
		return false, "move {it} to a bridge network with explicit ports"
	}
	return false, "`unhost migrate` leaves {it} (" + action + ": " + reason + ")"
}

// keptForReason reports whether `unhost migrate` keeps a service on the
// host network and says why: its host-network finding is then a note, which
// does not fail the scan unless it is strict, so that a migration pull
// request passes the scan that proposed it.
func (v *view) keptForReason(name string) bool {
	if v.fix == nil {
		return false
	}
	action, reason := v.fix.serviceAction(name)
	return action == string(plan.ActionKeepHost) && strings.TrimSpace(reason) != ""
}

func (v *view) checkHostNetwork(s *service) []Finding {
	var out []Finding
	_, val, p, ok := s.effective("network_mode")
	switch {
	case s.mode == "host":
		line, col, file := 1, 1, ""
		if ok && val != nil {
			line, col, file = val.Line, val.Column, p.file
		} else if len(s.parts) > 0 {
			last := s.parts[len(s.parts)-1]
			line, col, file = last.node.Line, last.node.Column, last.file
		}
		if file == "" {
			break
		}
		fixed, advice := v.migrateSays(s.name)
		out = append(out, Finding{Rule: RuleHostNetwork, File: file, Line: line, Col: col, Services: []string{s.name},
			format: "{services} {is} on the host network (network_mode: host): every port opened there is reachable wherever the host is, and every service bound to the host's loopback is reachable from there; " + advice,
			Fix:    advice, FixedByMigrate: fixed, Note: v.keptForReason(s.name)})
	case strings.HasPrefix(s.mode, "service:") || strings.HasPrefix(s.mode, "container:"):
		target, chain := v.followChain(s)
		if target == "" || !ok || val == nil {
			break
		}
		fixed, advice := v.migrateSays(target)
		advice = fmt.Sprintf("moving %s moves {it} too; for %s: %s", target, target, fillIn(advice, []string{target}))
		out = append(out, Finding{Rule: RuleHostNetwork, File: p.file, Line: val.Line, Col: val.Column, Services: []string{s.name},
			format: fmt.Sprintf("{services} share{s} the network namespace of %s, which is on the host network: exposed as if on the host network itself; %s", chain, advice),
			Fix:    advice, FixedByMigrate: fixed, Note: v.keptForReason(target)})
	}
	for _, n := range s.networks {
		if !v.hostNets[n] {
			continue
		}
		file, line, col := s.networkEntry(n)
		if file == "" {
			continue
		}
		advice := "attach {it} to an overlay network and publish the ports it serves with `ports:` (mode: host where clients need their source address); `unhost migrate` does not rewrite swarm stacks"
		out = append(out, Finding{Rule: RuleHostNetwork, File: file, Line: line, Col: col, Services: []string{s.name},
			format: fmt.Sprintf("{services} join{s} network %q, the external host network of a swarm stack: every port opened there is reachable wherever the node is; %s", n, advice),
			Fix:    advice})
	}
	return out
}

// followChain follows network_mode: service:/container: to a service on
// the host network; it returns that service and the chain as text.
func (v *view) followChain(s *service) (string, string) {
	seen := map[string]bool{s.name: true}
	cur := s
	var hops []string
	for i := 0; i < 50; i++ {
		var next string
		switch {
		case strings.HasPrefix(cur.mode, "service:"):
			next = strings.TrimPrefix(cur.mode, "service:")
		case strings.HasPrefix(cur.mode, "container:"):
			c := strings.TrimPrefix(cur.mode, "container:")
			next = v.containers[c]
			if next == "" {
				if _, ok := v.services[c]; ok {
					next = c
				}
			}
		default:
			return "", ""
		}
		ns, ok := v.services[next]
		if !ok || seen[next] {
			return "", ""
		}
		seen[next] = true
		hops = append(hops, next)
		if ns.mode == "host" {
			return next, strings.Join(hops, ", then ")
		}
		cur = ns
	}
	return "", ""
}

// networkEntry finds where the service names network n.
func (s *service) networkEntry(n string) (string, int, int) {
	for i := len(s.parts) - 1; i >= 0; i-- {
		nets := resolve(load.MapValue(s.parts[i].node, "networks"))
		if nets == nil {
			continue
		}
		switch nets.Kind {
		case yaml.SequenceNode:
			for _, item := range nets.Content {
				if it := resolve(item); it != nil && it.Value == n {
					return s.parts[i].file, it.Line, it.Column
				}
			}
		case yaml.MappingNode:
			if k, _ := load.MapEntry(nets, n); k != nil {
				return s.parts[i].file, k.Line, k.Column
			}
		}
	}
	return "", 0, 0
}

// portsParts returns the parts whose ports: count: a merged mapping's
// ports lose to those of the mapping that merges it.
func (s *service) portsParts() []part {
	var out []part
	for i, p := range s.parts {
		seq := load.MapValue(p.node, "ports")
		if seq == nil {
			continue
		}
		if p.via == "merge" {
			shadowed := false
			for j := i + 1; j < len(s.parts); j++ {
				if s.parts[j].via != "merge" {
					shadowed = load.MapValue(s.parts[j].node, "ports") != nil
					break
				}
			}
			if shadowed {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func (v *view) checkPortsIgnored(s *service) []Finding {
	var out []Finding
	for _, p := range s.portsParts() {
		k, seq := load.MapEntry(p.node, "ports")
		seq = resolve(seq)
		if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 {
			continue
		}
		fixed, advice := v.migrateSays(s.name)
		if fixed {
			advice = "`unhost migrate` moves {it} to a bridge network and turns them into real port mappings"
		} else {
			advice = "delete them, or move {it} to a bridge network where they take effect; " + advice
		}
		out = append(out, Finding{Rule: RulePortsIgnored, File: p.file, Line: k.Line, Col: k.Column, Services: []string{s.name},
			format: "{services} {is} on the host network, where Docker ignores `ports:`: every port bound there is reachable on every interface, whatever `ports:` says; " + advice,
			Fix:    advice, FixedByMigrate: fixed})
	}
	return out
}

func (v *view) checkAllInterfaces(s *service) []Finding {
	var out []Finding
	for _, p := range s.portsParts() {
		seq := resolve(load.MapValue(p.node, "ports"))
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range seq.Content {
			item = resolve(item)
			text, ok := allInterfaces(item)
			if !ok {
				continue
			}
			text = migrate.Redact(text)
			fix := "publish it on the address its clients need (e.g. " + loopbackExample(text) + " when only the host connects), or keep it public on purpose and suppress this with `# unhost:ignore all-interfaces`; `unhost migrate` does not change ports of services that are not on the host network"
			out = append(out, Finding{Rule: RuleAllInterfaces, File: p.file, Line: item.Line, Col: item.Column, Services: []string{s.name},
				format: fmt.Sprintf("port %q of {services} is published on all interfaces: it is reachable from every network the host is on, and ports published by Docker bypass host firewalls such as UFW; %s", text, fix),
				Fix:    fix})
		}
	}
	return out
}

var varRe = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// allInterfaces reports whether a ports: entry publishes without a host
// address, and returns the entry as text.
func allInterfaces(item *yaml.Node) (string, bool) {
	switch item.Kind {
	case yaml.ScalarNode:
		s := strings.TrimSpace(item.Value)
		if s == "" {
			return "", false
		}
		if strings.HasPrefix(s, "[") {
			return s, false // [::1]:8080:80
		}
		bare := varRe.ReplaceAllString(s, "X")
		bare, _, _ = strings.Cut(bare, "/")
		if strings.Count(bare, ":") >= 2 {
			return s, false // ip:published:target
		}
		if bare == "X" && s != "" && strings.Contains(s, "$") && !strings.Contains(s, ":") {
			// one variable: it may hold a whole ip:port:port spec
			return s, false
		}
		return s, true
	case yaml.MappingNode:
		if ip := load.MapValue(item, "host_ip"); ip != nil && strings.TrimSpace(ip.Value) != "" {
			return "", false
		}
		t := load.MapValue(item, "target")
		if t == nil {
			return "", false
		}
		text := t.Value
		if pub := load.MapValue(item, "published"); pub != nil && pub.Value != "" {
			text = pub.Value + ":" + text
		}
		if pr := load.MapValue(item, "protocol"); pr != nil && pr.Value != "" && pr.Value != "tcp" {
			text += "/" + pr.Value
		}
		return text, true
	}
	return "", false
}

// loopbackExample is a ports: entry like text, published on 127.0.0.1.
func loopbackExample(text string) string {
	spec, proto, _ := strings.Cut(text, "/")
	if !strings.Contains(spec, ":") {
		spec = spec + ":" + spec
	}
	if proto != "" {
		spec += "/" + proto
	}
	return "127.0.0.1:" + spec
}
