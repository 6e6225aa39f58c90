// The networks: edits: a migrated service's networks, the top-level
// definitions the migration adds, and the external host network dropped
// once nothing uses it.

package migrate

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
)

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
