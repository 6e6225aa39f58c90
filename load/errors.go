package load

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// loadErrorRule recognises one kind of compose-go error: the path of the
// field it is about, the value within that field it names (if any), and
// the reason to show.
type loadErrorRule struct {
	re *regexp.Regexp
	// parse returns the field path (dotted, with [i] for list items), the
	// value in it the error is about ("" for the field itself), whether
	// the error is about the key rather than its value, and the reason.
	parse func(m []string) (path, value string, atKey bool, reason string)
}

var quotedNames = regexp.MustCompile(`'([^']+)'`)

var loadErrorRules = []loadErrorRule{
	// schema errors first: their reason may quote names ('$A', '$B'),
	// which the rule after this one would take for a path
	{regexp.MustCompile(`validating \S+: (\S+) (.*)$`), func(m []string) (string, string, bool, string) {
		if strings.HasPrefix(m[2], "additional propert") {
			// compose-go lists the names in map order: sort them, so
			// that the message is the same on every run
			names := quotedNames.FindAllStringSubmatch(m[2], -1)
			var keys []string
			for _, n := range names {
				keys = append(keys, n[1])
			}
			sort.Strings(keys)
			if len(keys) > 0 {
				return dottedPath(m[1]), keys[0], true, "not a compose key: " + strings.Join(keys, ", ")
			}
			return dottedPath(m[1]), "", true, "not a compose key"
		}
		if m[2] == "false schema" {
			return dottedPath(m[1]), "", true, "not a compose key"
		}
		return dottedPath(m[1]), "", false, m[2]
	}},
	{regexp.MustCompile(`'([^']+)' (.*?)(?:; |$)`), func(m []string) (string, string, bool, string) {
		return bracketPath(m[1]), "", false, m[2]
	}},
	{regexp.MustCompile(`service "([^"]+)" refers to undefined (network|volume|config|secret) (\S+?): invalid compose project`), func(m []string) (string, string, bool, string) {
		return "services." + m[1] + "." + m[2] + "s", m[3], false, fmt.Sprintf("undefined %s %q", m[2], m[3])
	}},
	{regexp.MustCompile(`service "([^"]+)" depends on undefined service "([^"]+)"`), func(m []string) (string, string, bool, string) {
		return "services." + m[1] + ".depends_on", m[2], false, fmt.Sprintf("undefined service %q", m[2])
	}},
	{regexp.MustCompile("service (\\S+) declares mutually exclusive `network_mode` and `networks`"), func(m []string) (string, string, bool, string) {
		return "services." + m[1] + ".networks", "", true, "network_mode and networks are mutually exclusive"
	}},
	{regexp.MustCompile(`cannot extend service "([^"]+)" in \S+: (.*)$`), func(m []string) (string, string, bool, string) {
		return "services." + m[1] + ".extends", "", false, m[2]
	}},
}

// locateLoadError turns an error of compose-go into one line that names
// file:line:col and the field: compose-go's messages name neither, or only
// a field path; the YAML nodes of the files give the position. Errors of
// unhost's own reading and parsing already do, and are kept as they are.
func locateLoadError(files []*SourceFile, err error) error {
	for _, own := range []error{ErrNotRegular, ErrTooLarge, ErrOutsideRoot, ErrPseudoFile, ErrTooManyNodes, ErrTooDeep, ErrAliasBomb} {
		if errors.Is(err, own) {
			return oneLineError(err)
		}
	}
	msg := oneLine(err)
	for _, f := range files {
		msg = strings.ReplaceAll(msg, f.Abs, f.Path)
	}
	// a port that does not parse: compose-go's message names none, or
	// names the wrong reason; parse each port as compose does
	if strings.Contains(strings.ToLower(msg), "port") {
		if e := badPort(files); e != "" {
			return &relabelled{msg: e, err: err}
		}
	}
	// compose-go names whichever such service its map order reaches
	// first; name the first one in the files instead, so that the error is
	// the same on every run
	if strings.Contains(msg, "declares mutually exclusive `network_mode` and `networks`") {
		if e := exclusiveNetworks(files); e != "" {
			return &relabelled{msg: e, err: err}
		}
	}
	for _, r := range loadErrorRules {
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		path, value, atKey, reason := r.parse(m)
		reason = lowerFirst(strings.TrimSpace(reason))
		if pos, ok := findField(files, path, value, atKey); ok {
			return &relabelled{msg: fmt.Sprintf("%s: %s: %s", pos, path, reason), err: err}
		}
		return &relabelled{msg: fmt.Sprintf("%s: %s", path, reason), err: err}
	}
	return &relabelled{msg: msg, err: err}
}

