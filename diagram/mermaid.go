// Package diagram draws a migration plan as a Mermaid flowchart, which
// GitHub renders in markdown (pull-request bodies, plan files).
//
// One diagram shows the stack after the migration with the changes marked:
// services are grouped in subgraphs by the networks they join after the
// migration (services kept on the host network in their own group), each
// listener carries its reach before and after ("5432/tcp: all interfaces →
// stack-internal"), published ports are links from an outside-clients node
// labelled with their reach, and references between services (and, when
// given, connections observed by detect, with their counts) are links
// labelled with the port.
//
// The output uses a small subset of Mermaid: flowchart LR, %% comments,
// subgraph ID["label"] ... end, nodes ID["label"] and ID(("label")), links
// --> and -.-> with |"label"|, classDef and class. Labels are escaped with
// Mermaid's entity codes, and hold no markup but <br/>; ids are
// [A-Za-z][A-Za-z0-9_]*.
package diagram

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/unhost/unhost/plan"
)

// Edge is a connection observed between two services of the stack, such as
// an edge of detect's inventory.
type Edge struct {
	From, To string
	Port     int
	Protocol string // "tcp" when empty
	Count    int    // connections seen; 0 when unknown
}

// Options add to what the plan says.
type Options struct {
	// Edges are connections observed at runtime (detect's inventory). An
	// edge that the plan's references also give is drawn once, with its
	// count.
	Edges []Edge
	// Window is the observation window of Edges (e.g. "15s"), shown in
	// their labels when set.
	Window string
}

// Mermaid draws p. See MermaidWith to add observed edges.
func Mermaid(p *plan.Plan) string { return MermaidWith(p, Options{}) }

