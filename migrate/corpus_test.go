package migrate_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/internal/ci"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// corpusDir is the shared folder of real public Compose files. Tests read
// it where it exists; they never copy it into the project.
func corpusDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{"../../shared/corpus", "../shared/corpus"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	if ci.Enabled() {
		t.Fatal("../shared/corpus is missing, and CI=true: the corpus tests must run in CI")
	}
	t.Skip("../shared/corpus is not here")
	return ""
}

// migrateFile loads one file and migrates it with default options.
func migrateFile(t *testing.T, path string) (*load.Compose, *migrate.Result, error) {
	t.Helper()
	c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{path}, WorkDir: filepath.Dir(path)})
	if err != nil {
		return nil, nil, err
	}
	res, err := migrate.Migrate(c, migrate.Options{})
	if err != nil {
		return c, nil, err
	}
	if err := migrate.Check(context.Background(), c, res); err != nil {
		return c, res, err
	}
	return c, res, nil
}

// comments returns every comment in a YAML text, as the parser sees them.
func comments(t *testing.T, data []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("reparse: %v", err)
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment} {
			for _, l := range strings.Split(c, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					out = append(out, l)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	sort.Strings(out)
	return out
}

// composeV2 reports whether the docker compose v2 CLI is installed; under
// CI=true it must be (make test installs it).
func composeV2(t *testing.T) bool {
	out, err := exec.Command("docker", "compose", "version", "--short").Output()
	if err == nil && strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), "2.") {
		return true
	}
	if ci.Enabled() {
		t.Fatal("docker compose v2 is not installed, and CI=true (make tools installs it)")
	}
	return false
}

// composeAccepts runs `docker compose config -q` on a file, with no
// environment variables from this process but PATH and HOME.
func composeAccepts(path string) (bool, string) {
	cmd := exec.Command("docker", "compose", "-f", path, "config", "-q")
	cmd.Dir = filepath.Dir(path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	return err == nil, strings.TrimSpace(string(out))
}

func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	useCompose := composeV2(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	if len(files) < 50 {
		t.Fatalf("corpus has %d files, want about 61", len(files))
	}
	var migrated, refused, acceptedN atomic.Int32
	t.Cleanup(func() {
		t.Logf("%d migrated, %d refused, %d accepted by docker compose", migrated.Load(), refused.Load(), acceptedN.Load())
	})
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			accepted := false
			if useCompose {
				accepted, _ = composeAccepts(f)
				if accepted {
					acceptedN.Add(1)
				}
			}
			c, res, err := migrateFile(t, f)
			if err != nil && accepted {
				t.Fatalf("docker compose accepts the file, unhost refuses it: %v", err)
			}
			if err != nil {
				if c != nil {
					t.Fatalf("loads but does not migrate: %v", err)
				}
				// refused: one line of text. (Not every error names the
				// file: compose-go's semantic errors, such as a service
				// with neither image nor build, carry no position.)
				msg := err.Error()
				if strings.Contains(msg, "\n") || strings.TrimSpace(msg) == "" {
					t.Errorf("error is not one line of text: %q", msg)
				}
				refused.Add(1)
				return
			}
			migrated.Add(1)
			if useCompose && !accepted && len(c.Unset) == 0 && len(c.MissingEnvFiles) == 0 {
				_, msg := composeAccepts(f)
				t.Errorf("docker compose rejects the file (%s), yet unhost migrates it with no variable or env file missing", msg)
			}
			if len(res.Files) == 0 {
				return
			}
			old, out := res.Files[0].Old, res.Files[0].New
			tmp := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(tmp, out, 0o644); err != nil {
				t.Fatal(err)
			}
			if accepted {
				if ok, msg := composeAccepts(tmp); !ok {
					t.Errorf("docker compose accepts the input but not the output: %s", msg)
				}
			}
			// every comment survives (as a multiset)
			oc, nc := comments(t, old), comments(t, out)
			have := map[string]int{}
			for _, c := range nc {
				have[c]++
			}
			for _, c := range oc {
				if have[c] == 0 {
					t.Errorf("comment lost: %q", c)
				}
				have[c]--
			}
			// a second run changes nothing
			_, res2, err := migrateFile(t, tmp)
			if err != nil {
				t.Fatalf("output does not migrate again: %v", err)
			}
			if len(res2.Files) > 0 {
				t.Errorf("second run is not a no-op:\n%s", migrate.UnifiedDiff(name, res2.Files[0].Old, res2.Files[0].New))
			}
		})
	}
}
