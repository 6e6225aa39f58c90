package migrate

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unhost/unhost/internal/ci"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// lines builds a file from numbered lines "prefix1\n" .. "prefixN\n".
func lines(prefix string, n int) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "%s%d\n", prefix, i)
	}
	return sb.String()
}

// edit replaces lines of s, numbered from 1 as in s, with the given text
// (which carries its own terminators, so it may add or remove lines).
func edit(s string, repl map[int]string) string {
	ls := strings.SplitAfter(s, "\n")
	for n, r := range repl {
		ls[n-1] = r
	}
	return strings.Join(ls, "")
}

type udiffCase struct {
	name     string
	path     string
	old, new string
	// hunks, when set, are the exact "@@" header lines expected.
	hunks []string
}

func udiffCases() []udiffCase {
	ten := lines("l", 10)
	twenty := lines("l", 20)
	return []udiffCase{
		{name: "change middle line", old: ten, new: edit(ten, map[int]string{5: "five\n"}),
			hunks: []string{"@@ -2,7 +2,7 @@"}},
		{name: "change first line", old: ten, new: edit(ten, map[int]string{1: "one\n"}),
			hunks: []string{"@@ -1,4 +1,4 @@"}},
		{name: "change last line", old: ten, new: edit(ten, map[int]string{10: "ten\n"}),
			hunks: []string{"@@ -7,4 +7,4 @@"}},
		{name: "append lines", old: ten, new: ten + "x\ny\n",
			hunks: []string{"@@ -8,3 +8,5 @@"}},
		{name: "prepend lines", old: ten, new: "x\ny\n" + ten,
			hunks: []string{"@@ -1,3 +1,5 @@"}},
		{name: "delete line", old: ten, new: edit(ten, map[int]string{5: ""}),
			hunks: []string{"@@ -2,7 +2,6 @@"}},
		{name: "single line file changed", old: "a\n", new: "b\n",
			hunks: []string{"@@ -1 +1 @@"}},
		{name: "insert into single line file", old: "a\n", new: "a\nb\n",
			hunks: []string{"@@ -1 +1,2 @@"}},
		{name: "empty old file", old: "", new: "a\nb\n",
			hunks: []string{"@@ -0,0 +1,2 @@"}},
		{name: "empty old file, new without newline", old: "", new: "a",
			hunks: []string{"@@ -0,0 +1 @@"}},
		{name: "whole file removed", old: "a\nb\nc\n", new: "",
			hunks: []string{"@@ -1,3 +0,0 @@"}},
		{name: "whole file removed, no final newline", old: "a\nb", new: "",
			hunks: []string{"@@ -1,2 +0,0 @@"}},
		{name: "whole file replaced", old: "a\nb\nc\n", new: "x\ny\n",
			hunks: []string{"@@ -1,3 +1,2 @@"}},
		{name: "add final newline", old: "a\nb", new: "a\nb\n",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "remove final newline", old: "a\nb\n", new: "a\nb",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "only a newline added", old: "", new: "\n",
			hunks: []string{"@@ -0,0 +1 @@"}},
		{name: "only a newline removed", old: "\n", new: "",
			hunks: []string{"@@ -1 +0,0 @@"}},
		{name: "no final newline on either side, last line changed",
			old: ten + "a", new: ten + "b", hunks: []string{"@@ -8,4 +8,4 @@"}},
		{name: "no final newline on either side, kept as context",
			old: "a\nb\nc\nd", new: "a\nB\nc\nd", hunks: []string{"@@ -1,4 +1,4 @@"}},
		{name: "no final newline, change far from end",
			old: ten + "end", new: edit(ten, map[int]string{1: "one\n"}) + "end",
			hunks: []string{"@@ -1,4 +1,4 @@"}},
		{name: "append after line without newline", old: "a\nb", new: "a\nb\nc\n",
			hunks: []string{"@@ -1,2 +1,3 @@"}},
		{name: "crlf line changed",
			old: "a\r\nb\r\nc\r\n", new: "a\r\nB\r\nc\r\n", hunks: []string{"@@ -1,3 +1,3 @@"}},
		{name: "crlf to lf", old: "a\r\nb\r\n", new: "a\nb\n",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "lf to crlf on one line", old: "a\nb\nc\n", new: "a\nb\r\nc\n",
			hunks: []string{"@@ -1,3 +1,3 @@"}},
		{name: "crlf without final newline", old: "a\r\nb\r", new: "a\r\nc\r",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "lone carriage returns stay inside lines", old: "a\rb\nc\n", new: "a\rB\nc\n",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "bom kept", old: "\ufeffa\nb\nc\n", new: "\ufeffa\nB\nc\n",
			hunks: []string{"@@ -1,3 +1,3 @@"}},
		{name: "bom line changed", old: "\ufeffa\nb\n", new: "\ufeffA\nb\n",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "bom removed", old: "\ufeffa\nb\n", new: "a\nb\n",
			hunks: []string{"@@ -1,2 +1,2 @@"}},
		{name: "bom with crlf", old: "\ufeffa\r\nb\r\n", new: "\ufeffa\r\nb\r\nc\r\n",
			hunks: []string{"@@ -1,2 +1,3 @@"}},
		{name: "adjacent changed lines", old: ten, new: edit(ten, map[int]string{4: "x\n", 5: "y\n"}),
			hunks: []string{"@@ -1,8 +1,8 @@"}},
		// Changes at lines 3 and 10 have 6 equal lines between them: the
		// 3+3 context lines touch, so git and diff print one hunk.
		{name: "changes six lines apart merge", old: twenty,
			new:   edit(twenty, map[int]string{3: "x\n", 10: "y\n"}),
			hunks: []string{"@@ -1,13 +1,13 @@"}},
		// Seven equal lines between: two hunks.
		{name: "changes seven lines apart split", old: twenty,
			new:   edit(twenty, map[int]string{3: "x\n", 11: "y\n"}),
			hunks: []string{"@@ -1,6 +1,6 @@", "@@ -8,7 +8,7 @@"}},
		{name: "overlapping context merges", old: twenty,
			new:   edit(twenty, map[int]string{5: "x\n", 8: "y\n"}),
			hunks: []string{"@@ -2,10 +2,10 @@"}},
		// The second hunk's +start must account for lines the first added.
		{name: "later hunk numbers after insertions", old: lines("l", 30),
			new:   edit(lines("l", 30), map[int]string{3: "l3\na\nb\nc\n", 25: "x\n"}),
			hunks: []string{"@@ -1,6 +1,9 @@", "@@ -22,7 +25,7 @@"}},
		{name: "later hunk numbers after deletions", old: lines("l", 30),
			new:   edit(lines("l", 30), map[int]string{3: "", 4: "", 25: "x\n"}),
			hunks: []string{"@@ -1,7 +1,5 @@", "@@ -22,7 +20,7 @@"}},
		{name: "three hunks with mixed counts", old: lines("l", 40),
			new:   edit(lines("l", 40), map[int]string{2: "a\nb\n", 20: "", 38: "c\nd\ne\n"}),
			hunks: []string{"@@ -1,5 +1,6 @@", "@@ -17,7 +18,6 @@", "@@ -35,6 +35,8 @@"}},
		{name: "lines that look like patch syntax",
			old: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n \\ No newline\n",
			new: "--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+c\n \\ No newline\n"},
		{name: "blank lines", old: "\n\n\n\n", new: "\n\n\n\n\n\n"},
		{name: "repeated lines", old: "a\na\na\nb\na\na\n", new: "a\nb\na\nb\na\nb\n"},
		{name: "path in subdirectory", path: "deploy/stack/compose.yaml", old: ten, new: edit(ten, map[int]string{2: "x\n"})},
		{name: "windows path separators", path: filepath.Join("deploy", "compose.yaml"), old: ten, new: edit(ten, map[int]string{2: "x\n"})},
		{name: "compose edit",
			old: "services:\n  web:\n    image: nginx\n    network_mode: host\n  db:\n    image: postgres\n    network_mode: host\n",
			new: "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n  db:\n    image: postgres\n"},
	}
}

