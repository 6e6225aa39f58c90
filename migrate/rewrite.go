package migrate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// editor collects edits per file.
type editor struct {
	texts map[*load.SourceFile]*text
	edits map[*load.SourceFile][]Edit
	// replaced tracks scalar rewrites by node, so that a node shared by
	// several services (an anchor) is edited once, consistently.
	replaced map[*yaml.Node]string
	removed  map[*yaml.Node]bool
	styles   map[*load.SourceFile]style
}

// style returns a file's style, computed once.
func (e *editor) style(f *load.SourceFile) style {
	st, ok := e.styles[f]
	if !ok {
		st = fileStyle(f)
		e.styles[f] = st
	}
	return st
}

func newEditor() *editor {
	return &editor{texts: map[*load.SourceFile]*text{}, edits: map[*load.SourceFile][]Edit{},
		replaced: map[*yaml.Node]string{}, removed: map[*yaml.Node]bool{}, styles: map[*load.SourceFile]style{}}
}

func (e *editor) text(f *load.SourceFile) *text {
	t := e.texts[f]
	if t == nil {
		t = newText(f)
		e.texts[f] = t
	}
	return t
}

func (e *editor) add(f *load.SourceFile, ed Edit) {
	e.edits[f] = append(e.edits[f], ed)
}

// style is how a file writes things, so that additions match it.
type style struct {
	seqIndent int    // extra indentation of "- " items under their key
	quote     string // quote for port strings: `"`, `'` or ""
}

func fileStyle(f *load.SourceFile) style {
	st := style{seqIndent: 2, quote: `"`}
	found := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || found {
			return
		}
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Line > k.Line {
					// column of "- " = item column - 2
					st.seqIndent = v.Content[0].Column - 2 - k.Column
					if st.seqIndent < 0 {
						st.seqIndent = 0
					}
					found = true
					return
				}
				walk(v)
			}
		}
		for _, c := range n.Content {
			if n.Kind != yaml.MappingNode {
				walk(c)
			}
		}
	}
	walk(f.Root)
	// quote style of ports entries, else of any string in a sequence
	qs := map[string]int{}
	var walkQ func(n *yaml.Node, key string)
	walkQ = func(n *yaml.Node, key string) {
		if n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				walkQ(n.Content[i+1], n.Content[i].Value)
			}
			return
		}
		if n.Kind == yaml.SequenceNode && key == "ports" {
			for _, c := range n.Content {
				if c.Kind == yaml.ScalarNode {
					switch {
					case c.Style&yaml.DoubleQuotedStyle != 0:
						qs[`"`]++
					case c.Style&yaml.SingleQuotedStyle != 0:
						qs[`'`]++
					default:
						qs["plain"]++
					}
				}
			}
		}
		for _, c := range n.Content {
			walkQ(c, key)
		}
	}
	walkQ(f.Root, "")
	best := 0
	for q, n := range qs {
		if n > best || n == best && q == `"` {
			best = n
			st.quote = q
		}
	}
	if st.quote == "plain" {
		st.quote = "" // plain "80:80" would be read as base 60 by YAML 1.1 tools: quote anyway
		st.quote = `"`
	}
	return st
}

func quote(q, s string) string {
	switch q {
	case `'`:
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	case "":
		return s
	}
	return strconv.Quote(s)
}

// portSpec is a port mapping to publish.
type portSpec struct {
	ip            string
	port, portEnd int
	proto         string
}

func (ps portSpec) short() string {
	rng := strconv.Itoa(ps.port)
	if ps.portEnd > ps.port {
		rng += "-" + strconv.Itoa(ps.portEnd)
	}
	s := rng + ":" + rng
	if ps.ip != "" && !(ps.ip == "0.0.0.0") {
		ip := ps.ip
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		s = ip + ":" + s
	}
	if ps.proto != "" && ps.proto != "tcp" {
		s += "/" + ps.proto
	}
	return s
}

func (ps portSpec) matches(pc types.ServicePortConfig) bool {
	ip := pc.HostIP
	if ip == "0.0.0.0" {
		ip = ""
	}
	want := ps.ip
	if want == "0.0.0.0" {
		want = ""
	}
	pub := strconv.Itoa(ps.port)
	if ps.portEnd > ps.port {
		pub += "-" + strconv.Itoa(ps.portEnd)
	}
	proto := pc.Protocol
	if proto == "" {
		proto = "tcp"
	}
	return ip == want && pc.Published == pub && int(pc.Target) == ps.port && proto == ps.proto
}

