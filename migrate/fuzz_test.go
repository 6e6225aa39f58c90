package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// FuzzMigrate: for any input, migrate does not panic; when it produces
// output, the output loads as Compose and migrating it again changes nothing.
func FuzzMigrate(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/migrate/*/compose.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("services:\n  a: {image: x, network_mode: host, environment: [\"U=localhost:80\"]}\n"))
	f.Add([]byte("x: &a {network_mode: host}\nservices:\n  s:\n    <<: *a\n    image: i\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// a hang is a failure too: a bot fed an untrusted file must not stall
		timer := time.AfterFunc(20*time.Second, func() {
			panic(fmt.Sprintf("migrate took more than 20s on:\n%q", data))
		})
		defer timer.Stop()
		dir := t.TempDir()
		p := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		c, err := load.LoadCompose(ctx, load.ComposeOptions{Files: []string{p}, WorkDir: dir})
		if err != nil {
			return // refused with an error: fine
		}
		res, err := migrate.Migrate(c, migrate.Options{})
		if err != nil {
			return
		}
		if err := migrate.Check(ctx, c, res); err != nil {
			t.Fatalf("output does not check: %v\ninput:\n%s", err, data)
		}
		if len(res.Files) == 0 {
			return
		}
		out := res.Files[0].New
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		c2, err := load.LoadCompose(ctx, load.ComposeOptions{Files: []string{p}, WorkDir: dir})
		if err != nil {
			t.Fatalf("output does not load: %v\n%s", err, out)
		}
		res2, err := migrate.Migrate(c2, migrate.Options{})
		if err != nil {
			t.Fatalf("output does not migrate: %v\n%s", err, out)
		}
		if len(res2.Files) > 0 && !bytes.Equal(res2.Files[0].New, out) {
			t.Fatalf("second run changes the output:\n%s", migrate.UnifiedDiff("compose.yaml", out, res2.Files[0].New))
		}
	})
}