// MermaidWith draws p with the observed edges of opts. The text ends with
// a newline and holds no code fence: wrap it in ```mermaid ... ``` to put
// it in markdown.
func MermaidWith(p *plan.Plan, opts Options) string {
	d := newDrawing(p)
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	if p.Project != "" {
		fmt.Fprintf(&b, "  %%%% %s: after the migration (target %s)\n", comment(p.Project), comment(string(p.Target)))
	}
	for _, g := range d.groups() {
		if g.name == "" {
			for _, s := range g.services {
				fmt.Fprintf(&b, "  %s[\"%s\"]\n", d.id(s), d.label(s))
			}
			continue
		}
		fmt.Fprintf(&b, "  subgraph %s[\"%s\"]\n", g.id, escape(g.name))
		for _, s := range g.services {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", d.id(s), d.label(s))
		}
		b.WriteString("  end\n")
	}
	links := d.links(opts)
	needClients, needHost := false, false
	for _, l := range links {
		needClients = needClients || l.from == clientsID
		needHost = needHost || l.to == hostID
	}
	if needClients {
		fmt.Fprintf(&b, "  %s((\"%s\"))\n", clientsID, "clients outside the stack")
	}
	if needHost {
		fmt.Fprintf(&b, "  %s((\"%s\"))\n", hostID, "host (outside the stack)")
	}
	for _, l := range links {
		arrow := "-->"
		if l.dotted {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", l.from, arrow, escape(l.label), l.to)
	}
	b.WriteString("  classDef migrated fill:#e6f4ea,stroke:#1e8e3e\n")
	b.WriteString("  classDef kept fill:#fce8e6,stroke:#d93025,stroke-dasharray:4 3\n")
	b.WriteString("  classDef unchanged fill:#f1f3f4,stroke:#5f6368\n")
	for _, cl := range []string{"migrated", "kept", "unchanged"} {
		var ids []string
		for _, name := range d.order {
			if class(d.svc[name].Action) == cl {
				ids = append(ids, d.id(name))
			}
		}
		if len(ids) > 0 {
			fmt.Fprintf(&b, "  class %s %s\n", strings.Join(ids, ","), cl)
		}
	}
	return b.String()
}

const (
	clientsID = "clients"
	hostID    = "host"
)

// drawing holds the lookups of one plan.
type drawing struct {
	p     *plan.Plan
	ids   map[string]string // service -> node id
	svc   map[string]plan.ServicePlan
	order []string
}

func newDrawing(p *plan.Plan) *drawing {
	d := &drawing{p: p, ids: map[string]string{}, svc: map[string]plan.ServicePlan{}}
	for _, s := range p.Services {
		d.svc[s.Name] = s
		d.order = append(d.order, s.Name)
		d.ids[s.Name] = "s_" + ident(s.Name)
	}
	slices.Sort(d.order)
	return d
}

func (d *drawing) id(service string) string { return d.ids[service] }

func class(a plan.Action) string {
	switch a {
	case plan.ActionMigrate, plan.ActionFollow:
		return "migrated"
	case plan.ActionKeepHost, plan.ActionNotSelected:
		return "kept"
	default:
		return "unchanged"
	}
}

// status is the change a service's label shows.
func (d *drawing) status(s plan.ServicePlan) string {
	switch s.Action {
	case plan.ActionMigrate:
		return "moved off the host network"
	case plan.ActionKeepHost:
		return "kept on the host network"
	case plan.ActionNotSelected:
		return "kept on the host network (not selected)"
	case plan.ActionFollow:
		if t := d.followTarget(s.Name); t != "" {
			return "shares the network of " + t
		}
		return "shares another service's network"
	case plan.ActionRefsOnly:
		return "unchanged; references rewritten"
	default:
		return "unchanged"
	}
}

// followTarget is the service whose listeners name s as their follower.
func (d *drawing) followTarget(s string) string {
	for _, name := range d.order {
		for _, l := range d.svc[name].Listeners {
			if l.Via == s {
				return name
			}
		}
	}
	return ""
}

// label is a service node's text: name, change, and one line per listener
// with its reach before and after.
func (d *drawing) label(name string) string {
	s := d.svc[name]
	lines := []string{escape(name), escape(d.status(s))}
	for _, l := range s.Listeners {
		port := portText(l)
		line := port + "/" + l.Protocol
		if ex, ok := d.exposure(name, l.Protocol, port); ok {
			if ex.Before == ex.After {
				line += ": " + ex.After
			} else {
				line += ": " + ex.Before + " → " + ex.After
			}
		} else {
			line += ": " + string(l.Decision)
		}
		if l.Via != "" {
			line += " (of " + l.Via + ")"
		}
		lines = append(lines, escape(line))
	}
	return strings.Join(lines, "<br/>")
}

func portText(l plan.ListenerPlan) string {
	if l.PortEnd > l.Port {
		return strconv.Itoa(l.Port) + "-" + strconv.Itoa(l.PortEnd)
	}
	return strconv.Itoa(l.Port)
}

func (d *drawing) exposure(service, proto, port string) (plan.Exposure, bool) {
	for _, e := range d.p.Exposure {
		if e.Service == service && e.Protocol == proto && e.Port == port {
			return e, true
		}
	}
	return plan.Exposure{}, false
}

// group is a subgraph: the services that join the same set of networks.
type group struct {
	id, name string
	services []string
}

// groups puts every service in one group: kept services in "host network",
// followers with the service they follow, others by their set of networks;
// services with no network change (unchanged) outside any group.
func (d *drawing) groups() []group {
	byKey := map[string]*group{}
	var keys []string
	add := func(key, name, service string) {
		g := byKey[key]
		if g == nil {
			g = &group{id: "g_" + ident(key), name: name}
			byKey[key] = g
			keys = append(keys, key)
		}
		g.services = append(g.services, service)
	}
	var loose []string
	keyOf := func(s plan.ServicePlan) (string, string, bool) {
		switch {
		case s.Action == plan.ActionKeepHost || s.Action == plan.ActionNotSelected:
			return "host", "host network", true
		case len(s.Networks) > 0:
			nets := slices.Clone(s.Networks)
			slices.Sort(nets)
			var names []string
			for _, n := range nets {
				names = append(names, d.networkName(n))
			}
			kind := "network"
			if len(nets) > 1 {
				kind = "networks"
			}
			return "net_" + strings.Join(nets, "\x00"), kind + " " + strings.Join(names, " + "), true
		}
		return "", "", false
	}
	for _, name := range d.order {
		s := d.svc[name]
		if s.Action == plan.ActionFollow {
			if t := d.followTarget(name); t != "" {
				if key, gname, ok := keyOf(d.svc[t]); ok {
					add(key, gname, name)
					continue
				}
			}
		}
		if key, gname, ok := keyOf(s); ok {
			add(key, gname, name)
			continue
		}
		loose = append(loose, name)
	}
	slices.Sort(keys)
	out := make([]group, 0, len(keys)+1)
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	if len(loose) > 0 {
		out = append(out, group{services: loose})
	}
	return out
}

// networkName is a network's name with "(internal)" when the plan makes it
// internal.
func (d *drawing) networkName(n string) string {
	for _, np := range d.p.Networks {
		if np.Name == n && np.Internal {
			return n + " (internal)"
		}
	}
	return n
}

// link is one arrow.
type link struct {
	from, to string
	label    string
	dotted   bool
}

// links gives, sorted: published ports (from the clients node), references
// between services and to the host, observed edges, and followers.
func (d *drawing) links(opts Options) []link {
	var out []link
	for _, name := range d.order {
		for _, l := range d.svc[name].Listeners {
			if l.Decision != plan.DecisionPublish {
				continue
			}
			port := portText(l)
			reach := "published"
			if ex, ok := d.exposure(name, l.Protocol, port); ok {
				reach = ex.After
			}
			out = append(out, link{from: clientsID, to: d.id(name), label: port + "/" + l.Protocol + " " + reach})
		}
	}
	type key struct {
		from, to string
		port     int
		proto    string
	}
	counts := map[key]int{}
	observed := map[key]bool{}
	for _, e := range opts.Edges {
		proto := cmp.Or(e.Protocol, "tcp")
		k := key{e.From, e.To, e.Port, proto}
		observed[k] = true
		counts[k] += e.Count
	}
	drawn := map[key]bool{}
	edgeLabel := func(k key, kind string) string {
		label := strconv.Itoa(k.port) + "/" + k.proto
		if kind != "" {
			label += " " + kind
		}
		if observed[k] {
			if n := counts[k]; n > 0 {
				label += fmt.Sprintf(" · %d seen", n)
			} else {
				label += " · seen"
			}
			if opts.Window != "" {
				label += " in " + opts.Window
			}
		}
		return label
	}
	for _, r := range d.p.References {
		if r.Port == 0 {
			continue
		}
		switch r.Kind {
		case plan.RefService, plan.RefObserved:
			if d.ids[r.From] == "" || d.ids[r.To] == "" || r.From == r.To {
				continue
			}
			k := key{r.From, r.To, r.Port, "tcp"}
			if drawn[k] {
				continue
			}
			drawn[k] = true
			kind := ""
			if r.Action == "manual" {
				kind = "(manual)"
			}
			out = append(out, link{from: d.id(r.From), to: d.id(r.To), label: edgeLabel(k, kind)})
		case plan.RefHostService:
			if d.ids[r.From] == "" {
				continue
			}
			to := hostID
			if kept := d.keptListener(r.Port); kept != "" && kept != r.From {
				to = d.id(kept) // a service the stack keeps on the host
			}
			k := key{r.From, to, r.Port, "tcp"}
			if drawn[k] {
				continue
			}
			drawn[k] = true
			out = append(out, link{from: d.id(r.From), to: to, label: strconv.Itoa(r.Port) + "/tcp via " + cmp.Or(hostName(r.After), "the host")})
		}
	}
	for _, e := range opts.Edges {
		k := key{e.From, e.To, e.Port, cmp.Or(e.Protocol, "tcp")}
		if drawn[k] || d.ids[e.From] == "" || d.ids[e.To] == "" || e.From == e.To {
			continue
		}
		drawn[k] = true
		out = append(out, link{from: d.id(e.From), to: d.id(e.To), label: edgeLabel(k, "(observed)"), dotted: true})
	}
	for _, name := range d.order {
		if d.svc[name].Action == plan.ActionFollow {
			if t := d.followTarget(name); t != "" {
				out = append(out, link{from: d.id(name), to: d.id(t), label: "shares network namespace", dotted: true})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b link) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a.from, b.from), strings.Compare(a.to, b.to), strings.Compare(a.label, b.label))
	})
	return slices.CompactFunc(out, func(a, b link) bool { return a == b })
}

