package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/migrate"
)

var update = flag.Bool("update", false, "rewrite the golden files (migrate scenarios, scan and migrate --all)")

// A scenario is a folder under testdata/migrate: the input files, an
// optional args.txt (one flag per line; default "-f compose.yaml"), and
// golden/ with the expected diff (diff.patch), plan (plan.json), PR body
// (pr.md), exit code of --check (check.txt) and every rewritten file.
func TestMigrateScenarios(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/migrate/*")
	if len(dirs) == 0 {
		t.Fatal("no scenarios under testdata/migrate")
	}
	for _, dir := range dirs {
		dir := dir
		t.Run(filepath.Base(dir), func(t *testing.T) { runScenario(t, dir) })
	}
}

// copyInputs copies a scenario's input files (everything but golden/ and
// args.txt) to a temporary folder.
func copyInputs(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "golden" || rel == "args.txt" {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func scenarioArgs(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "args.txt"))
	if os.IsNotExist(err) {
		return []string{"-f", "compose.yaml"}
	}
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			args = append(args, strings.Fields(l)...)
		}
	}
	return args
}

// runIn runs the CLI in dir and returns stdout, stderr and the exit code.
func runIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	code := runWith(args, &out, &errb)
	return out.String(), errb.String(), code
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update after checking):\n%s", path, migrate.UnifiedDiff(path, want, got))
	}
}

func runScenario(t *testing.T, dir string) {
	args := append([]string{"migrate", "--no-engine"}, scenarioArgs(t, dir)...)
	gold := filepath.Join(dir, "golden")
	work := copyInputs(t, dir)

	plan, stderr, code := runIn(t, work, append(args, "--format", "json")...)
	if !runOK(code, stderr) {
		t.Fatalf("migrate --format json: exit %d: %s", code, stderr)
	}
	golden(t, filepath.Join(gold, "plan.json"), []byte(plan))
	var head struct{ Project string }
	if err := json.Unmarshal([]byte(plan), &head); err != nil {
		t.Fatal(err)
	}
	if head.Project == filepath.Base(work) {
		t.Errorf("the plan names the project after the temporary folder (%s): give the scenario a name: or -p NAME in args.txt", head.Project)
	}

	md, stderr, code := runIn(t, work, append(args, "--format", "markdown")...)
	if !runOK(code, stderr) {
		t.Fatalf("migrate --format markdown: exit %d: %s", code, stderr)
	}
	golden(t, filepath.Join(gold, "pr.md"), []byte(md))

	diff, stderr, code := runIn(t, work, args...)
	if !runOK(code, stderr) {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	golden(t, filepath.Join(gold, "diff.patch"), []byte(diff))

	_, _, checkCode := runIn(t, work, append(args, "--check")...)
	golden(t, filepath.Join(gold, "check.txt"), []byte(strings.TrimSpace(string(rune('0'+checkCode)))+"\n"))
	// --check exits 3 when a file would change, or a blocker is left
	blocked := strings.Contains(stderr, "blocker: ")
	if (diff == "" && !blocked) != (checkCode == 0) {
		t.Errorf("--check exit %d does not match a diff of %d bytes (blocker left: %v)", checkCode, len(diff), blocked)
	}

	// the diff applies with git apply and gives what --write writes
	if diff != "" {
		applied := copyInputs(t, dir)
		if out, err := gitApply(applied, diff); err != nil {
			t.Fatalf("git apply: %v\n%s", err, out)
		}
		_, stderr, code = runIn(t, work, append(args, "--write", "--no-backup")...)
		if !runOK(code, stderr) {
			t.Fatalf("migrate --write: exit %d: %s", code, stderr)
		}
		filepath.Walk(work, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(work, p)
			got, _ := os.ReadFile(p)
			fromPatch, _ := os.ReadFile(filepath.Join(applied, rel))
			if !bytes.Equal(got, fromPatch) {
				t.Errorf("%s: --write and git apply disagree", rel)
			}
			orig, _ := os.ReadFile(filepath.Join(dir, rel))
			if !bytes.Equal(orig, got) {
				golden(t, filepath.Join(gold, rel), got)
			}
			return nil
		})
		// a second run changes nothing
		again, stderr, code := runIn(t, work, args...)
		if !runOK(code, stderr) {
			t.Fatalf("second migrate: exit %d: %s", code, stderr)
		}
		if again != "" {
			t.Errorf("migrating the output again is not a no-op:\n%s", again)
		}
		if _, stderr, code := runIn(t, work, append(args, "--check")...); !runOK(code, stderr) {
			t.Errorf("--check on the output: exit %d, want 0", code)
		}
	}
}

// runOK: exit 0, or 3 for a run that leaves a blocker (it says so on stderr).
func runOK(code int, stderr string) bool {
	return code == 0 || code == ExitFindings && strings.Contains(stderr, "unhost: blocker: ")
}

func gitApply(dir, patch string) (string, error) {
	for _, args := range [][]string{{"init", "-q"}, {"apply", "--check", "-"}, {"apply", "-"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(patch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return string(out), err
		}
	}
	return "", nil
}
