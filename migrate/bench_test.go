package migrate_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unhost/unhost/internal/gctune"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
)

// genStack writes a Compose file of n host-network services: web tiers
// that reach api tiers that reach databases on localhost.
func genStack(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("# generated: " + fmt.Sprint(n) + " host-network services\nservices:\n")
	for i := 0; i < n; i++ {
		switch i % 3 {
		case 0: // a database
			fmt.Fprintf(&b, "  db%d:\n    image: postgres:16\n    network_mode: host  # db\n    environment:\n      PGPORT: \"%d\"\n\n", i, 20000+i)
		case 1: // an api using the db before it
			fmt.Fprintf(&b, "  api%d:\n    image: example/api:1\n    network_mode: host\n    environment:\n      PORT: \"%d\"\n      DATABASE_URL: postgres://u@localhost:%d/app\n\n", i, 20000+i, 20000+i-1)
		default: // a web front end
			fmt.Fprintf(&b, "  web%d:\n    image: example/web:1\n    network_mode: host\n    ports:\n      - \"%d:%d\"\n    command: [\"--upstream\", \"http://127.0.0.1:%d\"]\n\n", i, 20000+i, 20000+i, 20000+i-1)
		}
	}
	p := filepath.Join(tb.TempDir(), "compose.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// migrateAll is migrate's whole run on a file, as the CLI does it: load,
// plan, splice, check, diff, with the CLI's GC target.
func migrateAll(tb testing.TB, path string) *migrate.Result {
	defer gctune.Raise()()
	c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{path}, WorkDir: filepath.Dir(path)})
	if err != nil {
		tb.Fatal(err)
	}
	res, err := migrate.Migrate(c, migrate.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := migrate.Check(context.Background(), c, res); err != nil {
		tb.Fatal(err)
	}
	for _, f := range res.Files {
		f.Diff(f.Path)
	}
	return res
}

// BenchmarkMigrate500 runs migrate on a generated 500-service file and,
// in the same iteration, `docker compose config -q` on the same file when
// compose v2 is installed, reporting the ratio migrate/compose.
func BenchmarkMigrate500(b *testing.B) { benchMigrate(b, 500) }

// BenchmarkMigrate5000 is the same on 5,000 services, where work that
// grows faster than the file shows.
func BenchmarkMigrate5000(b *testing.B) { benchMigrate(b, 5000) }

func benchMigrate(b *testing.B, n int) {
	path := genStack(b, n)
	res := migrateAll(b, path)
	if len(res.Files) != 1 {
		b.Fatal("nothing migrated")
	}
	compose := exec.Command("docker", "compose", "version")
	haveCompose := compose.Run() == nil
	var tMigrate, tCompose time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		migrateAll(b, path)
		tMigrate += time.Since(t0)
		if haveCompose {
			t1 := time.Now()
			cmd := exec.Command("docker", "compose", "-f", path, "config", "-q")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("docker compose config: %v\n%s", err, out)
			}
			tCompose += time.Since(t1)
		}
	}
	b.ReportMetric(float64(tMigrate.Milliseconds())/float64(b.N), "migrate-ms/op")
	if haveCompose {
		b.ReportMetric(float64(tCompose.Milliseconds())/float64(b.N), "compose-config-ms/op")
		b.ReportMetric(float64(tMigrate)/float64(tCompose), "migrate/compose")
	}
}

// BenchmarkLoadOnly is the floor: compose-go's load alone.
func BenchmarkLoadOnly500(b *testing.B) {
	path := genStack(b, 500)
	for i := 0; i < b.N; i++ {
		if _, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{path}}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGeneratedStack checks the benchmark's input migrates as intended, so
// that the benchmark measures real work.
func TestGeneratedStack(t *testing.T) {
	res := migrateAll(t, genStack(t, 30))
	migratedN, internal := 0, 0
	for _, s := range res.Plan.Services {
		if s.Action == plan.ActionMigrate {
			migratedN++
		}
	}
	for _, e := range res.Plan.Exposure {
		if e.After == plan.ReachInternal {
			internal++
		}
	}
	// with static evidence only, ports the stack uses are published on
	// loopback rather than left internal (publish.go)
	if migratedN != 30 || internal != 0 {
		t.Fatalf("migrated %d services with %d internal ports, want 30 and 0", migratedN, internal)
	}
}
