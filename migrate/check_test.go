package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// TestCheckCatches feeds Check rewritten texts that are wrong in the ways
// a rewriting bug would make them wrong: Check must refuse each.
func TestCheckCatches(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yaml")
	orig := "services:\n  web:\n    image: nginx\n    network_mode: host\n    expose: [\"80\"]\n  nic:\n    image: x\n    network_mode: host\n    cap_add: [NET_ADMIN]\n"
	if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{p}, WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Migrate(c, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.Check(context.Background(), c, res); err != nil {
		t.Fatalf("the real rewrite does not check: %v", err)
	}
	good := string(res.Files[0].New)
	cases := []struct{ name, text, want string }{
		{"still host", orig + "  other:\n    image: y\n", "still on the host network"},
		{"undefined network", strings.Replace(good, "    ports:", "    networks: [nosuch]\n    ports:", 1), "network nosuch, which is not defined"},
		{"kept one moved", strings.Replace(good, "    network_mode: host\n    cap_add", "    cap_add", 1), "left the host network"},
		{"network_mode and networks", good + "  bad:\n    image: z\n    network_mode: host\n    networks: [default]\n", "declares both network_mode and networks"},
		{"invalid port", good + "  bad:\n    image: z\n    ports: [\"x:y:z:w\"]\n", "ports: \"x:y:z:w\""},
		{"schema", good + "  bad:\n    image: z\n    restart: 5\n", "do not load"},
		{"not yaml", "services: [\n", "do not load"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := &migrate.Result{Plan: res.Plan, Files: []migrate.FileResult{{Path: "compose.yaml", Abs: p, Old: []byte(orig), New: []byte(tc.text)}}}
			err := migrate.Check(context.Background(), c, bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q\ntext:\n%s", err, tc.want, tc.text)
			}
		})
	}
}
