package scan

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// topLevelKeys are Compose's own top-level keys: never service names.
var topLevelKeys = map[string]bool{
	"version": true, "name": true, "include": true, "services": true, "networks": true,
	"volumes": true, "secrets": true, "configs": true, "models": true,
}

// scanStructure scans a YAML file that Compose cannot load, from its
// structure alone: its services mapping, or top-level mappings that look
// like services, or the whole document when it is one service's body.
func scanStructure(f *File) []Finding {
	if f.Root == nil || f.Root.Kind != yaml.MappingNode {
		return nil
	}
	return structureView(f).check()
}

func structureView(f *File) *view {
	v := &view{services: map[string]*service{}, hostNets: map[string]bool{}, containers: map[string]string{}}
	root := f.Root
	var entries [][2]*yaml.Node // key, mapping
	if s := resolve(load.MapValue(root, "services")); s != nil && s.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(s.Content); i += 2 {
			entries = append(entries, [2]*yaml.Node{s.Content[i], s.Content[i+1]})
		}
	} else {
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, val := root.Content[i], root.Content[i+1]
			if strings.HasPrefix(k.Value, "x-") || topLevelKeys[k.Value] || !looksLikeService(resolve(val)) {
				continue
			}
			entries = append(entries, [2]*yaml.Node{k, val})
		}
		if len(entries) == 0 && topLevelService(root) {
			name := strings.SplitN(path.Base(f.Show), ".", 2)[0]
			entries = append(entries, [2]*yaml.Node{{Kind: yaml.ScalarNode, Value: name, Line: 1, Column: 1}, root})
		}
	}
	byName := map[string]*yaml.Node{}
	for _, e := range entries {
		byName[e[0].Value] = resolve(e[1])
	}
	// the host network of a swarm stack: networks: {x: {external: true, name: host}}
	if nets := resolve(load.MapValue(root, "networks")); nets != nil && nets.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(nets.Content); i += 2 {
			k, def := nets.Content[i].Value, resolve(nets.Content[i+1])
			if isHostNetworkDef(k, def) {
				v.hostNets[k] = true
			}
		}
	}
	for _, e := range entries {
		name := e[0].Value
		m := resolve(e[1])
		if m == nil || m.Kind != yaml.MappingNode {
			continue
		}
		s := &service{name: name, hasPorts: true}
		collectParts(f.Show, m, byName, "", &s.parts, map[*yaml.Node]bool{}, 0)
		if _, val, _, ok := s.effective("network_mode"); ok && val != nil && val.Kind == yaml.ScalarNode {
			s.mode = strings.TrimSpace(val.Value)
			if hostModeValue(s.mode) {
				s.mode = "host"
			}
		}
		if _, nets, _, ok := s.effective("networks"); ok && nets != nil {
			switch nets.Kind {
			case yaml.SequenceNode:
				for _, it := range nets.Content {
					if it = resolve(it); it != nil && it.Kind == yaml.ScalarNode {
						s.networks = append(s.networks, it.Value)
					}
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(nets.Content); i += 2 {
					s.networks = append(s.networks, nets.Content[i].Value)
				}
			}
		}
		if _, cn, _, ok := s.effective("container_name"); ok && cn != nil {
			v.containers[cn.Value] = name
		}
		v.services[name] = s
	}
	return v
}

// The raw-YAML predicates of host networking, for files that scan reads
// from their structure (compose-go cannot load them, or they need no load).
// Where the model is loaded, analysis.OnHostNetwork decides.