// rank orders links: published ports, then service links, then the rest.
func rank(l link) int {
	switch {
	case l.from == clientsID:
		return 0
	case l.dotted:
		return 2
	default:
		return 1
	}
}

// keptListener is the service kept on the host network that listens on
// TCP port (one of them, the first by name), or "".
func (d *drawing) keptListener(port int) string {
	for _, name := range d.order {
		s := d.svc[name]
		if s.Action != plan.ActionKeepHost && s.Action != plan.ActionNotSelected {
			continue
		}
		for _, l := range s.Listeners {
			if l.Protocol == "tcp" && l.Port <= port && port <= max(l.Port, l.PortEnd) {
				return name
			}
		}
	}
	return ""
}

// hostName is the host part of a rewritten address ("host.docker.internal:1883").
func hostName(after string) string {
	if i := strings.LastIndexByte(after, ':'); i > 0 {
		return after[:i]
	}
	return after
}

// ident turns a name into an id fragment of [A-Za-z0-9_]: other bytes, and
// the underscore itself, become _XX (hex), so that different names never
// give the same id.
func ident(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	return b.String()
}

// escape makes text safe inside a quoted Mermaid label: the quote, the
// characters Mermaid or HTML give a meaning there (# < > & | `) become
// entity codes (#quot;, #60; ...), line breaks spaces.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString("#quot;")
		case '#', '<', '>', '&', '|', '`':
			fmt.Fprintf(&b, "#%d;", r)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// comment makes text safe in a %% comment line.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
