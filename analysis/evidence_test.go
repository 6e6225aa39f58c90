package analysis

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/unhost/unhost/load"
)

// corpusDir is the shared folder of real public Compose files (never
// copied into the project); UNHOST_CORPUS overrides it.
func corpusDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("UNHOST_CORPUS"); d != "" {
		return d
	}
	for _, d := range []string{"../../shared/corpus", "../shared/corpus"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("../shared/corpus is missing in CI: the corpus tests must run there")
	}
	t.Skip("../shared/corpus is not here")
	return ""
}

// textAt returns the source text that a file:line:col position points at:
// the rest of that line, and the lines after it that are indented deeper
// than it (a block scalar, a long-syntax mapping).
func textAt(c *load.Compose, where string) (string, bool) {
	i := strings.LastIndexByte(where, ':')
	j := strings.LastIndexByte(where[:max(i, 0)], ':')
	if i < 0 || j < 0 {
		return "", false
	}
	line, err1 := strconv.Atoi(where[j+1 : i])
	col, err2 := strconv.Atoi(where[i+1:])
	if err1 != nil || err2 != nil {
		return "", false
	}
	var f *load.SourceFile
	for _, sf := range c.Files {
		if sf.Path == where[:j] {
			f = sf
		}
	}
	if f == nil || line < 1 || line > f.Lines() {
		return "", false
	}
	off := f.Offset(line, col)
	lines := strings.Split(string(f.Data[f.LineStart(line):]), "\n")
	indent := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	text := string(f.Data[off : f.LineStart(line)+len(lines[0])])
	for _, l := range lines[1:] {
		if t := strings.TrimLeft(l, " "); t != "" && len(l)-len(t) <= indent {
			break
		}
		text += "\n" + l
	}
	return text, true
}

// checkEvidence checks that every position in the facts points at text
// holding what the fact quotes: a reference's token, a listener's port (or
// its bind address when the port comes from documentation), a host need's
// quote. It returns how many positions it checked.
func checkEvidence(t *testing.T, name string, c *load.Compose, f *Facts) int {
	t.Helper()
	n := 0
	check := func(svc, what, where string, quotes ...string) {
		if where == "" {
			return
		}
		n++
		text, ok := textAt(c, where)
		if !ok {
			t.Errorf("%s: %s: %s: position %s is not in any file", name, svc, what, where)
			return
		}
		for _, q := range quotes {
			if q != "" && strings.Contains(text, q) {
				return
			}
		}
		t.Errorf("%s: %s: %s: %s holds %q, which contains none of %q", name, svc, what, where, text, quotes)
	}
	for _, svc := range f.Names() {
		sf := f.Services[svc]
		for _, r := range sf.Refs {
			check(svc, "reference "+r.Field, r.Pos.String(), r.Token)
		}
		for _, l := range sf.Listeners {
			quotes := []string{strconv.Itoa(l.Port)}
			if l.BindText != "" {
				quotes = append(quotes, l.BindText)
			}
			check(svc, "listener "+l.Evidence.Detail, l.Evidence.Where, quotes...)
		}
		for _, h := range sf.HostNeeds {
			if h.Quote == "" && h.Evidence.Where != "" {
				t.Errorf("%s: %s: host need %s has a position but quotes nothing", name, svc, h.Kind)
			}
			q := h.Quote
			check(svc, "host need "+h.Kind, h.Evidence.Where, q)
		}
		if v := sf.NetworkModeFrom; v != nil {
			check(svc, "network_mode variable", v.Evidence.Where, v.Variable)
		}
	}
	return n
}

// TestEvidencePositionsCorpus: on every real file of the corpus that
// loads, each position in the facts points at text that contains what it
// quotes.
func TestEvidencePositionsCorpus(t *testing.T) {
	dir := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	loaded, checked := 0, 0
	for _, p := range files {
		c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{p}, WorkDir: dir})
		if err != nil {
			continue // an override without its base, a variable without a default
		}
		loaded++
		checked += checkEvidence(t, filepath.Base(p), c, Analyze(c, nil))
	}
	if loaded < 30 || checked < 200 {
		t.Fatalf("only %d files loaded and %d positions checked", loaded, checked)
	}
	t.Logf("%d files, %d positions", loaded, checked)
}

// TestEvidencePositionsTestdata does the same over the migrate scenarios.
func TestEvidencePositionsTestdata(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/migrate/*")
	checked := 0
	for _, d := range dirs {
		p := filepath.Join(d, "compose.yaml")
		if _, err := os.Stat(p); err != nil {
			continue
		}
		c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{p}, WorkDir: d, ProjectName: "t"})
		if err != nil {
			continue
		}
		checked += checkEvidence(t, filepath.Base(d), c, Analyze(c, nil))
	}
	if checked < 20 {
		t.Fatalf("only %d positions checked", checked)
	}
}
