package migrate

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// Edit replaces Data[Start:End] of one file with Text.
type Edit struct {
	Start, End int
	Text       string
}

// applyEdits splices edits into data, and returns the edits in the order
// applied. Edits must not overlap; two edits that insert at the same
// offset are kept in the order given.
func applyEdits(data []byte, edits []Edit) ([]byte, []Edit, error) {
	sorted := make([]Edit, len(edits))
	copy(sorted, edits)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start < sorted[j].Start })
	var out bytes.Buffer
	pos := 0
	for _, e := range sorted {
		if e.Start < pos || e.End < e.Start || e.End > len(data) {
			return nil, nil, fmt.Errorf("internal error: overlapping edits at byte %d", e.Start)
		}
		out.Write(data[pos:e.Start])
		out.WriteString(e.Text)
		pos = e.End
	}
	out.Write(data[pos:])
	return out.Bytes(), sorted, nil
}

// text is a source file with the helpers that editing needs.
type text struct {
	*load.SourceFile
	eol string // "\n" or "\r\n", as the file uses
}

func newText(f *load.SourceFile) *text {
	eol := "\n"
	if i := bytes.IndexByte(f.Data, '\n'); i > 0 && f.Data[i-1] == '\r' {
		eol = "\r\n"
	}
	return &text{SourceFile: f, eol: eol}
}

// lineEnd returns the offset of the end of the line holding off (before
// "\r\n" or "\n"), and the offset where the next line starts.
func (t *text) lineEnd(off int) (end, next int) {
	i := bytes.IndexByte(t.Data[off:], '\n')
	if i < 0 {
		return len(t.Data), len(t.Data)
	}
	end = off + i
	next = end + 1
	if end > 0 && t.Data[end-1] == '\r' {
		end--
	}
	return end, next
}

// lineOf returns the 1-based line number holding off.
func (t *text) lineOf(off int) int {
	return sort.Search(t.Lines(), func(i int) bool { return t.LineStart(i+2) > off || i+1 == t.Lines() }) + 1
}

// indentAt returns the indentation (spaces) of the line holding off.
func (t *text) indentAt(off int) string {
	start := t.LineStart(t.lineOf(off))
	i := start
	for i < len(t.Data) && (t.Data[i] == ' ' || t.Data[i] == '\t') {
		i++
	}
	return string(t.Data[start:i])
}

