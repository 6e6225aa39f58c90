package migrate

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
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
	a, b := splitLines(old), splitLines(new)
	ops := diffLines(a, b)

	var sb strings.Builder
	p := filepath.ToSlash(path)
	sb.WriteString("--- a/" + p + "\n")
	sb.WriteString("+++ b/" + p + "\n")
	for _, h := range hunks(ops) {
		writeHunk(&sb, h, a, b)
	}
	return sb.String()
}

// splitLines splits s after every "\n"; each line keeps its terminator, and
// the last one lacks it when s does not end in a newline.
func splitLines(s []byte) []string {
	var lines []string
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, string(s))
			break
		}
		lines = append(lines, string(s[:i+1]))
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

// op is one line of the edit script: for opEqual and opDelete, ai indexes
// old; for opEqual and opInsert, bi indexes new.
type op struct {
	kind   opKind
	ai, bi int
}

// diffLines returns a shortest edit script turning a into b, with every
// run of changes written as its deletions followed by its insertions.
func diffLines(a, b []string) []op {
	// Intern lines so the diff compares ints, not strings.
	ids := make(map[string]int, len(a)+len(b))
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	d := &differ{a: intern(a), b: intern(b)}
	d.diff(0, len(a), 0, len(b))
	return normalize(d.ops)
}

type differ struct {
	a, b []int
	ops  []op
	// v1 and v2 are the forward and reverse frontiers, reused across
	// calls so that memory stays O(len(a)+len(b)).
	v1, v2 []int
}

// diff appends the edit script for a[alo:ahi] against b[blo:bhi] using
// Myers' linear-space divide and conquer.
func (d *differ) diff(alo, ahi, blo, bhi int) {
	// Common prefix.
	for alo < ahi && blo < bhi && d.a[alo] == d.b[blo] {
		d.ops = append(d.ops, op{opEqual, alo, blo})
		alo++
		blo++
	}
	// Common suffix, emitted after the middle.
	n := 0
	for alo < ahi-n && blo < bhi-n && d.a[ahi-n-1] == d.b[bhi-n-1] {
		n++
	}
	ahi -= n
	bhi -= n

	switch {
	case alo == ahi:
		for j := blo; j < bhi; j++ {
			d.ops = append(d.ops, op{opInsert, alo, j})
		}
	case blo == bhi:
		for i := alo; i < ahi; i++ {
			d.ops = append(d.ops, op{opDelete, i, blo})
		}
	default:
		x, y, ok := d.bisect(alo, ahi, blo, bhi)
		if ok && (x > alo || y > blo) && (x < ahi || y < bhi) {
			d.diff(alo, x, blo, y)
			d.diff(x, ahi, y, bhi)
		} else {
			// No common line: replace the whole range.
			for i := alo; i < ahi; i++ {
				d.ops = append(d.ops, op{opDelete, i, blo})
			}
			for j := blo; j < bhi; j++ {
				d.ops = append(d.ops, op{opInsert, ahi, j})
			}
		}
	}

	for k := 0; k < n; k++ {
		d.ops = append(d.ops, op{opEqual, ahi + k, bhi + k})
	}
}

// bisect finds the middle of a shortest edit path through a[alo:ahi] and
// b[blo:bhi] by running Myers' algorithm from both ends until the paths
// meet. It returns the absolute split point, or ok == false when the two
// ranges share no line.
func (d *differ) bisect(alo, ahi, blo, bhi int) (x, y int, ok bool) {
	a, b := d.a[alo:ahi], d.b[blo:bhi]
	n, m := len(a), len(b)
	maxD := (n + m + 1) / 2
	off := maxD + 1
	size := 2*maxD + 3
	if cap(d.v1) < size {
		d.v1 = make([]int, size)
		d.v2 = make([]int, size)
	}
	v1, v2 := d.v1[:size], d.v2[:size]
	for i := range v1 {
		v1[i] = -1
		v2[i] = -1
	}
	v1[off+1] = 0
	v2[off+1] = 0
	delta := n - m
	// With an odd delta the forward path meets the reverse one, otherwise
	// the reverse path meets the forward one.
	front := delta%2 != 0
	// Diagonals that ran off the edge of the grid are skipped.
	k1start, k1end, k2start, k2end := 0, 0, 0, 0
	for dd := 0; dd <= maxD; dd++ {
		for k1 := -dd + k1start; k1 <= dd-k1end; k1 += 2 {
			i := off + k1
			var x1 int
			if k1 == -dd || (k1 != dd && v1[i-1] < v1[i+1]) {
				x1 = v1[i+1]
			} else {
				x1 = v1[i-1] + 1
			}
			y1 := x1 - k1
			for x1 < n && y1 < m && a[x1] == b[y1] {
				x1++
				y1++
			}
			v1[i] = x1
			switch {
			case x1 > n:
				k1end += 2
			case y1 > m:
				k1start += 2
			case front:
				j := off + delta - k1
				if j >= 0 && j < size && v2[j] != -1 && x1 >= n-v2[j] {
					return alo + x1, blo + y1, true
				}
			}
		}
		for k2 := -dd + k2start; k2 <= dd-k2end; k2 += 2 {
			i := off + k2
			var x2 int
			if k2 == -dd || (k2 != dd && v2[i-1] < v2[i+1]) {
				x2 = v2[i+1]
			} else {
				x2 = v2[i-1] + 1
			}
			y2 := x2 - k2
			for x2 < n && y2 < m && a[n-x2-1] == b[m-y2-1] {
				x2++
				y2++
			}
			v2[i] = x2
			switch {
			case x2 > n:
				k2end += 2
			case y2 > m:
				k2start += 2
			case !front:
				j := off + delta - k2
				if j >= 0 && j < size && v1[j] != -1 {
					x1 := v1[j]
					y1 := x1 - (j - off)
					if x1 >= n-x2 {
						return alo + x1, blo + y1, true
					}
				}
			}
		}
	}
	return 0, 0, false
}

// normalize reorders every run of changes so that its deletions come
// before its insertions, the way diff and git print them, and renumbers
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
func writeHunk(sb *strings.Builder, h []op, a, b []string) {
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
			writeLine(sb, ' ', a[o.ai])
		case opDelete:
			writeLine(sb, '-', a[o.ai])
		case opInsert:
			writeLine(sb, '+', b[o.bi])
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