// badPort returns "file:line:col: services.S.ports[i]: reason" for the
// first short-syntax port that compose cannot parse.
func badPort(files []*SourceFile) string {
	for _, f := range files {
		services := MapValue(f.Root, "services")
		if services == nil || services.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(services.Content); i += 2 {
			ports := MapValue(services.Content[i+1], "ports")
			if ports == nil || ports.Kind != yaml.SequenceNode {
				continue
			}
			for j, p := range ports.Content {
				if p.Kind != yaml.ScalarNode || strings.Contains(p.Value, "$") {
					continue
				}
				if _, err := types.ParsePortConfig(p.Value); err != nil {
					return fmt.Sprintf("%s: services.%s.ports[%d]: %s", valuePos(f, p), services.Content[i].Value, j, lowerFirst(err.Error()))
				}
			}
		}
	}
	return ""
}

// exclusiveNetworks returns "file:line:col: services.S.networks: reason"
// for the first service, in file order, that sets both network_mode and
// networks.
func exclusiveNetworks(files []*SourceFile) string {
	for _, f := range files {
		services := MapValue(f.Root, "services")
		if services == nil || services.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(services.Content); i += 2 {
			s := services.Content[i+1]
			if MapValue(s, "network_mode") == nil {
				continue
			}
			if k, _ := MapEntry(s, "networks"); k != nil {
				return fmt.Sprintf("%s: services.%s.networks: network_mode and networks are mutually exclusive", f.PosOf(k), services.Content[i].Value)
			}
		}
	}
	return ""
}

// findField finds the node at path (and, when value is set, the item or
// key with that value within it) in the file of highest precedence that
// has it.
func findField(files []*SourceFile, path, value string, atKey bool) (Pos, bool) {
	parts := splitPath(path)
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		var key *yaml.Node
		n := f.Root
		for _, p := range parts {
			if n != nil && n.Kind == yaml.AliasNode {
				n = n.Alias
			}
			if n == nil {
				break
			}
			if idx, err := strconv.Atoi(p); err == nil && n.Kind == yaml.SequenceNode {
				key = nil
				if idx < 0 || idx >= len(n.Content) {
					n = nil
					break
				}
				n = n.Content[idx]
				continue
			}
			key, n = MapEntry(n, p)
		}
		if n == nil {
			continue
		}
		if value != "" {
			if v := itemWithValue(n, value); v != nil {
				return valuePos(f, v), true
			}
		}
		if atKey && key != nil {
			return f.PosOf(key), true
		}
		return valuePos(f, n), true
	}
	return Pos{}, false
}

// itemWithValue returns the item of a list, or the key of a mapping, whose
// value is v.
func itemWithValue(n *yaml.Node, v string) *yaml.Node {
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Value == v {
				return c
			}
		}
	case yaml.MappingNode:
		if k, _ := MapEntry(n, v); k != nil {
			return k
		}
	}
	return nil
}

// valuePos is the position of a value's first character: inside its
// quotes for a quoted scalar.
func valuePos(f *SourceFile, n *yaml.Node) Pos {
	p := f.PosOf(n)
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		p.Col++
	}
	return p
}

// bracketPath turns mapstructure's services[web].ports[0] into
// services.web.ports[0].
func bracketPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				b.WriteString(p[i:])
				break
			}
			inner := p[i+1 : i+j]
			if _, err := strconv.Atoi(inner); err == nil {
				b.WriteString(p[i : i+j+1])
			} else {
				b.WriteString("." + inner)
			}
			i += j
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// dottedPath turns the schema's services.web.ports.0 into
// services.web.ports[0].
func dottedPath(p string) string {
	parts := strings.Split(p, ".")
	var b strings.Builder
	for i, s := range parts {
		if _, err := strconv.Atoi(s); err == nil && i > 0 {
			b.WriteString("[" + s + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// splitPath splits services.web.ports[0] into services, web, ports, 0.
func splitPath(p string) []string {
	p = strings.ReplaceAll(p, "[", ".")
	p = strings.ReplaceAll(p, "]", "")
	return strings.Split(p, ".")
}

func lowerFirst(s string) string {
	if s == "" || strings.HasPrefix(s, "SELinux") {
		return s
	}
	if len(s) > 1 && s[1] >= 'A' && s[1] <= 'Z' {
		return s // an acronym
	}
	return strings.ToLower(s[:1]) + s[1:]
}
