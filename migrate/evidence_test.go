package migrate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unhost/unhost/plan"
)

// quotedRe finds what an evidence detail quotes from the files: words
// with a digit (ports, addresses, key=value pairs).
var quotedRe = regexp.MustCompile(`[^\s(),;"']*\d[^\s(),;"']*`)

// portMapRe is a short-syntax port mapping, "HOST:CONTAINER".
var portMapRe = regexp.MustCompile(`^\d+(-\d+)?:\d+(-\d+)?(/\w+)?$`)

// evidenceProblems checks that every evidence item of a plan that cites
// FILE:LINE:COL points at text (that line and the next few, for folded
// values) holding at least one of the words it quotes. read returns a
// file's text by the path the plan shows.
func evidenceProblems(p *plan.Plan, read func(string) (string, error)) []string {
	var out []string
	check := func(who string, ev []plan.Evidence) {
		for _, e := range ev {
			if e.Where == "" {
				continue
			}
			i := strings.LastIndex(e.Where, ":")
			j := strings.LastIndex(e.Where[:max(i, 0)], ":")
			if i < 0 || j < 0 {
				out = append(out, who+": where "+e.Where+" is not FILE:LINE:COL")
				continue
			}
			line, err1 := strconv.Atoi(e.Where[j+1 : i])
			col, err2 := strconv.Atoi(e.Where[i+1:])
			text, err := read(e.Where[:j])
			if err1 != nil || err2 != nil || err != nil {
				out = append(out, who+": where "+e.Where+": cannot read it")
				continue
			}
			lines := strings.Split(text, "\n")
			if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1])+1 {
				out = append(out, who+": where "+e.Where+" is outside the file")
				continue
			}
			at := strings.Join(lines[line-1:min(len(lines), line+4)], "\n")
			words := quotedRe.FindAllString(strings.ReplaceAll(e.Detail, "\u2026", ""), -1)
			if len(words) == 0 {
				continue
			}
			found := false
			for _, w := range words {
				w = strings.TrimRight(w, ".:")
				// a KEY=VALUE detail quotes both halves
				k, v, ok := strings.Cut(w, "=")
				found = found || strings.Contains(at, w) || ok && strings.Contains(at, k) && strings.Contains(at, v)
				// a port mapping quoted in short form ("9443:8443") of a
				// long-syntax entry (published: 9443, target: 8443)
				if portMapRe.MatchString(w) {
					all := true
					for _, part := range strings.Split(w, ":") {
						all = all && strings.Contains(at, part)
					}
					found = found || all
				}
			}
			if !found {
				out = append(out, who+": "+e.Where+" does not hold what "+strconv.Quote(e.Detail)+" quotes:\n"+at)
			}
		}
	}
	for _, s := range p.Services {
		check(s.Name, s.Evidence)
		for _, l := range s.Listeners {
			check(s.Name+" "+strconv.Itoa(l.Port), l.Evidence)
		}
	}
	return out
}

// TestEvidencePointsAtItsText runs evidenceProblems over the corpus.
func TestEvidencePointsAtItsText(t *testing.T) {
	dir := corpusDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.Contains(name, ".y") || strings.HasPrefix(name, "EXPECT") {
			continue
		}
		path := filepath.Join(dir, name)
		_, res, err := migrateFile(t, path)
		if err != nil || res == nil {
			continue
		}
		read := func(p string) (string, error) {
			for _, c := range []string{p, filepath.Join(dir, p), filepath.Join(dir, filepath.Base(p))} {
				if b, err := os.ReadFile(c); err == nil {
					return string(b), nil
				}
			}
			return "", os.ErrNotExist
		}
		for _, prob := range evidenceProblems(res.Plan, read) {
			t.Errorf("%s: %s", name, prob)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no corpus file was checked")
	}
}

// TestEvidenceGoldens runs evidenceProblems over the golden plans of the
// migrate scenarios.
func TestEvidenceGoldens(t *testing.T) {
	plans, err := filepath.Glob("../testdata/migrate/*/golden/plan.json")
	if err != nil || len(plans) == 0 {
		t.Fatalf("no golden plans: %v", err)
	}
	for _, pj := range plans {
		b, err := os.ReadFile(pj)
		if err != nil {
			t.Fatal(err)
		}
		var p plan.Plan
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", pj, err)
		}
		scenario := filepath.Dir(filepath.Dir(pj))
		read := func(f string) (string, error) {
			b, err := os.ReadFile(filepath.Join(scenario, f))
			return string(b), err
		}
		for _, prob := range evidenceProblems(&p, read) {
			t.Errorf("%s: %s", pj, prob)
		}
	}
}

// TestEvidenceProblems: the check catches evidence that points elsewhere.
func TestEvidenceProblems(t *testing.T) {
	text := "services:\n  app:\n    environment:\n      PORT: \"8080\"\n    ports:\n      - target: 443\n        published: 9443\n"
	read := func(string) (string, error) { return text, nil }
	cases := []struct {
		ev   plan.Evidence
		want bool // a problem
	}{
		{plan.Evidence{Where: "c.yaml:4:7", Detail: "PORT=8080"}, false},
		{plan.Evidence{Where: "c.yaml:6:9", Detail: "ignored under host networking: 9443:443"}, false},
		{plan.Evidence{Where: "c.yaml:2:3", Detail: "PORT=8080"}, false}, // within the next lines
		{plan.Evidence{Where: "c.yaml:6:9", Detail: "PORT=8081"}, true},
		{plan.Evidence{Where: "c.yaml:40:1", Detail: "PORT=8080"}, true},
		{plan.Evidence{Where: "c.yaml", Detail: "PORT=8080"}, true},
	}
	for _, tc := range cases {
		p := &plan.Plan{Services: []plan.ServicePlan{{Name: "app", Evidence: []plan.Evidence{tc.ev}}}}
		if got := len(evidenceProblems(p, read)) > 0; got != tc.want {
			t.Errorf("%+v: problem %v, want %v", tc.ev, got, tc.want)
		}
	}
}
