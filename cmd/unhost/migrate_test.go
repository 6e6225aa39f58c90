package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const simple = "services:\n  web:\n    image: nginx\n    network_mode: host\n    expose: [\"80\"]\n"

const withSide = simple + "  side:\n    image: busybox\n"

// aliasBomb expands to 9^9 nodes.
func aliasBomb() []byte {
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	b.WriteString("services:\n  x:\n    image: y\n    network_mode: host\n    labels: *i\n")
	return []byte(b.String())
}

func TestMigrateBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
		want string // in the error line
	}{
		{"malformed.yaml", []byte("services:\n  web:\n    image: [nginx\n"), "malformed.yaml:"},
		{"fragment.yaml", []byte("web:\n  image: nginx\n  network_mode: host\n"), "fragment.yaml:1:1: top-level key \"web\" is not a compose key"},
		{"template.yaml", []byte("{{ range .services }}\n- {{ .name }}\n{{ end }}\n"), "template.yaml:"},
		{"bomb.yaml", aliasBomb(), "alias bomb"},
		{"junk.yaml", []byte{0x7f, 'E', 'L', 'F', 0, 1, 2, 0xff, 0xfe}, "junk.yaml: not a text file"},
		{"empty.yaml", nil, "empty.yaml: empty file"},
		{"list.yaml", []byte("- a\n- b\n"), "list.yaml:1:1: top level is not a mapping"},
		{"missing.yaml", nil, "missing.yaml: no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name != "missing.yaml" {
				writeFile(t, dir, c.name, c.data)
			}
			start := time.Now()
			out, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--write", "-f", c.name)
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if code != ExitError {
				t.Errorf("exit %d, want 1 (stderr %q)", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(errOut, c.want) {
				t.Errorf("stderr = %q, want one line containing %q", errOut, c.want)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), "unhost") {
					t.Errorf("left %s behind", e.Name())
				}
			}
		})
	}
}

func TestMigrateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", []byte(withSide))
	cases := [][]string{
		{"migrate", "--bogus"},
		{"migrate", "--format", "yaml"},
		{"migrate", "--publish", "nosuch:80"},
		{"migrate", "--publish", "web:99999"},
		{"migrate", "--publish", "web"},
		{"migrate", "--force", "nosuch"},
		{"migrate", "--profile", "nosuch"},
		{"migrate", "--check", "--write"},
		{"migrate", "--publish-address", "not-an-ip"},
		{"migrate", "stray-arg"},
		{"nosuchcommand"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, errOut, code := runIn(t, dir, append(args, "--no-engine")...)
			if args[0] == "nosuchcommand" {
				_, errOut, code = runIn(t, dir, args...)
			}
			if code != ExitUsage {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errOut)
			}
			if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 || errOut == "" {
				t.Errorf("want one error line, got %q", errOut)
			}
		})
	}
}

func TestMigrateWriteAndCheck(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "compose.yaml", []byte(simple))
	if _, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--check"); code != ExitFindings {
		t.Fatalf("--check before: exit %d, want 3 (%s)", code, errOut)
	}
	if b, _ := os.ReadFile(p); string(b) != simple {
		t.Fatal("--check wrote the file")
	}
	out, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--write")
	if code != 0 || !strings.Contains(out, "-    network_mode: host") || !strings.Contains(errOut, "backup: compose.yaml.unhost-backup") {
		t.Fatalf("--write: exit %d\n%s\n%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(p + ".unhost-backup"); string(b) != simple {
		t.Fatal("backup does not hold the original")
	}
	got, _ := os.ReadFile(p)
	if strings.Contains(string(got), "network_mode") || !strings.Contains(string(got), `- "80:80"`) {
		t.Fatalf("rewritten file:\n%s", got)
	}
	if _, errOut, code := runIn(t, dir, "migrate", "--no-engine", "--check"); code != 0 {
		t.Fatalf("--check after: exit %d (%s)", code, errOut)
	}
	// -o writes elsewhere and leaves the input alone
	writeFile(t, dir, "compose.yaml", []byte(simple))
	if _, errOut, code := runIn(t, dir, "migrate", "--no-engine", "-o", "out.yaml"); code != 0 {
		t.Fatalf("-o: exit %d (%s)", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.yaml")); string(b) != string(got) {
		t.Fatalf("-o wrote:\n%s", b)
	}
	if b, _ := os.ReadFile(p); string(b) != simple {
		t.Fatal("-o changed the input")
	}
}