var hostDefaultRe = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:?[-=]host\}$`)

// hostModeValue reports whether a network_mode value as written means the
// host network: host, or a variable that defaults to host.
func hostModeValue(v string) bool {
	v = strings.TrimSpace(v)
	return v == "host" || hostDefaultRe.MatchString(v)
}

// isHostNetworkDef reports whether a top-level network definition is the
// external host network.
func isHostNetworkDef(key string, def *yaml.Node) bool {
	if def == nil || def.Kind != yaml.MappingNode {
		return false
	}
	ext := resolve(load.MapValue(def, "external"))
	if ext == nil {
		return false
	}
	external := ext.Kind == yaml.ScalarNode && strings.EqualFold(ext.Value, "true") ||
		ext.Kind == yaml.MappingNode // legacy external: {name: host}
	if !external {
		return false
	}
	name := key
	if n := resolve(load.MapValue(def, "name")); n != nil && n.Value != "" {
		name = n.Value
	}
	if ext.Kind == yaml.MappingNode {
		if n := resolve(load.MapValue(ext, "name")); n != nil && n.Value != "" {
			name = n.Value
		}
	}
	return name == "host"
}

// collectParts gathers the mappings that define a service in one file,
// lowest precedence first: extends bases in the same file, merged
// mappings, then the mapping itself. It is bounded in depth and visits
// each node once, so alias cycles cannot loop.
func collectParts(file string, m *yaml.Node, byName map[string]*yaml.Node, via string, out *[]part, seen map[*yaml.Node]bool, depth int) {
	if m == nil || m.Kind != yaml.MappingNode || depth > 20 || seen[m] {
		return
	}
	seen[m] = true
	if ext := resolve(load.MapValue(m, "extends")); ext != nil {
		base := ""
		switch ext.Kind {
		case yaml.ScalarNode:
			base = ext.Value
		case yaml.MappingNode:
			if load.MapValue(ext, "file") == nil {
				if s := resolve(load.MapValue(ext, "service")); s != nil {
					base = s.Value
				}
			}
		}
		if bm, ok := byName[base]; ok {
			collectParts(file, bm, byName, "extends", out, seen, depth+1)
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "<<" {
			continue
		}
		src := resolve(m.Content[i+1])
		var srcs []*yaml.Node
		if src != nil && src.Kind == yaml.SequenceNode {
			srcs = src.Content
		} else {
			srcs = []*yaml.Node{src}
		}
		// in a merge list, earlier mappings win: add them last
		for j := len(srcs) - 1; j >= 0; j-- {
			collectParts(file, resolve(srcs[j]), byName, "merge", out, seen, depth+1)
		}
	}
	*out = append(*out, part{file: file, node: m, via: via})
}

// hostModeRe finds network_mode: host in text that is not YAML; the key
// must not be part of a longer one (x-network_mode).
var hostModeRe = regexp.MustCompile(`(?:^|[\s{,"'])network_mode["']?\s*:\s*["']?(host)(?:["'\s,}#]|$)`)

// commentStart returns where a # comment starts in a line, or len(line).
func commentStart(line string) int {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return len(line)
}

type textHit struct {
	line, col int
	service   string
}

// textHostModes finds network_mode: host outside comments, line by line,
// and guesses the service from the nearest less indented key above.
func textHostModes(data []byte) []textHit {
	lines := strings.Split(string(data), "\n")
	var out []textHit
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		code := l[:commentStart(l)]
		m := hostModeRe.FindStringSubmatchIndex(code)
		if m == nil {
			continue
		}
		col := utf8.RuneCountInString(code[:m[2]]) + 1
		out = append(out, textHit{line: i + 1, col: col, service: serviceAbove(lines, i)})
	}
	return out
}

var keyLineRe = regexp.MustCompile(`^(\s*)["']?([A-Za-z0-9_.\-]+)["']?\s*:\s*(?:#.*)?$`)

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " \t")) }

func serviceAbove(lines []string, i int) string {
	ind := indentOf(lines[i])
	for j := i - 1; j >= 0; j-- {
		l := strings.TrimSuffix(lines[j], "\r")
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "{{") {
			continue
		}
		if indentOf(l) >= ind {
			continue
		}
		if m := keyLineRe.FindStringSubmatch(l); m != nil && !topLevelKeys[m[2]] {
			return m[2]
		}
		return ""
	}
	return ""
}

