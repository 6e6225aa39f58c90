package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// expectFile is ../shared/corpus/EXPECT.json (see EXPECT.md there): the
// judged right verdict for every host-network service of the corpus.
type expectFile struct {
	Version   int                                   `json:"version"`
	Env       map[string]map[string]string          `json:"env"`
	BaseFiles map[string]string                     `json:"base_files"`
	Files     map[string]map[string]expectedService `json:"files"`
}

type expectedService struct {
	Verdict          string   `json:"verdict"` // keep, migrate, either
	MustPublish      []string `json:"must_publish"`
	NotAllInterfaces []string `json:"not_all_interfaces"`
	MustNotPublish   []string `json:"must_not_publish"`
	Confidence       string   `json:"confidence"`
	Why              string   `json:"why"`
}

// Score outcomes, as EXPECT.md defines them.
const (
	scoreCorrect = "correct"
	scoreSafe    = "safe"
	scoreWrong   = "wrong"
)

// portSpec is one "8080/tcp" or "50100-50200/udp" entry.
type portSpec struct {
	from, to int
	proto    string
}

func parsePortSpec(s string) (portSpec, error) {
	p, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	lo, hi, isRange := strings.Cut(p, "-")
	from, err := strconv.Atoi(lo)
	if err != nil {
		return portSpec{}, fmt.Errorf("port %q: %w", s, err)
	}
	to := from
	if isRange {
		if to, err = strconv.Atoi(hi); err != nil {
			return portSpec{}, fmt.Errorf("port %q: %w", s, err)
		}
	}
	return portSpec{from: from, to: to, proto: proto}, nil
}

// published is what the migrated file publishes for one service: per
// "port/proto", whether it is exposed beyond loopback.
type published map[string]bool

func publishedPorts(s types.ServiceConfig) published {
	out := published{}
	for _, p := range s.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		key := fmt.Sprintf("%d/%s", p.Target, proto)
		exposed := p.HostIP == "" || !analysis.IsLoopback(p.HostIP)
		out[key] = out[key] || exposed
	}
	return out
}

// scoreService judges one expected service against the migrated project.
// It returns the outcome and, for wrong ones, why.
func scoreService(e expectedService, kept bool, pub published) (string, string, error) {
	if kept {
		if e.Verdict == "migrate" {
			return scoreSafe, "", nil
		}
		return scoreCorrect, "", nil
	}
	if e.Verdict == "keep" {
		return scoreWrong, "migrated, but it needs the host network", nil
	}
	var why []string
	each := func(list []string, f func(key string)) error {
		for _, s := range list {
			ps, err := parsePortSpec(s)
			if err != nil {
				return err
			}
			for p := ps.from; p <= ps.to; p++ {
				f(fmt.Sprintf("%d/%s", p, ps.proto))
			}
		}
		return nil
	}
	if err := each(e.MustPublish, func(k string) {
		if _, ok := pub[k]; !ok {
			why = append(why, k+" not published")
		}
	}); err != nil {
		return "", "", err
	}
	if err := each(e.NotAllInterfaces, func(k string) {
		if pub[k] {
			why = append(why, k+" published beyond loopback (it listened on loopback only)")
		}
	}); err != nil {
		return "", "", err
	}
	if err := each(e.MustNotPublish, func(k string) {
		if pub[k] {
			why = append(why, k+" exposed (only the stack uses it)")
		}
	}); err != nil {
		return "", "", err
	}
	if len(why) > 0 {
		return scoreWrong, strings.Join(why, "; "), nil
	}
	return scoreCorrect, "", nil
}

