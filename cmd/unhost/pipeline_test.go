package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/verify/verifytest"
)

// TestMigrateThenVerify is the whole one-shot migration on a real engine:
// migrate rewrites the host-network original (testdata/verify/original),
// and verify runs what migrate wrote, with migrate's plan, and passes.
func TestMigrateThenVerify(t *testing.T) {
	verifytest.Env(t) // builds the test image and sets UNHOST_TEST_IMAGE
	bin := verifytest.Binary(t)
	dir := t.TempDir()
	orig, err := os.ReadFile(verifytest.Stack("original"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "compose.yaml", orig)

	plan, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--format", "json")
	if code != 0 {
		t.Fatalf("migrate --format json: exit %d: %s", code, errOut)
	}
	writeFile(t, dir, "plan.json", []byte(plan))
	if _, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--write", "--no-backup"); code != 0 {
		t.Fatalf("migrate --write: exit %d: %s", code, errOut)
	}
	migrated, _ := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if strings.Contains(string(migrated), "network_mode") {
		t.Fatalf("migrated file still has network_mode:\n%s", migrated)
	}
	report := filepath.Join(dir, "report.json")
	out, errOut, code := runIn(t, dir, "verify", "-q", "-f", "compose.yaml", "--plan", "plan.json",
		"--timeout", "2m", "--probe-binary", bin, "--format", "json", "-o", report)
	if code != 0 {
		b, _ := os.ReadFile(report)
		t.Fatalf("verify of migrate's output: exit %d\n%s%s\nreport:\n%s\nmigrated file:\n%s", code, out, errOut, b, migrated)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	// the checks that matter ran: api reaches the db by name, ports are
	// published (with the files alone, a port the stack uses is published
	// on loopback rather than left internal: migrate/publish.go)
	for _, want := range []string{`"reference"`, `"published-port"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report has no %s check:\n%s", want, b)
		}
	}
}
