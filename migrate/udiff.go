package migrate

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// contextLines is the number of unchanged lines shown around each change,
// as in `diff -u` and `git diff`.
const contextLines = 3

// UnifiedDiff returns a unified diff turning old into new, with headers
// "--- a/<path>" and "+++ b/<path>" (paths as given, forward slashes), 3 lines of context,
// "@@ -l,s +l,s @@" hunks, and "\ No newline at end of file" markers where either side
// lacks a final newline. Empty string when old == new.
//
// Lines are split on "\n" only, so a "\r" before it (CRLF files) and any
// byte-order mark stay part of the line and survive `git apply` unchanged.
// Hunk ranges follow GNU diff: the count is left out when it is 1, and an
// empty range is written "l,0" with l the line before it.
func UnifiedDiff(path string, old, new []byte) string {
	if string(old) == string(new) {
		return ""
	}
	return writeDiff(path, diffLines(string(old), string(new)))
}

// Diff is the unified diff of the file's edit, as UnifiedDiff writes it
// with path in its headers. Since migrate knows which bytes it edited,
// go-diff only compares the lines around each edit, and every other line
// is equal: the cost grows with the file, not with its length times the
// number of changes (Myers' diff is O(ND)). Migrate starts computing it
// on another goroutine as soon as the edits are made, so that it overlaps
// the caller's Check; Diff waits for it. A FileResult built elsewhere,
// without its edits, is diffed whole.
func (f FileResult) Diff(path string) string {
	if string(f.Old) == string(f.New) {
		return ""
	}
	switch {
	case f.diff != nil:
		<-f.diff.done
		return writeDiff(path, f.diff.ops)
	case f.edits != nil:
		return writeDiff(path, regionOps(f.Old, f.edits))
	}
	return UnifiedDiff(path, f.Old, f.New)
}

// writeDiff writes the headers and hunks of an edit script.
func writeDiff(path string, ops []op) string {
	var sb strings.Builder
	p := filepath.ToSlash(path)
	sb.WriteString("--- a/" + p + "\n")
	sb.WriteString("+++ b/" + p + "\n")
	for _, h := range hunks(ops) {
		writeHunk(&sb, h)
	}
	return sb.String()
}

// regionMargin is how many unchanged lines around an edit go-diff sees.
const regionMargin = contextLines

// region is a run of whole lines of the old text, [lo, hi) in bytes, and
// what the edits make of it.
type region struct {
	lo, hi int
	text   string
}

// editRegions widens each edit to the whole lines it touches, merges
// those that overlap or touch, widens each by up to regionMargin unchanged
// lines on either side (sharing the lines between two regions), and
// applies the edits within each. edits are sorted by Start and do not
// overlap (as applyEdits requires).
func editRegions(old []byte, edits []Edit) []region {
	type span struct {
		lo, hi int
		edits  []Edit
	}
	var spans []span
	for _, e := range edits {
		lo := bytes.LastIndexByte(old[:e.Start], '\n') + 1
		hi := len(old)
		if i := bytes.IndexByte(old[e.End:], '\n'); i >= 0 {
			hi = e.End + i + 1
		}
		if n := len(spans); n > 0 && lo <= spans[n-1].hi {
			spans[n-1].hi = max(spans[n-1].hi, hi)
			spans[n-1].edits = append(spans[n-1].edits, e)
			continue
		}
		spans = append(spans, span{lo, hi, []Edit{e}})
	}
	// the margins: so that go-diff aligns a change with its neighbours as
	// it would seeing the whole file, without regions growing into each
	// other (which would make one region of a file with many edits)
	prevHi := 0
	for i := range spans {
		next := len(old)
		if i+1 < len(spans) {
			next = spans[i+1].lo
		}
		lo, hi := spans[i].lo, spans[i].hi
		gapBefore := bytes.Count(old[prevHi:lo], []byte("\n"))
		for k := 0; k < min(regionMargin, (gapBefore+1)/2) && lo > prevHi; k++ {
			lo = bytes.LastIndexByte(old[:lo-1], '\n') + 1
		}
		gapAfter := bytes.Count(old[hi:next], []byte("\n"))
		for k := 0; k < min(regionMargin, gapAfter/2) && hi < next; k++ {
			hi += bytes.IndexByte(old[hi:], '\n') + 1
		}
		spans[i].lo, spans[i].hi = lo, hi
		prevHi = hi
	}
	out := make([]region, len(spans))
	for i, s := range spans {
		var b strings.Builder
		pos := s.lo
		for _, e := range s.edits {
			b.Write(old[pos:e.Start])
			b.WriteString(e.Text)
			pos = e.End
		}
		b.Write(old[pos:s.hi])
		out[i] = region{s.lo, s.hi, b.String()}
	}
	return out
}