func TestScoreService(t *testing.T) {
	tests := []struct {
		name string
		e    expectedService
		kept bool
		pub  published
		want string
	}{
		{"keep kept", expectedService{Verdict: "keep"}, true, nil, scoreCorrect},
		{"either kept", expectedService{Verdict: "either"}, true, nil, scoreCorrect},
		{"migrate kept", expectedService{Verdict: "migrate"}, true, nil, scoreSafe},
		{"keep migrated", expectedService{Verdict: "keep"}, false, published{}, scoreWrong},
		{"migrate right", expectedService{Verdict: "migrate", MustPublish: []string{"80/tcp"}}, false, published{"80/tcp": true}, scoreCorrect},
		{"migrate port lost", expectedService{Verdict: "migrate", MustPublish: []string{"80/tcp"}}, false, published{}, scoreWrong},
		{"udp is not tcp", expectedService{Verdict: "migrate", MustPublish: []string{"53/udp"}}, false, published{"53/tcp": true}, scoreWrong},
		{"range all there", expectedService{Verdict: "either", MustPublish: []string{"10-12/udp"}}, false, published{"10/udp": true, "11/udp": true, "12/udp": true}, scoreCorrect},
		{"range one missing", expectedService{Verdict: "either", MustPublish: []string{"10-12/udp"}}, false, published{"10/udp": true, "12/udp": true}, scoreWrong},
		{"loopback widened", expectedService{Verdict: "migrate", NotAllInterfaces: []string{"8501/tcp"}}, false, published{"8501/tcp": true}, scoreWrong},
		{"loopback kept", expectedService{Verdict: "migrate", NotAllInterfaces: []string{"8501/tcp"}}, false, published{"8501/tcp": false}, scoreCorrect},
		{"internal exposed", expectedService{Verdict: "migrate", MustNotPublish: []string{"5432/tcp"}}, false, published{"5432/tcp": true}, scoreWrong},
		{"internal on loopback is allowed", expectedService{Verdict: "migrate", MustNotPublish: []string{"5432/tcp"}}, false, published{"5432/tcp": false}, scoreCorrect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := scoreService(tt.e, tt.kept, tt.pub)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// corpusScoreFloor is what the corpus must score at least; it only ever
// rises. Issue 10's goal is 0 wrong, >= 90% correct and >= 70% of the
// services judged "migrate" moved right.
var corpusScoreFloor = struct {
	maxWrong     int
	minCorrect   int
	minMovedGood int
}{maxWrong: 0, minCorrect: 135, minMovedGood: 26}

// TestCorpusScore migrates every corpus file as a pull-request bot would
// (files alone, no engine) and scores each host-network service against
// EXPECT.json by loading the migrated files back.
func TestCorpusScore(t *testing.T) {
	dir := corpusDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "EXPECT.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp expectFile
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatalf("EXPECT.json: %v", err)
	}
	if exp.Version != 1 {
		t.Fatalf("EXPECT.json version %d, want 1", exp.Version)
	}
	disputed := readDisputes(t)
	counts := map[string]map[string]int{} // confidence -> outcome -> n
	movedGood, migrateTotal := 0, 0
	var wrongLines []string
	names := make([]string, 0, len(exp.Files))
	for n := range exp.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := exp.Files[name]
		if len(want) == 0 {
			continue
		}
		kept, pubs := migrateAndReload(t, dir, name, exp)
		svcs := make([]string, 0, len(want))
		for s := range want {
			svcs = append(svcs, s)
		}
		sort.Strings(svcs)
		for _, s := range svcs {
			e := want[s]
			if disputed[name+" "+s] {
				continue
			}
			isKept, known := kept[s]
			if !known {
				t.Errorf("%s: service %s is in EXPECT.json but not in the loaded project", name, s)
				continue
			}
			outcome, why, err := scoreService(e, isKept, pubs[s])
			if err != nil {
				t.Fatalf("%s: %s: %v", name, s, err)
			}
			if counts[e.Confidence] == nil {
				counts[e.Confidence] = map[string]int{}
			}
			counts[e.Confidence][outcome]++
			if e.Verdict == "migrate" {
				migrateTotal++
				if outcome == scoreCorrect {
					movedGood++
				}
			}
			if outcome == scoreWrong {
				wrongLines = append(wrongLines, fmt.Sprintf("%s %s (%s, %s): %s", name, s, e.Verdict, e.Confidence, why))
			}
		}
	}
	total := map[string]int{}
	for conf, m := range counts {
		for o, n := range m {
			total[o] += n
		}
		t.Logf("confidence %-6s: %d correct, %d safe, %d wrong", conf, m[scoreCorrect], m[scoreSafe], m[scoreWrong])
	}
	all := total[scoreCorrect] + total[scoreSafe] + total[scoreWrong]
	t.Logf("corpus score: %d correct, %d safe, %d wrong of %d; %d of %d services judged migrate moved right",
		total[scoreCorrect], total[scoreSafe], total[scoreWrong], all, movedGood, migrateTotal)
	for _, l := range wrongLines {
		t.Logf("wrong: %s", l)
	}
	f := corpusScoreFloor
	if total[scoreWrong] > f.maxWrong || total[scoreCorrect] < f.minCorrect || movedGood < f.minMovedGood {
		t.Errorf("corpus score fell below its floor (wrong <= %d, correct >= %d, moved right >= %d)", f.maxWrong, f.minCorrect, f.minMovedGood)
	}
}

// readDisputes reads testdata/corpus-disputes.md: lines "- `FILE` `SERVICE`: reason".
func readDisputes(t *testing.T) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile("../testdata/corpus-disputes.md")
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "- `") {
			continue
		}
		parts := strings.Split(l, "`")
		if len(parts) >= 5 {
			out[parts[1]+" "+parts[3]] = true
		}
	}
	return out
}

