package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// migrate --format markdown --bench-report adds a Performance section made
// from a verify --bench --format json report (a real run's, on this
// machine kind); a file that is not such a report is an error before any
// migration work.
func TestMigrateBenchReport(t *testing.T) {
	report, err := filepath.Abs("../../testdata/verify/bench/report.json")
	if err != nil {
		t.Fatal(err)
	}
	demo := "../../testdata/demo"
	md, errOut, code := runIn(t, demo, "migrate", "--no-engine", "-f", "compose.yaml", "--format", "markdown", "--bench-report", report)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "../../testdata/verify/bench/pr.md", []byte(md))
	for _, want := range []string{"### Performance", "| published-port |", "migrated ÷ original", "**Where the time goes:**"} {
		if !strings.Contains(md, want) {
			t.Errorf("body lacks %q", want)
		}
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"not": "a report"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(dir, "missing.json"), dir} {
		_, errOut, code := runIn(t, demo, "migrate", "--no-engine", "-f", "missing.yaml", "--format", "markdown", "--bench-report", f)
		if code != 1 || !strings.HasPrefix(errOut, "unhost: --bench-report: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 naming --bench-report before reading the compose file", f, code, errOut)
		}
	}
}