func TestUnifiedDiffIdentical(t *testing.T) {
	for _, s := range []string{"", "a", "a\n", "a\r\nb\r\n", lines("l", 100)} {
		if got := UnifiedDiff("f", []byte(s), []byte(s)); got != "" {
			t.Errorf("UnifiedDiff(%q, same) = %q, want empty", s, got)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	requireGit(t)
	for _, tc := range udiffCases() {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "compose.yaml"
			}
			patch := UnifiedDiff(path, []byte(tc.old), []byte(tc.new))
			slash := filepath.ToSlash(path)
			wantHead := "--- a/" + slash + "\n+++ b/" + slash + "\n"
			if !strings.HasPrefix(patch, wantHead) {
				t.Fatalf("patch does not start with %q:\n%s", wantHead, patch)
			}
			if tc.hunks != nil {
				if got := hunkHeaders(patch); !equalStrings(got, tc.hunks) {
					t.Errorf("hunk headers = %q, want %q\n%s", got, tc.hunks, patch)
				}
			}
			checkNoNewlineMarkers(t, patch, tc.old, tc.new)
			got, err := applyPatch([]byte(tc.old), patch)
			if err != nil {
				t.Fatalf("in-process apply: %v\n%s", err, patch)
			}
			if !bytes.Equal(got, []byte(tc.new)) {
				t.Fatalf("in-process apply = %q, want %q\n%s", got, tc.new, patch)
			}
			if got := gitApply(t, slash, []byte(tc.old), patch); !bytes.Equal(got, []byte(tc.new)) {
				t.Fatalf("git apply = %q, want %q\n%s", got, tc.new, patch)
			}
		})
	}
}

