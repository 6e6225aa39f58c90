package migrate

import (
	"fmt"
	"strconv"
	"strings"

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

// editFailure is a planned edit that could not be made: it becomes a
// blocker or a manual step of the plan.
type editFailure struct {
	blocker bool
	step    plan.Step
}

// buildEdits carries out the complete plan on the files' text. It decides
// nothing: what it cannot do comes back as failures, for the plan.
func (p *planner) buildEdits() ([]FileResult, []editFailure, error) {
	e := newEditor()
	var failures []editFailure
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
		nodes := p.serviceNodes(n)
		var own []load.NodeRef
		var rems []removal
		for _, nr := range nodes {
			if nr.Via == "" {
				own = append(own, nr)
			}
			if k, v, ok := isHostMode(nr.Node); ok {
				rems = append(rems, removal{f: nr.File, m: nr.Node, k: k, v: v, via: nr.Via})
			}
		}
		if len(own) == 0 {
			return nil, nil, fmt.Errorf("service %s: cannot find its definition in the compose files", n)
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
					return nil, nil, err
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
			return nil, nil, fmt.Errorf("%s: service %s is written as an alias: give it its own mapping first", target.File.PosOf(target.Node), n)
		}
		additions, err := p.additions(e, s, target, nodes, keepNets)
		if err != nil {
			return nil, nil, err
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
					return nil, nil, err
				}
				e.add(r.f, ed)
				additions = nil
				continue
			}
			ed, err := t.removeEntry(r.m, r.k, r.v)
			if err != nil {
				return nil, nil, err
			}
			e.add(r.f, ed)
		}
		if len(additions) > 0 {
			if err := p.insertKeys(e, target, additions); err != nil {
				return nil, nil, err
			}
		}
	}
	// services that keep host mode from a shared anchor or base say it
	// themselves
	for _, pn := range p.pins {
		if err := p.insertKeys(e, pn.at, []string{"network_mode: host"}); err != nil {
			return nil, nil, err
		}
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
			failures = append(failures, editFailure{step: plan.Step{Service: rw.ref.Service, Where: rw.ref.Pos.String(),
				What: fmt.Sprintf("rewrite the addresses in %s by hand (%v)", rw.ref.Field, err)}})
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
			failures = append(failures, editFailure{blocker: true, step: plan.Step{Where: b.File.PosOf(b.Node).String(),
				What: fmt.Sprintf("the bind address %s could not be rewritten (%v)", b.BindText, err), Hint: "make it listen on 0.0.0.0 inside the container"}})
		}
	}
	// networks
	if err := p.addNetworks(e); err != nil {
		return nil, nil, err
	}
	var files []FileResult
	for _, f := range p.c.Files {
		eds := e.edits[f]
		if len(eds) == 0 {
			continue
		}
		out, sorted, err := applyEdits(f.Data, eds)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		fr := FileResult{Path: f.Path, Abs: f.Abs, Old: f.Data, New: out, edits: sorted}
		fr.startDiff() // its diff is ready by the time the caller has checked the files
		files = append(files, fr)
	}
	return files, failures, nil
}

// recordEditFailures puts what the edits could not do into the plan, as
// blockers and manual steps, in the plan's order.
func (p *planner) recordEditFailures(failures []editFailure) {
	if len(failures) == 0 {
		return
	}
	for _, f := range failures {
		f.step.What = Redact(f.step.What)
		if f.blocker {
			p.plan.Blockers = append(p.plan.Blockers, f.step)
		} else {
			p.plan.ManualSteps = append(p.plan.ManualSteps, f.step)
		}
	}
	sortSteps(p.plan.ManualSteps)
	sortSteps(p.plan.Blockers)
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
				continue
			}
			matched := false
			for i, w := range want {
				if !done[i] && w.matches(pc) {
					done[i], matched = true, true
					if w.allInterfaces() && !p.swarm() && item.Kind == yaml.ScalarNode {
						markSameReach(e, ps.File, ps.Node, item)
					}
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
	var wide []bool // published on all interfaces: marked where the style allows
	for i, w := range want {
		if done[i] {
			continue
		}
		if p.swarm() {
			newItems = append(newItems, w.long(p.opts.PublishMode))
		} else {
			newItems = append(newItems, quote(st.quote, w.short()))
		}
		wide = append(wide, w.allInterfaces() && !p.swarm())
	}
	marked := func() []string {
		out := make([]string, len(newItems))
		for i, it := range newItems {
			out[i] = it
			if wide[i] {
				out[i] += " " + SameReachMarker
			}
		}
		return out
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
			items := newItems
			if seq.Node.Style&yaml.FlowStyle == 0 {
				items = marked()
			}
			ed, err := e.text(seq.File).appendSeqItems(seq.Node, items)
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
			items := newItems
			if target.Node.Style&yaml.FlowStyle == 0 {
				items = marked() // a flow mapping gets the lines in flow form: no comments
			}
			lines = append(lines, blockSeq("ports", items, st)...)
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