// buildEdits turns the decisions into edits of the files.
func (p *planner) buildEdits() (*Result, error) {
	e := newEditor()
	// services whose host mode comes from an anchor or extends base that
	// is edited, and that must keep it: pin them.
	pinned := map[string]bool{}
	type removal struct {
		f    *load.SourceFile
		m    *yaml.Node
		k, v *yaml.Node
		via  string
	}
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		nodes := p.c.ServiceNodes(n)
		var own []load.NodeRef
		var rems []removal
		for _, nr := range nodes {
			if nr.Via == "" {
				own = append(own, nr)
			}
			k, v := load.MapEntry(nr.Node, "network_mode")
			if k != nil && v.Kind == yaml.ScalarNode && v.Value == "host" {
				rems = append(rems, removal{f: nr.File, m: nr.Node, k: k, v: v, via: nr.Via})
			}
		}
		if len(own) == 0 {
			return nil, fmt.Errorf("service %s: cannot find its definition in the compose files", n)
		}
		// swarm's form: the external host network attached under networks:
		var keepNets *load.NodeRef
		if key := s.facts.HostNetworkKey; key != "" {
			for _, nr := range nodes {
				nk, nv := load.MapEntry(nr.Node, "networks")
				if nk == nil || e.removed[nk] {
					continue
				}
				names, item, itemKey := networkEntries(nv, key)
				if item == nil {
					continue
				}
				if len(names) == 1 {
					rems = append(rems, removal{f: nr.File, m: nr.Node, k: nk, v: nv, via: nr.Via})
					continue
				}
				t := e.text(nr.File)
				var ed Edit
				var err error
				if nv.Kind == yaml.SequenceNode {
					ed, err = t.removeSeqItem(nv, item)
				} else {
					ed, err = t.removeEntry(nv, itemKey, item)
				}
				if err != nil {
					return nil, err
				}
				e.removed[item] = true
				e.add(nr.File, ed)
				if nr.Via == "" {
					keepNets = &load.NodeRef{File: nr.File, Node: nv}
				}
			}
		}
		// the mapping that receives additions: the own mapping holding
		// network_mode, else the first own mapping
		target := own[0]
		var targetRem *removal
		for i := range rems {
			if rems[i].via == "" {
				for _, o := range own {
					if o.Node == rems[i].m {
						target = o
						targetRem = &rems[i]
					}
				}
				if targetRem != nil {
					break
				}
			}
		}
		if target.Node.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: service %s is written as an alias: give it its own mapping first", target.File.PosOf(target.Node), n)
		}
		additions, err := p.additions(e, s, target, nodes, keepNets)
		if err != nil {
			return nil, err
		}
		for i := range rems {
			r := &rems[i]
			if e.removed[r.k] {
				continue
			}
			e.removed[r.k] = true
			t := e.text(r.f)
			if r == targetRem && len(additions) > 0 && r.m.Style&yaml.FlowStyle == 0 {
				ed, err := t.replaceEntry(r.m, r.k, r.v, additions)
				if err != nil {
					return nil, err
				}
				e.add(r.f, ed)
				additions = nil
				continue
			}
			ed, err := t.removeEntry(r.m, r.k, r.v)
			if err != nil {
				return nil, err
			}
			e.add(r.f, ed)
			if r.via != "" {
				// shared by others: pin those that stay on the host
				for _, m := range p.names {
					if m == n || pinned[m] || p.migrated(m) || !p.svcs[m].facts.HostNetwork() {
						continue
					}
					for _, mr := range p.c.ServiceNodes(m) {
						if mr.Node == r.m {
							pinned[m] = true
						}
					}
				}
			}
		}
		if len(additions) > 0 {
			if err := p.insertKeys(e, target, additions); err != nil {
				return nil, err
			}
		}
	}
	// pin services that keep host mode from a shared anchor or base
	pinNames := []string{}
	for n := range pinned {
		pinNames = append(pinNames, n)
	}
	sort.Strings(pinNames)
	for _, n := range pinNames {
		var own *load.NodeRef
		ownHas := false
		for _, nr := range p.c.ServiceNodes(n) {
			if nr.Via == "" {
				nr := nr
				if own == nil {
					own = &nr
				}
				if k, v := load.MapEntry(nr.Node, "network_mode"); k != nil && v.Value == "host" && !e.removed[k] {
					ownHas = true
				}
			}
		}
		if ownHas || own == nil {
			continue
		}
		if own.Node.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: service %s is an alias of a migrated definition: give it its own mapping", own.File.PosOf(own.Node), n)
		}
		if err := p.insertKeys(e, *own, []string{"network_mode: host"}); err != nil {
			return nil, err
		}
		p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: n, Where: own.File.PosOf(own.Node).String(),
			What: n + " keeps the host network: it now says network_mode: host itself, since the shared definition it took it from was migrated"})
	}
	// reference rewrites, grouped by scalar so that one value holding
	// several addresses is edited once
	type scalarKey struct {
		f *load.SourceFile
		n *yaml.Node
	}
	var order []scalarKey
	groups := map[scalarKey][]refRewrite{}
	for _, rw := range p.rewrites {
		k := scalarKey{rw.ref.File, rw.ref.Node}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], rw)
	}
	for _, k := range order {
		var pairs [][2]string
		for _, rw := range groups[k] {
			pairs = append(pairs, [2]string{rw.ref.Token, rw.to})
		}
		if err := p.rewriteScalar(e, k.f, k.n, pairs); err != nil {
			rw := groups[k][0]
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: rw.ref.Service, Where: rw.ref.Pos.String(),
				What: fmt.Sprintf("rewrite the addresses in %s by hand (%v)", rw.ref.Field, err)})
		}
	}
	// loopback binds
	for _, l := range p.binds {
		b := l.bind
		to := "0.0.0.0"
		if strings.Contains(b.Address, ":") {
			to = "::"
			if strings.HasPrefix(b.BindText, "[") {
				to = "[::]"
			}
		}
		if err := p.rewriteScalar(e, b.File, b.Node, [][2]string{{b.BindText, to}}); err != nil {
			p.plan.Blockers = append(p.plan.Blockers, plan.Step{Where: b.File.PosOf(b.Node).String(),
				What: fmt.Sprintf("the bind address %s could not be rewritten (%v)", b.BindText, err), Hint: "make it listen on 0.0.0.0 inside the container"})
		}
	}
	// networks
	if err := p.addNetworks(e); err != nil {
		return nil, err
	}
	res := &Result{Plan: p.plan}
	for _, f := range p.c.Files {
		eds := e.edits[f]
		if len(eds) == 0 {
			continue
		}
		out, err := applyEdits(f.Data, eds)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		res.Files = append(res.Files, FileResult{Path: f.Path, Abs: f.Abs, Old: f.Data, New: out})
	}
	return res, nil
}