// checkNoNewlineMarkers checks that the marker appears once for each side
// whose last line both lacks a newline and shows in the patch.
func checkNoNewlineMarkers(t *testing.T, patch, old, new string) {
	t.Helper()
	n := strings.Count(patch, "\n\\ No newline at end of file\n")
	max := 0
	if old != "" && !strings.HasSuffix(old, "\n") {
		max++
	}
	if new != "" && !strings.HasSuffix(new, "\n") {
		max++
	}
	if n > max {
		t.Errorf("%d no-newline markers, at most %d expected\n%s", n, max, patch)
	}
	if max > 0 && n == 0 && strings.HasSuffix(old, "\n") != strings.HasSuffix(new, "\n") {
		t.Errorf("final newline changed but no marker\n%s", patch)
	}
}

// TestUnifiedDiffRandomGit cross-checks random edits of a file with many
// repeated lines against git apply.
func TestUnifiedDiffRandomGit(t *testing.T) {
	requireGit(t)
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 40; i++ {
		old, new := randomPair(r, 60)
		if bytes.Equal(old, new) {
			continue
		}
		patch := UnifiedDiff("f.yaml", old, new)
		if got := gitApply(t, "f.yaml", old, patch); !bytes.Equal(got, new) {
			t.Fatalf("case %d: git apply = %q, want %q\n%s", i, got, new, patch)
		}
	}
}

// TestUnifiedDiffRandom checks many random edits with the in-process
// applier, and that the edit script is as short as an LCS says it can be.
func TestUnifiedDiffRandom(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 2000; i++ {
		old, new := randomPair(r, 1+r.Intn(40))
		checkPatch(t, old, new)
	}
}

// randomPair returns a file of up to n lines from a small alphabet (so
// lines repeat) and a random edit of it, sometimes dropping or adding the
// final newline or using CRLF.
func randomPair(r *rand.Rand, n int) (old, new []byte) {
	words := []string{"a", "b", "c", "  x: 1", "", "d\r", "\ufeffe"}
	var o []string
	for i := r.Intn(n + 1); i > 0; i-- {
		o = append(o, words[r.Intn(len(words))])
	}
	nw := append([]string(nil), o...)
	for e := r.Intn(6); e > 0; e-- {
		switch pos := r.Intn(len(nw) + 1); r.Intn(3) {
		case 0:
			nw = append(nw[:pos], append([]string{words[r.Intn(len(words))]}, nw[pos:]...)...)
		case 1:
			if pos < len(nw) {
				nw = append(nw[:pos], nw[pos+1:]...)
			}
		case 2:
			if pos < len(nw) {
				nw[pos] = words[r.Intn(len(words))]
			}
		}
	}
	join := func(ls []string) []byte {
		s := strings.Join(ls, "\n")
		if len(ls) > 0 && r.Intn(4) != 0 {
			s += "\n"
		}
		return []byte(s)
	}
	return join(o), join(nw)
}

func TestUnifiedDiffDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 50; i++ {
		old, new := randomPair(r, 80)
		first := UnifiedDiff("f", old, new)
		for j := 0; j < 5; j++ {
			if got := UnifiedDiff("f", old, new); got != first {
				t.Fatalf("case %d: output changed between runs:\n%s\nvs\n%s", i, first, got)
			}
		}
	}
}