// scalarEnd returns the byte offset just past a scalar node's text.
func (t *text) scalarEnd(n *yaml.Node, flow bool) int {
	start := t.NodeOffset(n)
	d := t.Data
	if n.Tag != "" && start < len(d) && d[start] == '!' {
		// a tagged scalar: the node may point at the tag
		for start < len(d) && d[start] != ' ' && d[start] != '\n' {
			start++
		}
		for start < len(d) && d[start] == ' ' {
			start++
		}
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := start + 1; i < len(d); i++ {
			if d[i] == '\\' {
				i++
				continue
			}
			if d[i] == '"' {
				return i + 1
			}
		}
		return len(d)
	case n.Style&yaml.SingleQuotedStyle != 0:
		for i := start + 1; i < len(d); i++ {
			if d[i] == '\'' {
				if i+1 < len(d) && d[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
		return len(d)
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		_, next := t.lineEnd(start)
		base := len(t.indentAt(start))
		end, _ := t.lineEnd(start)
		for next < len(d) {
			le, nn := t.lineEnd(next)
			line := d[next:le]
			trimmed := bytes.TrimLeft(line, " ")
			if len(bytes.TrimSpace(line)) > 0 && len(line)-len(trimmed) <= base {
				break
			}
			if len(bytes.TrimSpace(line)) > 0 {
				end = le
			}
			next = nn
		}
		return end
	}
	// plain scalar
	end := start
	lineEnd, next := t.lineEnd(start)
	first := t.plainLineEnd(start, lineEnd, flow)
	end = first
	got := strings.TrimSpace(string(d[start:first]))
	for got != n.Value && next < len(d) && strings.HasPrefix(n.Value, got) {
		le, nn := t.lineEnd(next)
		seg := t.plainLineEnd(next, le, flow)
		part := strings.TrimSpace(string(d[next:seg]))
		if part == "" {
			break
		}
		got += " " + part
		end = seg
		next = nn
	}
	return end
}

// plainLineEnd finds where a plain scalar on one line stops: at " #", at a
// flow indicator in flow context, else at the end of the line, without
// trailing blanks.
func (t *text) plainLineEnd(start, lineEnd int, flow bool) int {
	d := t.Data
	i := start
	for ; i < lineEnd; i++ {
		c := d[i]
		if c == '#' && i > start && (d[i-1] == ' ' || d[i-1] == '\t') {
			break
		}
		if flow && (c == ',' || c == ']' || c == '}') {
			break
		}
		if c == ':' && (i+1 == lineEnd || d[i+1] == ' ' || d[i+1] == '\t') && !flow {
			// a plain scalar does not hold ": " (it would be a key)
			break
		}
	}
	for i > start && (d[i-1] == ' ' || d[i-1] == '\t') {
		i--
	}
	return i
}

// nodeEnd returns the offset just past the last character of n.
func (t *text) nodeEnd(n *yaml.Node, flow bool) int {
	switch n.Kind {
	case yaml.ScalarNode:
		return t.scalarEnd(n, flow)
	case yaml.AliasNode:
		off := t.NodeOffset(n)
		i := off + 1
		for i < len(t.Data) && !strings.ContainsRune(" \t\r\n,]}", rune(t.Data[i])) {
			i++
		}
		return i
	case yaml.MappingNode, yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			return t.flowEnd(t.NodeOffset(n))
		}
		if len(n.Content) == 0 {
			return t.NodeOffset(n)
		}
		return t.nodeEnd(n.Content[len(n.Content)-1], false)
	}
	return t.NodeOffset(n)
}

// flowEnd returns the offset past the bracket closing the flow collection
// that opens at off.
func (t *text) flowEnd(off int) int {
	d := t.Data
	depth := 0
	for i := off; i < len(d); i++ {
		switch d[i] {
		case '"':
			for i++; i < len(d) && d[i] != '"'; i++ {
				if d[i] == '\\' {
					i++
				}
			}
		case '\'':
			for i++; i < len(d); i++ {
				if d[i] == '\'' {
					if i+1 < len(d) && d[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
		case '#':
			if i > 0 && (d[i-1] == ' ' || d[i-1] == '\t' || d[i-1] == '\n') {
				for i < len(d) && d[i] != '\n' {
					i++
				}
			}
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(d)
}

// trailingComment returns the comment (from '#') that follows offset off on
// its line, or "".
func (t *text) trailingComment(off int) string {
	end, _ := t.lineEnd(off)
	rest := string(t.Data[off:end])
	if i := strings.Index(rest, "#"); i >= 0 && strings.TrimSpace(rest[:i]) == "" {
		return strings.TrimRight(rest[i:], " \t")
	}
	return ""
}

// removeEntry returns the edit that removes key: value from a mapping. In
// block style the whole line goes; a comment on it stays on its own line.
func (t *text) removeEntry(m, key, val *yaml.Node) (Edit, error) {
	ks := t.NodeOffset(key)
	ve := t.nodeEnd(val, m.Style&yaml.FlowStyle != 0)
	if m.Style&yaml.FlowStyle != 0 {
		// "{a: 1, network_mode: host, b: 2}": take the entry and one comma.
		d := t.Data
		j := ve
		for j < len(d) && (d[j] == ' ' || d[j] == '\t') {
			j++
		}
		if j < len(d) && d[j] == ',' {
			j++
			for j < len(d) && (d[j] == ' ' || d[j] == '\t') {
				j++
			}
			return Edit{Start: ks, End: j}, nil
		}
		i := ks
		for i > 0 && (d[i-1] == ' ' || d[i-1] == '\t') {
			i--
		}
		if i > 0 && d[i-1] == ',' {
			return Edit{Start: i - 1, End: ve}, nil
		}
		return Edit{Start: ks, End: ve}, nil
	}
	multi := t.lineOf(ks) != t.lineOf(ve)
	if multi && (val.Kind == yaml.ScalarNode && val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0) {
		return Edit{}, fmt.Errorf("%s:%d:%d: %s spans several lines: edit it by hand", t.Path, key.Line, key.Column, key.Value)
	}
	start := t.LineStart(key.Line)
	if strings.TrimSpace(string(t.Data[start:ks])) != "" {
		// "- network_mode: host" as the first entry of a sequence item, or
		// a key after other text on the line: remove just the entry.
		return Edit{}, fmt.Errorf("%s:%d:%d: %s shares its line with other content: edit it by hand", t.Path, key.Line, key.Column, key.Value)
	}
	_, next := t.lineEnd(ve)
	text := ""
	if multi {
		// a block value: its lines go too; comments among them stay
		var keep []string
		for l := key.Line; l <= t.lineOf(ve); l++ {
			ls := t.LineStart(l)
			le, _ := t.lineEnd(ls)
			line := string(t.Data[ls:le])
			if l == key.Line {
				if c := t.trailingComment(t.NodeOffset(key)); c != "" {
					keep = append(keep, string(t.Data[start:ks])+c)
				}
				continue
			}
			if c := commentOf(line); c != "" {
				keep = append(keep, string(t.Data[start:ks])+c)
			}
		}
		for _, k := range keep {
			text += k + t.eol
		}
		return Edit{Start: start, End: next, Text: text}, nil
	}
	if c := t.trailingComment(ve); c != "" {
		text = string(t.Data[start:ks]) + c + t.eol
	}
	return Edit{Start: start, End: next, Text: text}, nil
}

// commentOf returns the comment of a line of block YAML (outside quotes),
// or "".
func commentOf(line string) string {
	inS, inD := false, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\'' && !inD:
			inS = !inS
		case c == '"' && !inS:
			inD = !inD
		case c == '\\' && inD:
			i++
		case c == '#' && !inS && !inD && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimRight(line[i:], " \t")
		}
	}
	return ""
}

// blockInsertPoint returns where new lines go after the last entry of a
// block collection: the start of the line after its end.
func (t *text) blockInsertPoint(n *yaml.Node) int {
	end := t.nodeEnd(n, false)
	_, next := t.lineEnd(end)
	return next
}

// needsEOLBefore reports whether inserting at off needs a line break first
// (the file does not end with one).
func (t *text) needsEOLBefore(off int) bool {
	return off == len(t.Data) && len(t.Data) > 0 && t.Data[len(t.Data)-1] != '\n'
}

// childIndent returns the indentation of a block mapping's keys.
func (t *text) childIndent(m *yaml.Node) string {
	if len(m.Content) > 0 {
		return strings.Repeat(" ", m.Content[0].Column-1)
	}
	return "  "
}

// replaceEntry replaces a block mapping's "key: value" line with lines, at
// the same indentation. A comment on the old line stays, on its own line.
func (t *text) replaceEntry(m, key, val *yaml.Node, lines []string) (Edit, error) {
	ed, err := t.removeEntry(m, key, val)
	if err != nil {
		return Edit{}, err
	}
	indent := strings.Repeat(" ", key.Column-1)
	var b strings.Builder
	b.WriteString(ed.Text)
	for _, l := range lines {
		b.WriteString(indent + l + t.eol)
	}
	ed.Text = b.String()
	return ed, nil
}

// removeSeqItem removes one item of a sequence.
func (t *text) removeSeqItem(seq, item *yaml.Node) (Edit, error) {
	if seq.Style&yaml.FlowStyle != 0 {
		fake := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		return t.removeEntry(fake, item, item)
	}
	start := t.NodeOffset(item)
	end := t.nodeEnd(item, false)
	ls := t.LineStart(item.Line)
	if t.lineOf(start) != t.lineOf(end) && strings.Trim(string(t.Data[ls:start]), " -\t") != "" {
		return Edit{}, fmt.Errorf("%s:%d:%d: a multi-line ports entry: edit it by hand", t.Path, item.Line, item.Column)
	}
	_, next := t.lineEnd(end)
	text := ""
	if c := t.trailingComment(end); c != "" {
		text = t.indentAt(start) + c + t.eol
	}
	return Edit{Start: ls, End: next, Text: text}, nil
}

// appendSeqItems adds items (already quoted) to the end of a sequence.
func (t *text) appendSeqItems(seq *yaml.Node, items []string) (Edit, error) {
	if seq.Style&yaml.FlowStyle != 0 {
		end := t.flowEnd(t.NodeOffset(seq)) - 1
		sep := ", "
		if len(seq.Content) == 0 {
			sep = ""
		}
		var flow []string
		for _, it := range items {
			flow = append(flow, flowItem(it))
		}
		return Edit{Start: end, End: end, Text: sep + strings.Join(flow, ", ")}, nil
	}
	if len(seq.Content) == 0 {
		return Edit{}, fmt.Errorf("%s:%d:%d: empty sequence", t.Path, seq.Line, seq.Column)
	}
	first := seq.Content[0]
	dash := t.NodeOffset(first)
	// find the "- " before the first item
	ls := t.LineStart(first.Line)
	prefix := string(t.Data[ls:dash])
	di := strings.LastIndex(prefix, "-")
	if di < 0 {
		return Edit{}, fmt.Errorf("%s:%d:%d: cannot find the sequence indicator", t.Path, first.Line, first.Column)
	}
	lead := strings.Repeat(" ", di) + "-" + strings.Repeat(" ", len(prefix)-di-1)
	at := t.blockInsertPoint(seq)
	var b strings.Builder
	if t.needsEOLBefore(at) {
		b.WriteString(t.eol)
	}
	for _, it := range items {
		for i, l := range strings.Split(it, "\n") {
			if i == 0 {
				b.WriteString(lead + l + t.eol)
			} else {
				b.WriteString(strings.Repeat(" ", len(lead)) + l + t.eol)
			}
		}
	}
	return Edit{Start: at, End: at, Text: b.String()}, nil
}
