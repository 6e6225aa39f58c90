package load

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// countNodes counts the nodes of a parsed tree, aliases as one.
func countNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// TestEstimateNodes checks that the count made before parsing is never
// below half of the real count: the bound on nodes holds within a factor
// of two for what the parser would build.
func TestEstimateNodes(t *testing.T) {
	texts := []string{
		"a: 1\nb: [1, 2, {c: d}]\n",
		"- - - - a\n- - b\n",
		"a:\n  b:\n    c:\n      d: e\n",
		"x: |\n  - a\n  - b\n  [1,2,3]\ny: 'q''s' # c\nz: \"a\\\"b, c\"\n",
		"k: a | b\nl: >-\n  folded\n  text\nm: [a, b]\n",
		"s: &a {x: 1}\nt: *a\nu: {<<: *a, y: 2}\n",
	}
	files, _ := filepath.Glob("../../shared/corpus/*.y*ml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			texts = append(texts, string(data))
		}
	}
	for _, text := range texts {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			continue
		}
		real := countNodes(&doc) - 1
		est, _ := estimateNodes([]byte(text), 1<<30)
		if 2*est < real {
			t.Errorf("estimate %d, real %d, for:\n%.200s", est, real, text)
		}
	}
}

// TestParseYAMLBounds checks that each bound has its own message.
func TestParseYAMLBounds(t *testing.T) {
	cases := []struct {
		name, text string
		want       error
		msg        string
	}{
		{"nodes", "x: [" + strings.Repeat("a,", MaxNodes) + "a]\n", ErrTooManyNodes, "f.yaml:1:1: too many yaml nodes: more than 200000 nodes"},
		{"depth flow", "x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n", ErrTooDeep, "f.yaml:1:"},
		{"depth block", "x:\n" + strings.Repeat("- ", 200) + "a\n", ErrTooDeep, "collections nest more than 100 levels"},
		{"aliases", aliasBomb(), ErrAliasBomb, "f.yaml: yaml aliases expand too far: aliases expand to more than 200000 nodes (a possible alias bomb)"},
		{"syntax", "a: [\n", nil, "f.yaml:2:1: "},
	}
	for _, c := range cases {
		_, err := ParseYAML("f.yaml", []byte(c.text))
		if err == nil {
			t.Errorf("%s: parsed", c.name)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v is not %v", c.name, err, c.want)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.msg)
		}
	}
	if root, err := ParseYAML("f.yaml", []byte("a: 1\n---\nb: 2\n")); err != nil || root == nil {
		t.Errorf("a stream of two documents: %v", err)
	}
	if root, err := ParseYAML("f.yaml", nil); err != nil || root != nil {
		t.Errorf("an empty file: %v, %v", root, err)
	}
}