// regionOps is the edit script of old with edits applied: lines outside
// the edited regions are equal, and go-diff diffs each region.
func regionOps(old []byte, edits []Edit) []op {
	var ops []op
	pos := 0
	for _, r := range editRegions(old, edits) {
		for _, l := range splitLines(string(old[pos:r.lo])) {
			ops = append(ops, op{kind: opEqual, line: l})
		}
		ops = append(ops, diffLines(string(old[r.lo:r.hi]), r.text)...)
		pos = r.hi
	}
	for _, l := range splitLines(string(old[pos:])) {
		ops = append(ops, op{kind: opEqual, line: l})
	}
	return normalize(ops)
}

// splitLines splits s after every "\n"; each line keeps its terminator, and
// the last one lacks it when s does not end in a newline.
func splitLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

type opKind uint8

const (
	opEqual opKind = iota
	opDelete
	opInsert
)

// op is one line of the edit script. ai and bi are the line's position in
// old and in new (for an insertion, ai is where it goes in old; for a
// deletion, bi is where it was in new).
type op struct {
	kind   opKind
	ai, bi int
	line   string
}

// diffLines returns a shortest edit script turning a into b, computed by
// go-diff's line mode (each distinct line becomes one rune, Myers' diff
// runs on the runes), with every run of changes written as its deletions
// followed by its insertions. DiffTimeout is 0, so the result never depends
// on how fast the machine is.
func diffLines(a, b string) []op {
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0
	ra, rb, lines := dmp.DiffLinesToRunes(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMainRunes(ra, rb, false), lines)
	var ops []op
	for _, d := range diffs {
		kind := opEqual
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			kind = opDelete
		case diffmatchpatch.DiffInsert:
			kind = opInsert
		}
		for _, l := range splitLines(d.Text) {
			ops = append(ops, op{kind: kind, line: l})
		}
	}
	return normalize(ops)
}

// normalize reorders every run of changes so that its deletions come
// before its insertions, the way diff and git print them, and numbers
// ai and bi as the positions in old and new where each op happens.
func normalize(ops []op) []op {
	out := make([]op, 0, len(ops))
	for i := 0; i < len(ops); {
		if ops[i].kind == opEqual {
			out = append(out, ops[i])
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != opEqual {
			j++
		}
		for _, o := range ops[i:j] {
			if o.kind == opDelete {
				out = append(out, o)
			}
		}
		for _, o := range ops[i:j] {
			if o.kind == opInsert {
				out = append(out, o)
			}
		}
		i = j
	}
	ai, bi := 0, 0
	for k := range out {
		out[k].ai, out[k].bi = ai, bi
		if out[k].kind != opInsert {
			ai++
		}
		if out[k].kind != opDelete {
			bi++
		}
	}
	return out
}

// hunks groups ops into hunks: each change with up to contextLines equal
// lines on either side, merging changes whose context would touch or
// overlap (at most 2*contextLines equal lines apart).
func hunks(ops []op) [][]op {
	var out [][]op
	for i := 0; i < len(ops); {
		// Find the next change.
		for i < len(ops) && ops[i].kind == opEqual {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(i-contextLines, 0)
		// Extend through changes separated by short equal runs.
		end := i
		for {
			for end < len(ops) && ops[end].kind != opEqual {
				end++
			}
			eq := end
			for eq < len(ops) && ops[eq].kind == opEqual {
				eq++
			}
			if eq < len(ops) && eq-end <= 2*contextLines {
				end = eq
				continue
			}
			end = min(end+contextLines, eq)
			break
		}
		out = append(out, ops[start:end])
		i = end
	}
	return out
}

// writeHunk writes one hunk with its header. Line numbers come from the op
// indexes themselves, so later hunks are numbered correctly whatever the
// earlier ones added or removed.
func writeHunk(sb *strings.Builder, h []op) {
	aStart, bStart := h[0].ai, h[0].bi
	aCount, bCount := 0, 0
	for _, o := range h {
		switch o.kind {
		case opEqual:
			aCount++
			bCount++
		case opDelete:
			aCount++
		case opInsert:
			bCount++
		}
	}
	sb.WriteString("@@ -" + hunkRange(aStart, aCount) + " +" + hunkRange(bStart, bCount) + " @@\n")
	for _, o := range h {
		switch o.kind {
		case opEqual:
			writeLine(sb, ' ', o.line)
		case opDelete:
			writeLine(sb, '-', o.line)
		case opInsert:
			writeLine(sb, '+', o.line)
		}
	}
}

// hunkRange formats a 0-based start and a count as a GNU diff range: the
// 1-based first line, the count only when it is not 1, and for an empty
// range the line before it.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return strconv.Itoa(start) + ",0"
	case 1:
		return strconv.Itoa(start + 1)
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(count)
}

func writeLine(sb *strings.Builder, prefix byte, line string) {
	sb.WriteByte(prefix)
	sb.WriteString(line)
	if !strings.HasSuffix(line, "\n") {
		sb.WriteString("\n\\ No newline at end of file\n")
	}
}
