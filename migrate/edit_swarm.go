// The swarm edits: deploy.endpoint_mode.

package migrate

import (
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

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