// TestUnifiedDiffGolden pins the exact output for a realistic edit, so any
// change in how diffs look shows up in review.
func TestUnifiedDiffGolden(t *testing.T) {
	dir := filepath.Join("testdata", "udiff")
	old, err := os.ReadFile(filepath.Join(dir, "compose.old.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	new, err := os.ReadFile(filepath.Join(dir, "compose.new.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := UnifiedDiff("compose.yaml", old, new)
	golden := filepath.Join(dir, "compose.diff")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("diff differs from %s (run with -update to accept):\n%s", golden, got)
	}
	checkPatch(t, old, new)
}

// TestUnifiedDiffLarge diffs a 10k-line file with a few hundred changes
// spread through it, and a complete rewrite, the sizes unhost meets.
func TestUnifiedDiffLarge(t *testing.T) {
	old, new := largePair(10000, 300)
	checkPatch(t, old, new)
	// Nothing in common.
	checkPatch(t, []byte(lines("old", 10000)), []byte(lines("new", 10000)))
	// Every other line changed.
	var sb strings.Builder
	for i := 0; i < 5000; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&sb, "x%d\n", i)
		} else {
			fmt.Fprintf(&sb, "l%d\n", i+1)
		}
	}
	checkPatch(t, []byte(lines("l", 5000)), []byte(sb.String()))
}

func largePair(n, changes int) (old, new []byte) {
	var o, nw strings.Builder
	step := n / changes
	for i := 0; i < n; i++ {
		line := fmt.Sprintf("    service_%d: {image: app, network_mode: host}\n", i)
		o.WriteString(line)
		switch {
		case i%step == 0:
			fmt.Fprintf(&nw, "    service_%d: {image: app}\n      ports: [\"%d:80\"]\n", i, 8000+i)
		case i%step == step/2:
			// dropped
		default:
			nw.WriteString(line)
		}
	}
	return []byte(o.String()), []byte(nw.String())
}

func BenchmarkUnifiedDiff(b *testing.B) {
	old, new := largePair(10000, 300)
	b.ReportAllocs()
	for b.Loop() {
		UnifiedDiff("compose.yaml", old, new)
	}
}

func FuzzUnifiedDiff(f *testing.F) {
	for _, tc := range udiffCases() {
		f.Add([]byte(tc.old), []byte(tc.new))
	}
	f.Fuzz(func(t *testing.T, old, new []byte) {
		checkPatch(t, old, new)
	})
}

// checkPatch diffs old against new, applies the patch in process and
// checks that it gives new exactly, and, for small inputs, that the
// number of changed lines is minimal.
func checkPatch(t *testing.T, old, new []byte) {
	t.Helper()
	patch := UnifiedDiff("f", old, new)
	if bytes.Equal(old, new) {
		if patch != "" {
			t.Fatalf("identical inputs gave a patch:\n%s", patch)
		}
		return
	}
	got, err := applyPatch(old, patch)
	if err != nil {
		t.Fatalf("apply: %v\nold %q\nnew %q\n%s", err, old, new, patch)
	}
	if !bytes.Equal(got, new) {
		t.Fatalf("applied = %q, want %q\n%s", got, new, patch)
	}
	a, b := splitForTest(old), splitForTest(new)
	if len(a)*len(b) <= 1<<16 {
		changed := 0
		for _, l := range strings.SplitAfter(patch, "\n")[2:] {
			if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
				changed++
			}
		}
		if want := len(a) + len(b) - 2*lcs(a, b); changed != want {
			t.Fatalf("%d changed lines, shortest edit has %d\n%s", changed, want, patch)
		}
	}
}