// additions returns the lines (without indentation) to add to a migrated
// service's mapping, after editing existing ports and extra_hosts entries
// in place.
func (p *planner) additions(e *editor, s *svc, target load.NodeRef, nodes []load.NodeRef, keepNets *load.NodeRef) ([]string, error) {
	st := e.style(target.File)
	var want []portSpec
	for _, l := range s.listeners {
		if l.decision == plan.DecisionPublish {
			want = append(want, portSpec{ip: l.publishIP, port: l.port, portEnd: l.portEnd, proto: l.proto})
			l.decision = plan.DecisionPublish
		}
	}
	var lines []string
	// existing ports: entries (ignored until now) in the service's own
	// mappings and merged anchors
	var portSeqs []load.NodeRef
	for _, nr := range nodes {
		if seq := load.MapValue(nr.Node, "ports"); seq != nil && seq.Kind == yaml.SequenceNode {
			portSeqs = append(portSeqs, load.NodeRef{File: nr.File, Node: seq, Via: nr.Via})
		}
	}
	// hook(decide): a later file's "ports: !reset" drops the earlier
	// entries from the merged service (resetports.go)
	live := livePortSeqs(portSeqs)
	// hook(decide): ports written one by one stay so (portsplit.go)
	want = splitWritten(want, singlePorts(live))
	if p.opts.LoopbackIPv6 && !p.swarm() { // hook(decide): also [::1] (publish.go)
		want = withIPv6Loopback(want)
	}
	done := make([]bool, len(want))
	for _, ps := range live {
		t := e.text(ps.File)
		for _, item := range ps.Node.Content {
			if e.removed[item] || e.replaced[item] != "" {
				continue
			}
			hasVar := strings.Contains(item.Value, "$") || item.Kind == yaml.MappingNode && mappingHasVar(item)
			pcs, err := analysis.ParsePortItem(withoutVars(item))
			if err != nil || len(pcs) == 0 {
				continue
			}
			pc := pcs[0]
			if hasVar {
				// written with a variable: it publishes its target already
				for i, w := range want {
					if !done[i] && w.port == int(pc.Target) && w.proto == orTCP(pc.Protocol) {
						done[i] = true
					}
				}
				p.warn(fmt.Sprintf("%s: %s: the published port depends on a variable: left as written; check that it keeps the port's reach", s.name, ps.File.PosOf(item)))
				continue
			}
			matched := false
			for i, w := range want {
				if !done[i] && w.matches(pc) {
					done[i], matched = true, true
					break
				}
			}
			if matched {
				continue
			}
			if ps.Via != "" {
				continue // shared with other services: leave it
			}
			// replace with the wanted entry for its port, or remove it
			repl := -1
			for i, w := range want {
				if !done[i] && w.port == int(pc.Target) && w.proto == orTCP(pc.Protocol) {
					repl = i
					break
				}
			}
			if repl >= 0 && item.Kind == yaml.MappingNode && item.Style&yaml.FlowStyle == 0 {
				done[repl] = true
				if err := p.editLongPort(e, ps.File, item, want[repl]); err != nil {
					return nil, err
				}
				e.replaced[item] = want[repl].short()
				continue
			}
			if repl >= 0 && item.Kind == yaml.ScalarNode {
				done[repl] = true
				q := quoteOf(item)
				end := t.scalarEnd(item, ps.Node.Style&yaml.FlowStyle != 0)
				e.add(ps.File, Edit{Start: t.NodeOffset(item), End: end, Text: quote(q, want[repl].short())})
				e.replaced[item] = want[repl].short()
				continue
			}
			ed, err := t.removeSeqItem(ps.Node, item)
			if err != nil {
				return nil, err
			}
			e.removed[item] = true
			e.add(ps.File, ed)
		}
	}
	var newItems []string
	for i, w := range want {
		if done[i] {
			continue
		}
		if p.swarm() {
			newItems = append(newItems, w.long(p.opts.PublishMode))
		} else {
			newItems = append(newItems, quote(st.quote, w.short()))
		}
	}
	if len(newItems) > 0 {
		// append to the service's own ports: if it has one
		var seq *load.NodeRef
		for i := len(portSeqs) - 1; i >= 0; i-- {
			if portSeqs[i].Via == "" {
				seq = &portSeqs[i]
				break
			}
		}
		if seq != nil && len(seq.Node.Content) > 0 && allRemoved(e, seq.Node) {
			seq = nil
		}
		if seq != nil {
			ed, err := e.text(seq.File).appendSeqItems(seq.Node, newItems)
			if err != nil {
				return nil, err
			}
			e.add(seq.File, ed)
			// hook(decide): "!reset [...]" would drop what is added: make it
			// "!override" so the merged service publishes exactly these
			if ed, ok := resetToOverride(e.text(seq.File), seq.Node); ok {
				e.add(seq.File, ed)
			}
		} else {
			lines = append(lines, blockSeq("ports", newItems, st)...)
		}
	}
	nets := s.networks
	if keepNets != nil && len(nets) == 0 {
		nets = []string{"default"} // it stays on other networks: say default too
	}
	switch {
	case keepNets != nil && keepNets.Node.Kind == yaml.SequenceNode:
		ed, err := e.text(keepNets.File).appendSeqItems(keepNets.Node, nets)
		if err != nil {
			return nil, err
		}
		e.add(keepNets.File, ed)
	case keepNets != nil:
		var kl []string
		for _, n := range nets {
			kl = append(kl, n+": {}")
		}
		if err := p.insertKeys(e, *keepNets, kl); err != nil {
			return nil, err
		}
	case len(nets) > 0:
		lines = append(lines, blockSeq("networks", nets, st)...)
	}
	if p.opts.EndpointMode != "" {
		l, err := p.endpointMode(e, target, nodes)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	if s.hostRefs && !p.swarm() {
		entry := "host.docker.internal:host-gateway"
		has := false
		var seq *load.NodeRef
		for _, nr := range nodes {
			eh := load.MapValue(nr.Node, "extra_hosts")
			if eh == nil {
				continue
			}
			if eh.Kind == yaml.SequenceNode {
				for _, it := range eh.Content {
					if strings.HasPrefix(strings.ReplaceAll(it.Value, "=", ":"), "host.docker.internal:") {
						has = true
					}
				}
				if nr.Via == "" {
					nr := nr
					seq = &load.NodeRef{File: nr.File, Node: eh}
				}
			} else if eh.Kind == yaml.MappingNode {
				if k, _ := load.MapEntry(eh, "host.docker.internal"); k != nil {
					has = true
				}
			}
		}
		switch {
		case has:
		case seq != nil:
			ed, err := e.text(seq.File).appendSeqItems(seq.Node, []string{quote(st.quote, entry)})
			if err != nil {
				return nil, err
			}
			e.add(seq.File, ed)
		default:
			lines = append(lines, blockSeq("extra_hosts", []string{quote(st.quote, entry)}, st)...)
		}
	}
	return lines, nil
}

func orTCP(s string) string {
	if s == "" {
		return "tcp"
	}
	return s
}

func allRemoved(e *editor, seq *yaml.Node) bool {
	for _, it := range seq.Content {
		if !e.removed[it] {
			return false
		}
	}
	return true
}

func quoteOf(n *yaml.Node) string {
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		return `"`
	case n.Style&yaml.SingleQuotedStyle != 0:
		return `'`
	}
	return `"`
}

