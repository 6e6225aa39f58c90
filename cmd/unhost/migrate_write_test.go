package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -o keeps the input's mode: a 0640 file that holds a secret does not
// become world-readable.
func TestMigrateOutputKeepsMode(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "compose.yaml", []byte(simple))
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.yaml")
	_, errOut, code := runIn(t, dir, "migrate", "--no-engine", "-o", "out.yaml")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o640 {
		t.Errorf("-o wrote mode %v, want the input's 0640", fi.Mode())
	}
	// -o naming the input replaces it as --write does, keeping its mode
	if _, errOut, code := runIn(t, dir, "migrate", "--no-engine", "-o", "compose.yaml"); code != ExitOK {
		t.Fatalf("-o onto the input: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(p); strings.Contains(string(b), "network_mode") {
		t.Errorf("-o onto the input did not migrate it:\n%s", b)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode() != 0o640 {
		t.Errorf("input mode after -o onto it: %v %v", fi.Mode(), err)
	}
}

// A file edited between the read and the rename (through the hook, not by
// timing) is refused by name; no file is replaced and no backup is left.
func TestMigrateWriteRefusesChangedFile(t *testing.T) {
	dir := t.TempDir()
	base := writeFile(t, dir, "compose.yaml", []byte(simple))
	override := writeFile(t, dir, "compose.override.yaml", []byte("services:\n  api:\n    image: busybox\n    network_mode: host\n    expose: [\"8080\"]\n    environment:\n      WEB: http://localhost:80\n"))
	t.Chdir(dir)
	edited := simple + "  # appended by someone else while unhost ran\n"
	var seen []string
	o := &migrateOptions{write: true, beforeRename: func(path string) {
		seen = append(seen, filepath.Base(path))
		if filepath.Base(path) == "compose.override.yaml" {
			if err := os.WriteFile(override, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}}
	_, errOut, code := migrateWith(t, o)
	if code != ExitError {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	if len(seen) != 2 {
		t.Fatalf("hook saw %q: want both files rewritten (the test needs two)", seen)
	}
	if !strings.Contains(errOut, "compose.override.yaml") || !strings.Contains(errOut, "changed since it was read") {
		t.Errorf("stderr %q: want the refusal naming the file", errOut)
	}
	if b, _ := os.ReadFile(base); string(b) != simple {
		t.Errorf("compose.yaml was left migrated:\n%s", b)
	}
	if b, _ := os.ReadFile(override); string(b) != edited {
		t.Errorf("the concurrent edit was lost:\n%s", b)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "unhost") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

// A blocker is printed on stderr whatever the format, and the run exits 3,
// also when it writes.
func TestMigrateBlockersExit3(t *testing.T) {
	src := "../../testdata/migrate/inventory"
	for _, args := range [][]string{
		{"--format", "json"},
		{"--format", "markdown"},
		{"-o", "out.yaml"},
		{"--write"},
		{"--check"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range []string{"compose.yaml", "inventory.json"} {
				b, err := os.ReadFile(filepath.Join(src, n))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, n, b)
			}
			out, errOut, code := runIn(t, dir, append([]string{"migrate", "--no-engine", "--inventory", "inventory.json"}, args...)...)
			if code != ExitFindings {
				t.Errorf("exit %d, want 3", code)
			}
			var blockers, warnings int
			for _, l := range strings.Split(strings.TrimRight(errOut, "\n"), "\n") {
				switch {
				case strings.HasPrefix(l, "unhost: blocker: "):
					blockers++
				case strings.HasPrefix(l, "unhost: warning: "):
					warnings++
				}
			}
			if blockers != 1 || warnings == 0 || !strings.Contains(errOut, "admin listens on 127.0.0.1:8001") {
				t.Errorf("stderr: %d blocker and %d warning lines, want 1 and some:\n%s", blockers, warnings, errOut)
			}
			if args[0] == "--format" && !strings.Contains(out, "admin") {
				t.Errorf("stdout lacks the plan: %.200s", out)
			}
			if args[0] == "--write" {
				if b, _ := os.ReadFile(filepath.Join(dir, "compose.yaml")); strings.Contains(string(b), "network_mode: host") {
					t.Error("--write with a blocker did not write")
				}
			}
		})
	}
}

// migrate --all --write never follows a symlink out of what it searched,
// unless --allow-outside.
func TestMigrateAllWriteStaysInRoot(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	repo := filepath.Join(base, "repo")
	for _, d := range []string{outside, repo} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := writeFile(t, outside, "compose.yaml", []byte(simple))
	if err := os.Symlink(target, filepath.Join(repo, "compose.yaml")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	_, errOut, code := migrateAllIn(t, &migrateOptions{write: true}, "repo/compose.yaml")
	if code != ExitError || !strings.Contains(errOut, "outside") {
		t.Errorf("exit %d, want 1 and a refusal: %s", code, errOut)
	}
	if b, _ := os.ReadFile(target); string(b) != simple {
		t.Fatalf("wrote outside the root:\n%s", b)
	}
	_, errOut, code = migrateAllIn(t, &migrateOptions{write: true, allowOutside: true}, "repo/compose.yaml")
	if code != ExitOK {
		t.Fatalf("--allow-outside: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(target); strings.Contains(string(b), "network_mode") {
		t.Errorf("--allow-outside did not write through the link:\n%s", b)
	}
}
