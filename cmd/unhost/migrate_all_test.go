package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/internal/ci"
	"github.com/unhost/unhost/internal/streams"
	"github.com/unhost/unhost/load"
)

// migrateAllIn runs `unhost migrate --all` in-process.
func migrateAllIn(t *testing.T, o *migrateOptions, paths ...string) (string, string, int) {
	t.Helper()
	o.all, o.paths = true, paths
	return migrateWith(t, o)
}

// migrateWith runs `unhost migrate` in-process with the options given,
// validated as the command line is, without the engine.
func migrateWith(t *testing.T, o *migrateOptions) (string, string, int) {
	t.Helper()
	s, out, errb := streams.Test()
	o.io, o.noEngine = s, true
	if o.format == "" {
		o.format = "diff"
	}
	if o.maxFileSize == 0 {
		o.maxFileSize = load.DefaultMaxFileSize
	}
	err := o.validate()
	if err != nil {
		err = usageErr(err)
	} else {
		err = runMigrate(context.Background(), o)
	}
	code := ExitOK
	if err != nil {
		code = exitCode(err)
		if msg := err.Error(); msg != "" {
			errb.WriteString("unhost: " + msg + "\n")
		}
	}
	return out.String(), errb.String(), code
}

// allPaths are the fixture projects that migrate cleanly (tree/extends
// does not yet: migrate keeps the base's network_mode, see the report),
// with fragments and templates that --all must skip.
var allPaths = []string{"tree/compose.yaml", "tree/chain", "tree/swarm", "tree/fragments", "tree/templates"}

func TestMigrateAllMarkdownGolden(t *testing.T) {
	t.Chdir(fixtureDir)
	out, errOut, code := migrateAllIn(t, &migrateOptions{format: "markdown"}, allPaths...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, "\n## ") != 0 || !strings.HasPrefix(out, "## Move ") {
		t.Errorf("want one pull-request body with one title:\n%.300s", out)
	}
	for _, p := range []string{"### ", "tree/compose.yaml", "tree/compose.override.yaml", "tree/chain/compose.yaml"} {
		if !strings.Contains(out, p) {
			t.Errorf("body lacks %q", p)
		}
	}
	if !strings.Contains(errOut, "tree/fragments/esphome/service.yml: skipped") {
		t.Errorf("fragments are not reported as skipped: %s", errOut)
	}
	scanGolden(t, "migrate-all.md", out)
}

func TestMigrateAllFormats(t *testing.T) {
	t.Chdir(fixtureDir)
	out, errOut, code := migrateAllIn(t, &migrateOptions{format: "json"}, allPaths...)
	if code != ExitOK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var plans []struct {
		Project string   `json:"project"`
		Files   []string `json:"files"`
		Changed bool     `json:"changed"`
	}
	if err := json.Unmarshal([]byte(out), &plans); err != nil {
		t.Fatalf("json is not an array of plans: %v", err)
	}
	if len(plans) < 2 {
		t.Errorf("want a plan for each host-network project, got %d", len(plans))
	}
	diff, _, code := migrateAllIn(t, &migrateOptions{format: "diff"}, allPaths...)
	// tree/compose.yaml changes; the override's exporter (node-exporter)
	// needs the host network, so that file stays as it is
	if code != ExitOK || strings.Count(diff, "\n+++ ") != 1 || !strings.Contains(diff, "+++ b/tree/compose.yaml") {
		t.Errorf("diff: exit %d, want the diff of tree/compose.yaml:\n%s", code, diff)
	}
	if _, _, code := migrateAllIn(t, &migrateOptions{format: "diff", check: true}, allPaths...); code != ExitFindings {
		t.Errorf("--check with changes: exit %d, want 3", code)
	}
	if _, _, code := migrateAllIn(t, &migrateOptions{format: "yaml"}, "tree"); code != ExitUsage {
		t.Errorf("bad format: exit %d, want 2", code)
	}
	if _, _, code := migrateAllIn(t, &migrateOptions{format: "diff", files: []string{"x.yaml"}}, "tree"); code != ExitUsage {
		t.Errorf("-f with --all: exit %d, want 2", code)
	}
	if _, _, code := migrateAllIn(t, &migrateOptions{format: "diff", force: []string{"nosuchservice"}}, "tree"); code != ExitUsage {
		t.Errorf("--force naming no service: exit %d, want 2", code)
	}
}

