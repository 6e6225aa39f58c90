package migrate

import (
	"fmt"
	"sort"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// pin is a service that stays on the host network but took its
// network_mode: host from a definition that a migrated service shares (an
// anchor, a merge key or an extends base): the edits remove it there, so
// the service must say it itself.
type pin struct {
	service string
	at      load.NodeRef // its own mapping, where network_mode: host goes
}

// isHostMode reports whether a service mapping says network_mode: host,
// and returns that entry. (analysis.OnHostNetwork decides it for the
// loaded service; this finds the text that says it.)
func isHostMode(m *yaml.Node) (key, val *yaml.Node, ok bool) {
	k, v := load.MapEntry(m, "network_mode")
	return k, v, k != nil && v.Kind == yaml.ScalarNode && v.Value == "host"
}

// decidePins finds the services to pin. The edits remove network_mode:
// host from every mapping that a migrated service takes it from; a service
// kept on the host that shares one of those mappings through its anchors
// or base (not as its own mapping) is pinned, unless an own mapping that
// the edits leave alone still says it.
func (p *planner) decidePins() error {
	if !p.anyFileHas("<<") && !p.anyFileHas("extends") {
		return nil // no definition is shared
	}
	removed := map[*yaml.Node]bool{}    // network_mode keys the edits remove
	shared := map[*yaml.Node][]string{} // mappings a migrated service takes host mode from through another definition
	for _, n := range p.names {
		if !p.migrated(n) {
			continue
		}
		for _, nr := range p.serviceNodes(n) {
			if k, _, ok := isHostMode(nr.Node); ok {
				removed[k] = true
				if nr.Via != "" {
					shared[nr.Node] = append(shared[nr.Node], n)
				}
			}
		}
	}
	if len(shared) == 0 {
		return nil
	}
	var pinned []string
	for _, m := range p.names {
		if p.migrated(m) || !p.svcs[m].facts.HostNetwork() {
			continue
		}
		for _, mr := range p.serviceNodes(m) {
			if len(shared[mr.Node]) > 0 {
				pinned = append(pinned, m)
				break
			}
		}
	}
	sort.Strings(pinned)
	for _, n := range pinned {
		var own *load.NodeRef
		ownHas := false
		for _, nr := range p.serviceNodes(n) {
			if nr.Via != "" {
				continue
			}
			if own == nil {
				own = &nr
			}
			if k, _, ok := isHostMode(nr.Node); ok && !removed[k] {
				ownHas = true
			}
		}
		if ownHas || own == nil {
			continue
		}
		if own.Node.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: service %s is an alias of a migrated definition: give it its own mapping", own.File.PosOf(own.Node), n)
		}
		p.pins = append(p.pins, pin{service: n, at: *own})
		p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: n, Where: own.File.PosOf(own.Node).String(),
			What: n + " keeps the host network: it now says network_mode: host itself, since the shared definition it took it from was migrated"})
	}
	return nil
}
