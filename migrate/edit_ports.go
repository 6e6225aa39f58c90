// The ports: edits: the entries a migrated service publishes, written in
// the file's style, in place of the entries host mode ignored.

package migrate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// portSpec is a port mapping to publish.
type portSpec struct {
	ip            string
	port, portEnd int
	proto         string
}

// published is the port or range, as ports: writes it.
func (ps portSpec) published() string {
	if ps.portEnd > ps.port {
		return strconv.Itoa(ps.port) + "-" + strconv.Itoa(ps.portEnd)
	}
	return strconv.Itoa(ps.port)
}

func (ps portSpec) short() string {
	rng := ps.published()
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

// SameReachMarker is what the rewriter writes beside a port it publishes on
// all interfaces: the listener was reachable there before (the reach
// invariant), and `unhost scan` reads the marker instead of reporting the
// port as all-interfaces (docs/scan.md), so that a migration's pull
// request passes the scan that proposed it.
const SameReachMarker = "# unhost:ignore all-interfaces -- published by unhost migrate: same reach as before"

// allInterfaces reports whether the mapping publishes on every address.
func (ps portSpec) allInterfaces() bool { return ps.ip == "" || ps.ip == "0.0.0.0" || ps.ip == "::" }

// markSameReach puts SameReachMarker at the end of the line that holds a
// block sequence's item, or, where that line has a comment already (a
// second cannot follow it), on a line of its own just above, which scan
// reads too.
func markSameReach(e *editor, f *load.SourceFile, seq, item *yaml.Node) {
	if seq.Style&yaml.FlowStyle != 0 {
		return
	}
	t := e.text(f)
	off := t.NodeOffset(item)
	end, _ := t.lineEnd(off)
	start := t.LineStart(item.Line)
	line := string(t.Data[start:end])
	switch {
	case strings.Contains(line, "unhost:ignore"):
	case strings.Contains(line, "#"):
		e.add(f, Edit{Start: start, End: start, Text: t.indentAt(off) + SameReachMarker + t.eol})
	default:
		e.add(f, Edit{Start: end, End: end, Text: " " + SameReachMarker})
	}
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
	return ip == want && pc.Published == ps.published() && int(pc.Target) == ps.port && orTCP(pc.Protocol) == ps.proto
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

// long renders a port in the long syntax that docker stack deploy reads.
func (ps portSpec) long(mode string) string {
	return fmt.Sprintf("target: %d\npublished: %s\nprotocol: %s\nmode: %s", ps.port, ps.published(), orTCP(ps.proto), mode)
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
	pub := w.published()
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