// blockSeq renders "key:" and its items as lines relative to the
// mapping's indentation (items carry the file's sequence indentation).
func blockSeq(key string, items []string, st style) []string {
	out := []string{key + ":"}
	for _, it := range items {
		for i, l := range strings.Split(it, "\n") {
			if i == 0 {
				out = append(out, strings.Repeat(" ", st.seqIndent)+"- "+l)
			} else {
				out = append(out, strings.Repeat(" ", st.seqIndent+2)+l)
			}
		}
	}
	return out
}

// flowItem turns a multi-line "k: v" item into a flow mapping.
func flowItem(it string) string {
	if !strings.Contains(it, "\n") {
		return it
	}
	return "{" + strings.ReplaceAll(it, "\n", ", ") + "}"
}

// long renders a port in the long syntax that docker stack deploy reads.
func (ps portSpec) long(mode string) string {
	pub := strconv.Itoa(ps.port)
	if ps.portEnd > ps.port {
		pub += "-" + strconv.Itoa(ps.portEnd)
	}
	proto := ps.proto
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("target: %d\npublished: %s\nprotocol: %s\nmode: %s", ps.port, pub, proto, mode)
}

// networkEntries lists the network names of a service's networks: value
// and returns the node (and, for the mapping form, the key) of name.
func networkEntries(nv *yaml.Node, name string) (names []string, item, key *yaml.Node) {
	switch nv.Kind {
	case yaml.SequenceNode:
		for _, it := range nv.Content {
			names = append(names, it.Value)
			if it.Value == name {
				item = it
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(nv.Content); i += 2 {
			names = append(names, nv.Content[i].Value)
			if nv.Content[i].Value == name {
				key, item = nv.Content[i], nv.Content[i+1]
			}
		}
	}
	return names, item, key
}

// endpointMode sets deploy.endpoint_mode: in place when the service has a
// deploy: mapping, else as lines to add.
func (p *planner) endpointMode(e *editor, target load.NodeRef, nodes []load.NodeRef) ([]string, error) {
	mode := p.opts.EndpointMode
	for i := len(nodes) - 1; i >= 0; i-- {
		nr := nodes[i]
		if nr.Via != "" {
			continue
		}
		dep := load.MapValue(nr.Node, "deploy")
		if dep == nil || dep.Kind != yaml.MappingNode {
			continue
		}
		t := e.text(nr.File)
		if _, v := load.MapEntry(dep, "endpoint_mode"); v != nil {
			if v.Value != mode {
				e.add(nr.File, Edit{Start: t.NodeOffset(v), End: t.scalarEnd(v, dep.Style&yaml.FlowStyle != 0), Text: mode})
			}
			return nil, nil
		}
		return nil, p.insertKeys(e, load.NodeRef{File: nr.File, Node: dep}, []string{"endpoint_mode: " + mode})
	}
	return []string{"deploy:", "  endpoint_mode: " + mode}, nil
}

// replaceEntry replaces a block mapping's "key: value" line with lines, at
// the same indentation. A comment on the old line stays, on its own line.
func (t *text) replaceEntry(m, key, val *yaml.Node, lines []string) (Edit, error) {
	ed, err := t.removeEntry(m, key, val)
	if err != nil {
		return Edit{}, err
	}
	indent := strings.Repeat(" ", key.Column-1)
	var b strings.Builder
	b.WriteString(ed.Text)
	for _, l := range lines {
		b.WriteString(indent + l + t.eol)
	}
	ed.Text = b.String()
	return ed, nil
}

// insertKeys adds lines at the end of a service mapping.
func (p *planner) insertKeys(e *editor, target load.NodeRef, lines []string) error {
	t := e.text(target.File)
	m := target.Node
	if m.Style&yaml.FlowStyle != 0 {
		// "{image: x}" -> "{image: x, ports: ["80:80"]}"
		end := t.flowEnd(t.NodeOffset(m)) - 1
		var parts []string
		for i := 0; i < len(lines); i++ {
			key := strings.TrimSuffix(lines[i], ":")
			var items []string
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") {
				l := strings.TrimSpace(lines[i+1])
				if strings.HasPrefix(l, "- ") || len(items) == 0 {
					items = append(items, strings.TrimPrefix(l, "- "))
				} else {
					items[len(items)-1] += "\n" + l
				}
				i++
			}
			if items == nil {
				parts = append(parts, lines[i])
			} else {
				for j := range items {
					items[j] = flowItem(items[j])
				}
				parts = append(parts, key+": ["+strings.Join(items, ", ")+"]")
			}
		}
		sep := ", "
		if len(m.Content) == 0 {
			sep = ""
		}
		e.add(target.File, Edit{Start: end, End: end, Text: sep + strings.Join(parts, ", ")})
		return nil
	}
	if len(m.Content) == 0 {
		return fmt.Errorf("%s: empty service mapping", target.File.PosOf(m))
	}
	at := t.blockInsertPoint(m)
	indent := t.childIndent(m)
	var b strings.Builder
	if t.needsEOLBefore(at) {
		b.WriteString(t.eol)
	}
	for _, l := range lines {
		b.WriteString(indent + l + t.eol)
	}
	e.add(target.File, Edit{Start: at, End: at, Text: b.String()})
	return nil
}

// removeSeqItem removes one item of a sequence.
func (t *text) removeSeqItem(seq, item *yaml.Node) (Edit, error) {
	if seq.Style&yaml.FlowStyle != 0 {
		fake := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		return t.removeEntry(fake, item, item)
	}
	start := t.NodeOffset(item)
	end := t.nodeEnd(item, false)
	ls := t.LineStart(item.Line)
	if t.lineOf(start) != t.lineOf(end) && strings.Trim(string(t.Data[ls:start]), " -\t") != "" {
		return Edit{}, fmt.Errorf("%s:%d:%d: a multi-line ports entry: edit it by hand", t.Path, item.Line, item.Column)
	}
	_, next := t.lineEnd(end)
	text := ""
	if c := t.trailingComment(end); c != "" {
		text = t.indentAt(start) + c + t.eol
	}
	return Edit{Start: ls, End: next, Text: text}, nil
}

// appendSeqItems adds items (already quoted) to the end of a sequence.
func (t *text) appendSeqItems(seq *yaml.Node, items []string) (Edit, error) {
	if seq.Style&yaml.FlowStyle != 0 {
		end := t.flowEnd(t.NodeOffset(seq)) - 1
		sep := ", "
		if len(seq.Content) == 0 {
			sep = ""
		}
		var flow []string
		for _, it := range items {
			flow = append(flow, flowItem(it))
		}
		return Edit{Start: end, End: end, Text: sep + strings.Join(flow, ", ")}, nil
	}
	if len(seq.Content) == 0 {
		return Edit{}, fmt.Errorf("%s:%d:%d: empty sequence", t.Path, seq.Line, seq.Column)
	}
	first := seq.Content[0]
	dash := t.NodeOffset(first)
	// find the "- " before the first item
	ls := t.LineStart(first.Line)
	prefix := string(t.Data[ls:dash])
	di := strings.LastIndex(prefix, "-")
	if di < 0 {
		return Edit{}, fmt.Errorf("%s:%d:%d: cannot find the sequence indicator", t.Path, first.Line, first.Column)
	}
	lead := strings.Repeat(" ", di) + "-" + strings.Repeat(" ", len(prefix)-di-1)
	at := t.blockInsertPoint(seq)
	var b strings.Builder
	if t.needsEOLBefore(at) {
		b.WriteString(t.eol)
	}
	for _, it := range items {
		for i, l := range strings.Split(it, "\n") {
			if i == 0 {
				b.WriteString(lead + l + t.eol)
			} else {
				b.WriteString(strings.Repeat(" ", len(lead)) + l + t.eol)
			}
		}
	}
	return Edit{Start: at, End: at, Text: b.String()}, nil
}

// rewriteScalar replaces tokens (pairs of from, to) inside a scalar's
// source text, and checks that the scalar's value changes exactly that way.
// A scalar shared by several services (an anchor) is edited once; a second
// request must agree with the first.
func (p *planner) rewriteScalar(e *editor, f *load.SourceFile, n *yaml.Node, pairs [][2]string) error {
	want := n.Value
	for _, pr := range pairs {
		want = replaceToken(want, pr[0], pr[1])
	}
	if prev, ok := e.replaced[n]; ok {
		if prev == want {
			return nil
		}
		return fmt.Errorf("the value is shared by several services and needs different rewrites")
	}
	t := e.text(f)
	start := t.NodeOffset(n)
	end := t.scalarEnd(n, false)
	src := string(f.Data[start:end])
	newSrc := src
	for _, pr := range pairs {
		if !strings.Contains(newSrc, pr[0]) {
			return fmt.Errorf("the text %q is not written literally", pr[0])
		}
		newSrc = replaceToken(newSrc, pr[0], pr[1])
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		var got yaml.Node
		if err := yaml.Unmarshal([]byte("x: "+newSrc), &got); err != nil || len(got.Content) != 1 || len(got.Content[0].Content) != 2 || got.Content[0].Content[1].Value != want {
			return fmt.Errorf("rewriting would change more than the address")
		}
	}
	e.add(f, Edit{Start: start, End: end, Text: newSrc})
	e.replaced[n] = want
	return nil
}

// replaceToken replaces whole occurrences of token (not inside a longer
// host name or port).
func replaceToken(s, token, to string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, token)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		before := byte(' ')
		if i > 0 {
			before = s[i-1]
		}
		after := byte(' ')
		if i+len(token) < len(s) {
			after = s[i+len(token)]
		}
		if isTokenChar(before) || after >= '0' && after <= '9' || isTokenChar(after) && !strings.Contains(token, ":") {
			b.WriteString(s[:i+len(token)])
		} else {
			b.WriteString(s[:i] + to)
		}
		s = s[i+len(token):]
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

// netDefs returns the top-level network definitions the migration adds,
// as "name:" lines followed by indented settings.
func (p *planner) netDefs() [][]string {
	var defs [][]string
	if p.swarm() {
		// the stack's default network, made attachable so that standalone
		// containers (verify's probe) can join it
		hasDefault := false
		for _, f := range p.c.Files {
			if k, _ := load.MapEntry(load.MapValue(f.Root, "networks"), "default"); k != nil {
				hasDefault = true
			}
		}
		if !hasDefault && p.anyMigrated() {
			defs = append(defs, []string{"default:", "driver: overlay", "attachable: true"})
		}
	}
	for _, np := range p.plan.Networks {
		if p.swarm() {
			defs = append(defs, []string{np.Name + ":", "driver: overlay", "internal: true", "attachable: true"})
		} else {
			defs = append(defs, []string{np.Name + ":", "internal: true"})
		}
	}
	return defs
}

func (p *planner) anyMigrated() bool {
	for _, n := range p.names {
		if p.migrated(n) {
			return true
		}
	}
	return false
}

// addNetworks edits the top-level networks: it drops the external host
// network once no service uses it, and defines the networks the migration
// adds, in the first compose file.
func (p *planner) addNetworks(e *editor) error {
	defs := p.netDefs()
	// external host networks that no service keeps using
	unused := map[string]bool{}
	for key := range analysis.HostNetworkKeys(p.c) {
		users, kept := 0, 0
		for _, n := range p.names {
			if p.svcs[n].facts.HostNetworkKey == key {
				users++
				if !p.migrated(n) {
					kept++
				}
			}
		}
		unused[key] = users > 0 && kept == 0
	}
	for i, f := range p.c.Files {
		nk, nets := load.MapEntry(f.Root, "networks")
		if nets == nil || nets.Kind != yaml.MappingNode {
			continue
		}
		t := e.text(f)
		var gone [][2]*yaml.Node
		for j := 0; j+1 < len(nets.Content); j += 2 {
			if unused[nets.Content[j].Value] {
				gone = append(gone, [2]*yaml.Node{nets.Content[j], nets.Content[j+1]})
			}
		}
		if len(gone) == 0 {
			continue
		}
		if len(gone)*2 == len(nets.Content) && (i != 0 || len(defs) == 0) {
			// nothing would be left under networks: drop the key itself
			ed, err := t.removeEntry(f.Root, nk, nets)
			if err != nil {
				return err
			}
			e.add(f, ed)
			continue
		}
		for _, g := range gone {
			ed, err := t.removeEntry(nets, g[0], g[1])
			if err != nil {
				return err
			}
			e.add(f, ed)
		}
	}
	if len(defs) == 0 {
		return nil
	}
	f := p.c.Files[0]
	t := e.text(f)
	k, nets := load.MapEntry(f.Root, "networks")
	if nets != nil && nets.Kind == yaml.MappingNode && nets.Style&yaml.FlowStyle == 0 && len(nets.Content) > 0 {
		step := 2
		if nets.Content[1].Kind == yaml.MappingNode && len(nets.Content[1].Content) > 0 {
			step = nets.Content[1].Content[0].Column - nets.Content[0].Column
		}
		var lines []string
		for _, d := range defs {
			lines = append(lines, d[0])
			for _, l := range d[1:] {
				lines = append(lines, strings.Repeat(" ", step)+l)
			}
		}
		return p.insertKeys(e, load.NodeRef{File: f, Node: nets}, lines)
	}
	if k != nil {
		if nets.Kind == yaml.MappingNode && nets.Style&yaml.FlowStyle != 0 {
			var parts []string
			for _, d := range defs {
				parts = append(parts, strings.TrimSuffix(d[0], ":")+": {"+strings.Join(d[1:], ", ")+"}")
			}
			end := t.flowEnd(t.NodeOffset(nets)) - 1
			sep := ", "
			if len(nets.Content) == 0 {
				sep = ""
			}
			e.add(f, Edit{Start: end, End: end, Text: sep + strings.Join(parts, ", ")})
			return nil
		}
		if nets.Kind == yaml.ScalarNode && nets.Tag == "!!null" {
			// "networks:" with nothing under it
			at := t.blockInsertPoint(k)
			var b strings.Builder
			writeDefs(&b, defs, "  ", t.eol)
			e.add(f, Edit{Start: at, End: at, Text: b.String()})
			return nil
		}
		return fmt.Errorf("%s: top-level networks: is not a mapping", f.PosOf(k))
	}
	// a new top-level key at the end of the file
	indent := "  "
	if svcs := load.MapValue(f.Root, "services"); svcs != nil && len(svcs.Content) > 0 {
		indent = strings.Repeat(" ", svcs.Content[0].Column-1)
	}
	var b strings.Builder
	at := len(f.Data)
	if t.needsEOLBefore(at) {
		b.WriteString(t.eol)
	}
	b.WriteString(t.eol + "networks:" + t.eol)
	writeDefs(&b, defs, indent, t.eol)
	e.add(f, Edit{Start: at, End: at, Text: b.String()})
	return nil
}

// writeDefs writes network definitions ("name:" and its settings) one
// indentation step under a top-level networks: key.
func writeDefs(b *strings.Builder, defs [][]string, indent, eol string) {
	for _, d := range defs {
		b.WriteString(indent + d[0] + eol)
		for _, l := range d[1:] {
			b.WriteString(indent + indent + l + eol)
		}
	}
}

// indentLines re-indents "name:"/"  internal: true" pairs to a mapping's
// child indentation.
func indentLines(lines []string, m *yaml.Node, t *text) []string {
	step := len(t.childIndent(m))
	if len(m.Content) > 1 && m.Content[1].Kind == yaml.MappingNode && len(m.Content[1].Content) > 0 {
		step = m.Content[1].Content[0].Column - m.Content[0].Column
	}
	if step <= 0 {
		step = 2
	}
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "  ") {
			l = strings.Repeat(" ", step) + strings.TrimLeft(l, " ")
		}
		out = append(out, l)
	}
	return out
}

