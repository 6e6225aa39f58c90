// The reference edits: an address inside a scalar, rewritten in the
// source text so that the value changes by exactly that address.

package migrate

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// rewriteScalar replaces tokens (pairs of from, to) inside a scalar's
// source text, and checks that the scalar's value changes exactly that way.
// A scalar shared by several services (an anchor) is edited once; a second
// request must agree with the first.
func (p *planner) rewriteScalar(e *editor, f *load.SourceFile, n *yaml.Node, pairs [][2]string) error {
	want := n.Value
	for _, pr := range pairs {
		want = replaceToken(want, pr[0], pr[1])
	}
	if prev, ok := e.replaced[n]; ok {
		if prev == want {
			return nil
		}
		return fmt.Errorf("the value is shared by several services and needs different rewrites")
	}
	t := e.text(f)
	start := t.NodeOffset(n)
	end := t.scalarEnd(n, false)
	src := string(f.Data[start:end])
	newSrc := src
	for _, pr := range pairs {
		if !strings.Contains(newSrc, pr[0]) {
			return fmt.Errorf("the text %q is not written literally", pr[0])
		}
		newSrc = replaceToken(newSrc, pr[0], pr[1])
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		var got yaml.Node
		if err := yaml.Unmarshal([]byte("x: "+newSrc), &got); err != nil || len(got.Content) != 1 || len(got.Content[0].Content) != 2 || got.Content[0].Content[1].Value != want {
			return fmt.Errorf("rewriting would change more than the address")
		}
	}
	e.add(f, Edit{Start: start, End: end, Text: newSrc})
	e.replaced[n] = want
	return nil
}

// replaceToken replaces whole occurrences of token (not inside a longer
// host name or port).
func replaceToken(s, token, to string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, token)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		before := byte(' ')
		if i > 0 {
			before = s[i-1]
		}
		after := byte(' ')
		if i+len(token) < len(s) {
			after = s[i+len(token)]
		}
		if isTokenChar(before) || after >= '0' && after <= '9' || isTokenChar(after) && !strings.Contains(token, ":") {
			b.WriteString(s[:i+len(token)])
		} else {
			b.WriteString(s[:i] + to)
		}
		s = s[i+len(token):]
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}
