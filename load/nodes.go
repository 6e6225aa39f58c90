package load

import (
	"path"

	"go.yaml.in/yaml/v4"
)

// ServiceNodes returns the YAML mappings that define service name, in
// order of precedence from lowest to highest: extends bases, merged anchors,
// then each file's own mapping.
func (c *Compose) ServiceNodes(name string) []NodeRef {
	var out []NodeRef
	seen := map[*yaml.Node]bool{}
	files := c.composeFiles()
	index := c.serviceIndex(files)
	for i, f := range files {
		m := index[i][name]
		if m == nil {
			continue
		}
		c.collectServiceNodes(f, m, &out, seen, 0)
	}
	return out
}

// serviceIndex maps, for each compose file, a service's name to the value
// of its key under services: (the first, as MapEntry finds it), so that
// asking for every service costs linear time, not quadratic.
func (c *Compose) serviceIndex(files []*SourceFile) []map[string]*yaml.Node {
	c.servicesOnce.Do(func() {
		c.services = make([]map[string]*yaml.Node, len(files))
		for i, f := range files {
			idx := map[string]*yaml.Node{}
			m := MapValue(f.Root, "services")
			if m != nil && m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m != nil && m.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(m.Content); j += 2 {
					k := m.Content[j]
					if _, dup := idx[k.Value]; k.Kind == yaml.ScalarNode && !dup {
						idx[k.Value] = m.Content[j+1]
					}
				}
			}
			c.services[i] = idx
		}
	})
	return c.services
}

// NodeRef is a YAML node in a file.
type NodeRef struct {
	File *SourceFile
	Node *yaml.Node
	// Via is how the node is reached: "" (the service itself), "merge"
	// (through a << merge key) or "extends".
	Via string
}

func (c *Compose) composeFiles() []*SourceFile {
	n := len(c.Project.ComposeFiles)
	if n > len(c.Files) {
		n = len(c.Files)
	}
	return c.Files[:n]
}

// FileByAbs returns the source file with that absolute path.
func (c *Compose) FileByAbs(abs string) *SourceFile {
	for _, f := range c.Files {
		if f.Abs == abs {
			return f
		}
	}
	return nil
}

func (c *Compose) collectServiceNodes(f *SourceFile, m *yaml.Node, out *[]NodeRef, seen map[*yaml.Node]bool, depth int) {
	if m == nil || depth > 20 || seen[m] {
		return
	}
	seen[m] = true
	via := ""
	if depth > 0 {
		via = "extends"
	}
	if m.Kind == yaml.AliasNode {
		m = m.Alias
		via = "merge"
	}
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	// extends base first: it has the lowest precedence
	if ext := MapValue(m, "extends"); ext != nil {
		baseName, baseFile := "", f
		if ext.Kind == yaml.ScalarNode {
			baseName = ext.Value
		} else if ext.Kind == yaml.MappingNode {
			if s := MapValue(ext, "service"); s != nil {
				baseName = s.Value
			}
			if fn := MapValue(ext, "file"); fn != nil && fn.Value != "" {
				p := fn.Value
				if !path.IsAbs(p) {
					p = path.Join(path.Dir(f.Abs), p)
				}
				baseFile = c.FileByAbs(p)
			}
		}
		if baseFile != nil && baseName != "" {
			if bm := MapValue(MapValue(baseFile.Root, "services"), baseName); bm != nil {
				before := len(*out)
				c.collectServiceNodes(baseFile, bm, out, seen, depth+1)
				for i := before; i < len(*out); i++ {
					if (*out)[i].Via == "" {
						(*out)[i].Via = "extends"
					}
				}
			}
		}
	}
	for _, mm := range mergeSources(m) {
		*out = append(*out, NodeRef{File: f, Node: mm, Via: "merge"})
	}
	*out = append(*out, NodeRef{File: f, Node: m, Via: via})
}

// mergeSources returns the mappings merged into m by "<<" keys, deepest
// first, in YAML's precedence (later ones lose to earlier ones, so they are
// returned first).
func mergeSources(m *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Value != "<<" || k.Kind != yaml.ScalarNode {
			continue
		}
		var srcs []*yaml.Node
		if v.Kind == yaml.SequenceNode {
			srcs = v.Content
		} else {
			srcs = []*yaml.Node{v}
		}
		for j := len(srcs) - 1; j >= 0; j-- {
			s := srcs[j]
			if s.Kind == yaml.AliasNode {
				s = s.Alias
			}
			if s != nil && s.Kind == yaml.MappingNode {
				out = append(out, mergeSources(s)...)
				out = append(out, s)
			}
		}
	}
	return out
}