// migrateAndReload migrates one corpus file (after its base file, with its
// upstream env) and loads the result back from a temporary folder. It
// returns, per service, whether it is still on the host network, and what
// it publishes.
func migrateAndReload(t *testing.T, dir, name string, exp expectFile) (map[string]bool, map[string]published) {
	t.Helper()
	files := []string{filepath.Join(dir, name)}
	if base := exp.BaseFiles[name]; base != "" {
		files = append([]string{filepath.Join(dir, base)}, files...)
	}
	var env []string
	for k, v := range exp.Env[name] {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	opts := load.ComposeOptions{Files: files, WorkDir: dir, Env: env}
	c, err := load.LoadCompose(context.Background(), opts)
	if err != nil {
		// unhost refuses the file (a fragment or template, say): nothing
		// changes, so every service stays where it is.
		t.Logf("%s: not migrated: %v", name, err)
		kept := map[string]bool{}
		for s := range exp.Files[name] {
			kept[s] = true
		}
		return kept, nil
	}
	res, err := migrate.Migrate(c, migrate.Options{})
	if err != nil {
		t.Fatalf("%s: migrate: %v", name, err)
	}
	// The migrated files, beside untouched copies of the others they use.
	tmp := t.TempDir()
	newText := map[string][]byte{}
	for _, f := range res.Files {
		newText[f.Abs] = f.New
	}
	var outFiles []string
	for _, f := range c.Files {
		b, ok := newText[f.Abs]
		if !ok {
			if b, err = os.ReadFile(f.Abs); err != nil {
				t.Fatal(err)
			}
		}
		dst := filepath.Join(tmp, filepath.Base(f.Abs))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		outFiles = append(outFiles, filepath.Join(tmp, filepath.Base(f)))
	}
	opts.Files, opts.WorkDir = outFiles, tmp
	after, err := load.LoadCompose(context.Background(), opts)
	if err != nil {
		t.Fatalf("%s: the migrated files do not load: %v", name, err)
	}
	hostKeys := analysis.ProjectHostNetworkKeys(after.Project)
	kept := map[string]bool{}
	pubs := map[string]published{}
	for n, s := range after.Project.AllServices() {
		kept[n] = analysis.OnHostNetwork(s, hostKeys)
		pubs[n] = publishedPorts(s)
	}
	return kept, pubs
}