func mappingHasVar(m *yaml.Node) bool {
	for _, c := range m.Content {
		if strings.Contains(c.Value, "$") {
			return true
		}
	}
	return false
}

// editLongPort makes a long-syntax ports entry publish w: it edits the
// published and host_ip values in place, and adds host_ip when needed.
func (p *planner) editLongPort(e *editor, f *load.SourceFile, item *yaml.Node, w portSpec) error {
	t := e.text(f)
	pub := strconv.Itoa(w.port)
	if w.portEnd > w.port {
		pub += "-" + strconv.Itoa(w.portEnd)
	}
	setScalar := func(n *yaml.Node, v string) {
		q := ""
		if n.Style&yaml.DoubleQuotedStyle != 0 {
			q = `"`
		} else if n.Style&yaml.SingleQuotedStyle != 0 {
			q = "'"
		}
		e.add(f, Edit{Start: t.NodeOffset(n), End: t.scalarEnd(n, false), Text: quote(q, v)})
	}
	var add []string
	if _, v := load.MapEntry(item, "published"); v != nil {
		if v.Value != pub {
			setScalar(v, pub)
		}
	} else {
		add = append(add, "published: "+strconv.Quote(pub))
	}
	ip := w.ip
	if ip == "0.0.0.0" {
		ip = ""
	}
	if _, v := load.MapEntry(item, "host_ip"); v != nil {
		if v.Value != ip && !(ip == "" && v.Value == "0.0.0.0") {
			if ip == "" {
				ip = "0.0.0.0"
			}
			setScalar(v, ip)
		}
	} else if ip != "" {
		add = append(add, "host_ip: "+ip)
	}
	if len(add) > 0 {
		return p.insertKeys(e, load.NodeRef{File: f, Node: item}, add)
	}
	return nil
}

var varRe = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// withoutVars returns a copy of a ports entry with variables replaced by
// a number, so that its target port can be read.
func withoutVars(n *yaml.Node) *yaml.Node {
	c := *n
	c.Value = varRe.ReplaceAllString(n.Value, "0")
	if n.Kind == yaml.MappingNode {
		c.Content = nil
		for _, x := range n.Content {
			y := *x
			y.Value = varRe.ReplaceAllString(x.Value, "0")
			c.Content = append(c.Content, &y)
		}
	}
	return &c
}
