// The ports: edits: the entries a migrated service publishes, written in
// the file's style, in place of the entries host mode ignored.

package migrate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/unhost/unhost/load"
	"go.yaml.in/yaml/v4"
)

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
