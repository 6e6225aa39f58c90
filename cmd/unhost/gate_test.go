package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrationPassesScan: a migration's pull request must pass the scan
// that proposed it. The host-network service's web port was reachable on
// all interfaces before; migrate publishes it there again, on purpose, and
// marks the line so that scan does not report it as all-interfaces.
func TestMigrationPassesScan(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", []byte(`services:
  web:
    image: example/web:1
    network_mode: host
    ports:
      - "8080:8080"
  api:
    image: example/api:1
    network_mode: host
    expose: ["9000"]
`))
	if out, errOut, code := runIn(t, dir, "scan", "--format", "text", "."); code != ExitFindings || !strings.Contains(out, "host-network") {
		t.Fatalf("scan before the migration: exit %d, want 3 with host-network findings:\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--write", "--no-backup"); code != ExitOK {
		t.Fatalf("migrate --write: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"8080:8080" # unhost:ignore all-interfaces`) {
		t.Fatalf("the all-interface publication is not marked:\n%s", b)
	}
	out, errOut, code := runIn(t, dir, "scan", "--format", "text", ".")
	if code != ExitOK || strings.Contains(out, "all-interfaces") {
		t.Errorf("scan of the migrated file: exit %d, want 0 and no all-interfaces finding:\n%s%s", code, out, errOut)
	}
}

// TestMigrateFormatMermaid: --format mermaid prints just the diagram, and
// the pull-request body carries the same diagram in a mermaid block.
func TestMigrateFormatMermaid(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", []byte("services:\n  web:\n    image: example/web:1\n    network_mode: host\n    expose: [\"8080\"]\n"))
	out, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--format", "mermaid")
	if code != ExitOK || !strings.HasPrefix(out, "flowchart LR\n") || !strings.Contains(out, "s_web") || strings.Contains(out, "```") {
		t.Fatalf("--format mermaid: exit %d, want the bare flowchart:\n%s%s", code, out, errOut)
	}
	md, _, code := runIn(t, dir, "migrate", "--no-engine", "--format", "markdown")
	if code != ExitOK || !strings.Contains(md, "```mermaid\n"+out+"```") {
		t.Errorf("the pull-request body lacks the diagram (exit %d):\n%s", code, md)
	}
}