// TestMigrateAllWrite migrates a copy of the tree in place, with one broken
// project: the others are written, the broken one is reported, exit 1.
func TestMigrateAllWrite(t *testing.T) {
	src, err := filepath.Abs(filepath.Join(fixtureDir, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyTree(t, src, filepath.Join(dir, "tree"))
	t.Chdir(dir)
	broken := "services:\n  bad:\n    image: busybox\n    network_mode: host\n    networks: [front]\nnetworks:\n  front: {}\n"
	if err := os.MkdirAll("tree/broken", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("tree/broken/compose.yaml", []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := migrateAllIn(t, &migrateOptions{format: "diff", write: true, noBackup: true}, "tree")
	if code != ExitError {
		t.Fatalf("exit %d, want 1 for the broken project: %s", code, errOut)
	}
	if !strings.Contains(errOut, "tree/broken/compose.yaml") || !strings.Contains(errOut, "wrote tree/compose.yaml") {
		t.Errorf("stderr should name the broken project and the written files:\n%s", errOut)
	}
	// no backups: the tree is ready to commit
	filepath.WalkDir("tree", func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".unhost-backup") {
			t.Errorf("backup left with --no-backup: %s", p)
		}
		return nil
	})
	// the migrated services no longer use the host network; app, whose
	// listeners nothing tells, stays there and says why
	out, _, _ := scanIn(t, &scanOptions{paths: []string{"tree/compose.yaml"}})
	for _, l := range strings.Split(out, "\n") {
		kept := strings.Contains(l, "service app ") && strings.Contains(l, "listeners unknown") ||
			strings.Contains(l, "service exporter ") && strings.Contains(l, "node-exporter reports the host's own network")
		if strings.Contains(l, "host-network:") && !kept {
			t.Errorf("after --write, scan still finds host networking other than app's (listeners unknown) and exporter's (needs the host's interfaces):\n%s", l)
		}
	}
	if !strings.Contains(out, "listeners unknown") {
		t.Errorf("after --write, scan should report app kept on the host network for unknown listeners:\n%s", out)
	}
}

// TestScanCorpusSARIF runs `unhost scan CORPUS --format sarif` in-process:
// every file INDEX.tsv marks as using host networking has a host-network
// result, the four marked "-" have none.
func TestScanCorpusSARIF(t *testing.T) {
	// the repository is cloned next to shared/: from cmd/unhost that is
	// three levels up
	dir := filepath.Join("..", "..", "..", "shared", "corpus")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if ci.Enabled() {
			t.Fatal("../shared/corpus is missing, and CI=true: the corpus test must run in CI")
		}
		t.Skip("../shared/corpus is not here")
	}
	index, err := os.ReadFile(filepath.Join(dir, "INDEX.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := scanIn(t, &scanOptions{paths: []string{dir}, format: "sarif"})
	if code != ExitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	host := map[string]int{}
	for _, r := range log.Runs[0].Results {
		if r.RuleID == "host-network" {
			host[filepath.Base(r.Locations[0].PhysicalLocation.ArtifactLocation.URI)]++
		}
	}
	checked := 0
	for i, line := range strings.Split(strings.TrimSpace(string(index)), "\n") {
		cols := strings.Split(line, "\t")
		if i == 0 || len(cols) < 7 {
			continue
		}
		checked++
		name, uses := cols[0], !strings.HasPrefix(strings.TrimSpace(cols[6]), "-")
		if uses && host[name] == 0 {
			t.Errorf("%s: uses host networking (INDEX.tsv), no host-network result", name)
		}
		if !uses && host[name] > 0 {
			t.Errorf("%s: marked '-' in INDEX.tsv, %d host-network result(s)", name, host[name])
		}
	}
	if checked < 50 {
		t.Fatalf("INDEX.tsv lists %d files, want about 61", checked)
	}
}