// scanText scans a file that is not YAML by its text: only host networking
// is found this way.
func scanText(f *File) []Finding {
	var out []Finding
	for _, h := range textHostModes(f.Data) {
		advice := "`unhost migrate` cannot rewrite a file that is not YAML: move {it} to a bridge network in the template by hand"
		var svcs []string
		if h.service != "" {
			svcs = []string{h.service}
		}
		out = append(out, Finding{Rule: RuleHostNetwork, File: f.Show, Line: h.line, Col: h.col, Services: svcs,
			format: "{services} {is} on the host network (network_mode: host): every port opened there is reachable wherever the host is; " + advice,
			Fix:    advice})
	}
	return out
}

// loopbackTokenRe finds text that analysis.IsLoopback could accept as a
// host: a loopback reference cannot come from a file without one.
var loopbackTokenRe = regexp.MustCompile(`(?i)localhost|::1|127\.`)

// varNameRe finds the names of the variables a file interpolates.
var varNameRe = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// needsModel reports whether a Compose file that loads alone must be loaded
// through compose-go for its findings: whether anything in it could put a
// service on the host network, hold a loopback reference, or make the
// loaded model differ from the YAML structure where a rule looks. Loading
// is most of a scan's cost, and compose-go cannot change the findings of a
// file that holds none of these: all it could add is that it refuses the
// file, which is reported for the files it loads.
func needsModel(f *File, env []string) bool {
	if f.Root == nil || f.Root.Kind != yaml.MappingNode {
		return true
	}
	data := f.Data
	// other files, YAML tags that change merging, and the values of
	// variables: the structure does not show what they hold
	if k, _ := load.MapEntry(f.Root, "include"); k != nil ||
		bytes.Contains(data, []byte("!reset")) || bytes.Contains(data, []byte("!override")) ||
		varsSet(f, env) {
		return true
	}
	// a network whose name or externality a variable decides
	if nets := load.MapValue(f.Root, "networks"); nets != nil && subtreeHas(nets, "$") {
		return true
	}
	v := structureView(f)
	// a loopback reference points at another service's port: it takes two
	if len(v.services) > 1 && loopbackTokenRe.Match(data) {
		return true
	}
	for _, s := range v.services {
		if v.onHostNetwork(s) || strings.Contains(s.mode, "$") || strings.HasPrefix(s.mode, "service:") || strings.HasPrefix(s.mode, "container:") {
			return true
		}
		if _, ext, _, ok := s.effective("extends"); ok && ext != nil && ext.Kind == yaml.MappingNode && load.MapValue(ext, "file") != nil {
			return true
		}
		// compose refuses a service with neither image nor build: say so
		if _, img, _, ok := s.effective("image"); !ok || img == nil {
			if _, b, _, ok := s.effective("build"); !ok || b == nil {
				return true
			}
		}
	}
	// a service the structure does not see as one (not a mapping)
	if svcs := resolve(load.MapValue(f.Root, "services")); svcs == nil || len(svcs.Content)/2 != len(v.services) {
		return true
	}
	return false
}

// varsSet reports whether a variable the file uses has a value in env or
// could have one from the .env file beside it.
func varsSet(f *File, env []string) bool {
	if !bytes.ContainsRune(f.Data, '$') {
		return false
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(f.Abs), ".env")); err == nil {
		return true
	}
	set := map[string]bool{}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok {
			set[k] = true
		}
	}
	for _, m := range varNameRe.FindAllSubmatch(f.Data, -1) {
		if set[string(m[1])] {
			return true
		}
	}
	return false
}

// subtreeHas reports whether a scalar in n's subtree, aliases followed,
// contains s. Each node is visited once, so alias cycles cannot loop.
func subtreeHas(n *yaml.Node, s string) bool {
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if n == nil || seen[n] {
			return false
		}
		seen[n] = true
		switch n.Kind {
		case yaml.ScalarNode:
			return strings.Contains(n.Value, s)
		case yaml.AliasNode:
			return walk(n.Alias)
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(n)
}