// splitForTest splits s into lines keeping terminators, independently of
// the code under test.
func splitForTest(s []byte) []string {
	ls := strings.SplitAfter(string(s), "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

func lcs(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var hunkRe = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$`)

func hunkHeaders(patch string) []string {
	var out []string
	for _, l := range strings.Split(patch, "\n") {
		if strings.HasPrefix(l, "@@") {
			out = append(out, l)
		}
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// applyPatch is a strict applier for one-file unified diffs: every hunk
// must sit exactly where its header says, its counts must match its body,
// its context must match old byte for byte, leading and trailing context
// must be as long as the file allows (up to 3 lines), and hunks must be in
// order and not touch.
func applyPatch(old []byte, patch string) ([]byte, error) {
	pl := strings.SplitAfter(patch, "\n")
	if pl[len(pl)-1] != "" {
		return nil, errors.New("patch does not end in a newline")
	}
	pl = pl[:len(pl)-1]
	if len(pl) < 3 || !strings.HasPrefix(pl[0], "--- a/") || !strings.HasPrefix(pl[1], "+++ b/") {
		return nil, errors.New("missing file headers")
	}
	src := splitForTest(old)
	var out []string
	cursor := 0 // next unread line of src
	const marker = "\\ No newline at end of file\n"
	i := 2
	for i < len(pl) {
		m := hunkRe.FindStringSubmatch(strings.TrimSuffix(pl[i], "\n"))
		if m == nil {
			return nil, fmt.Errorf("line %d: bad hunk header %q", i+1, pl[i])
		}
		num := func(s string) int {
			if s == "" {
				return 1
			}
			n, _ := strconv.Atoi(s)
			return n
		}
		oStart, oCount, nStart, nCount := num(m[1]), num(m[2]), num(m[3]), num(m[4])
		i++
		at := oStart - 1
		if oCount == 0 {
			at = oStart
		}
		if at < cursor || at > len(src) || (cursor > 0 && at == cursor) {
			return nil, fmt.Errorf("hunk %q: old start %d out of order (cursor %d, %d lines)", m[0], at, cursor, len(src))
		}
		out = append(out, src[cursor:at]...)
		wantNew := nStart - 1
		if nCount == 0 {
			wantNew = nStart
		}
		if wantNew != len(out) {
			return nil, fmt.Errorf("hunk %q: new start should be %d", m[0], len(out)+1)
		}
		cursor = at
		var body []byte // kinds, for the context length check
		for oCount > 0 || nCount > 0 {
			if i >= len(pl) {
				return nil, fmt.Errorf("hunk %q: truncated", m[0])
			}
			l := pl[i]
			i++
			if i < len(pl) && pl[i] == marker {
				l = strings.TrimSuffix(l, "\n")
				i++
			}
			kind, text := l[0], l[1:]
			body = append(body, kind)
			switch kind {
			case ' ', '-':
				if oCount == 0 || (kind == ' ' && nCount == 0) {
					return nil, fmt.Errorf("hunk %q: more lines than its header says", m[0])
				}
				if cursor >= len(src) || src[cursor] != text {
					return nil, fmt.Errorf("hunk %q: line %d does not match", m[0], cursor+1)
				}
				cursor++
				oCount--
				if kind == ' ' {
					out = append(out, text)
					nCount--
				}
			case '+':
				if nCount == 0 {
					return nil, fmt.Errorf("hunk %q: more lines than its header says", m[0])
				}
				out = append(out, text)
				nCount--
			default:
				return nil, fmt.Errorf("hunk %q: bad line %q", m[0], l)
			}
		}
		lead := len(body) - len(bytes.TrimLeft(body, " "))
		trail := len(body) - len(bytes.TrimRight(body, " "))
		if lead == len(body) {
			return nil, fmt.Errorf("hunk %q: no changes", m[0])
		}
		if lead != min(3, at+lead) || trail != min(3, len(src)-(cursor-trail)) {
			return nil, fmt.Errorf("hunk %q: %d leading and %d trailing context lines", m[0], lead, trail)
		}
	}
	out = append(out, src[cursor:]...)
	return []byte(strings.Join(out, "")), nil
}

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if ci.Enabled() {
			t.Fatal("git is required in CI")
		}
		t.Skip("git not installed")
	}
}

// gitApply writes old to path in a fresh git repository, checks and
// applies patch there with git apply, and returns the file's new content.
func gitApply(t *testing.T, path string, old []byte, patch string) []byte {
	t.Helper()
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "core.autocrlf=false", "-c", "core.safecrlf=false"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+repo)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s\npatch:\n%s", strings.Join(args, " "), err, out, patch)
		}
	}
	git("init", "-q")
	file := filepath.Join(repo, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, old, 0o644); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(t.TempDir(), "p.diff")
	if err := os.WriteFile(pf, []byte(patch), 0o644); err != nil {
		t.Fatal(err)
	}
	git("apply", "--check", pf)
	git("apply", pf)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// randomEdits returns random non-overlapping byte edits of old, sorted,
// some inside lines, some spanning lines, some pure insertions.
func randomEdits(r *rand.Rand, old []byte) []Edit {
	var eds []Edit
	pos := 0
	for pos <= len(old) && len(eds) < 8 {
		start := pos + r.Intn(len(old)-pos+1)
		end := start + r.Intn(min(len(old)-start, 12)+1)
		texts := []string{"", "x", "host\n", "\n", "  ports:\n    - \"80:80\"\n", "a\r\n"}
		eds = append(eds, Edit{Start: start, End: end, Text: texts[r.Intn(len(texts))]})
		pos = end + 1
		if r.Intn(3) == 0 {
			break
		}
	}
	return eds
}

// TestFileResultDiff checks the diff migrate writes from its own edits:
// it applies exactly (in process, and with git for a sample) and, on
// files with changes far apart, it is the whole-file diff byte for byte.
func TestFileResultDiff(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	nonMinimal := 0
	for i := 0; i < 3000; i++ {
		old, _ := randomPair(r, 1+r.Intn(60))
		eds := randomEdits(r, old)
		new, sorted, err := applyEdits(old, eds)
		if err != nil {
			t.Fatal(err)
		}
		f := FileResult{Old: old, New: new, edits: sorted}
		patch := f.Diff("f")
		if bytes.Equal(old, new) {
			if patch != "" {
				t.Fatalf("no change, yet a patch:\n%s", patch)
			}
			continue
		}
		got, err := applyPatch(old, patch)
		if err != nil || !bytes.Equal(got, new) {
			t.Fatalf("edits %+v of %q: patch does not give %q (%v):\n%s", eds, old, new, err, patch)
		}
		if c, w := changedLines(patch), changedLines(UnifiedDiff("f", old, new)); c != w {
			nonMinimal++
		}
	}
	// go-diff is minimal within each region; on these files of a few
	// repeated lines a change can sometimes match a line beyond its region
	if nonMinimal > 30 {
		t.Errorf("%d of 3000 diffs from edits change more lines than the whole-file diff", nonMinimal)
	}
	// a long file with edits spread through it, as migrate makes them
	old, _ := largePair(3000, 1)
	var eds []Edit
	for i, line := 0, 0; i < len(old); line++ {
		j := bytes.IndexByte(old[i:], '\n') + i + 1
		if line%40 == 7 {
			eds = append(eds, Edit{Start: i, End: j, Text: "    svc: {image: app}\n    ports: [\"80:80\"]\n"})
		}
		i = j
	}
	new, sorted, err := applyEdits(old, eds)
	if err != nil {
		t.Fatal(err)
	}
	f := FileResult{Old: old, New: new, edits: sorted}
	if got, want := f.Diff("compose.yaml"), UnifiedDiff("compose.yaml", old, new); got != want {
		t.Errorf("diff from edits differs from the whole-file diff:\n%s", got)
	}
	checkPatch(t, old, new)
	requireGit(t)
	if got := gitApply(t, "compose.yaml", old, f.Diff("compose.yaml")); !bytes.Equal(got, new) {
		t.Error("git apply of the diff from edits does not give the new file")
	}
	// without its edits, a FileResult is diffed whole
	if got, want := (FileResult{Old: old, New: new}).Diff("c"), UnifiedDiff("c", old, new); got != want {
		t.Error("FileResult without edits: not the whole-file diff")
	}
}

func changedLines(patch string) int {
	n := 0
	for _, l := range strings.SplitAfter(patch, "\n")[2:] {
		if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			n++
		}
	}
	return n
}

// FuzzFileResultDiff: for any text and any edits of it, the diff from the
// edits applies exactly.
func FuzzFileResultDiff(f *testing.F) {
	f.Add([]byte("services:\n  a:\n    network_mode: host\n"), int64(1))
	f.Add([]byte("a\r\nb\r\nc"), int64(2))
	f.Add([]byte(""), int64(3))
	f.Fuzz(func(t *testing.T, old []byte, seed int64) {
		eds := randomEdits(rand.New(rand.NewSource(seed)), old)
		new, sorted, err := applyEdits(old, eds)
		if err != nil {
			t.Fatal(err)
		}
		patch := FileResult{Old: old, New: new, edits: sorted}.Diff("f")
		if bytes.Equal(old, new) {
			if patch != "" {
				t.Fatalf("no change, yet a patch:\n%s", patch)
			}
			return
		}
		if got, err := applyPatch(old, patch); err != nil || !bytes.Equal(got, new) {
			t.Fatalf("patch does not give the new text (%v):\n%s", err, patch)
		}
	})
}
