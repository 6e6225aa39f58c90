package analysis

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/unhost/unhost/load"
)

// OutsideRefs reads mounted files with the load's bounds: a file outside
// the root a bot scans is not read unless the root allows it.
func TestOutsideRefsStayInRoot(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	secret := filepath.Join(elsewhere, "app.conf")
	if err := os.WriteFile(secret, []byte("db = localhost:5432\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(root, "inside.conf")
	if err := os.WriteFile(inside, []byte("cache = localhost:6379\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := "services:\n  app:\n    image: x\n    network_mode: host\n    volumes:\n      - " + secret + ":/etc/app.conf:ro\n      - ./inside.conf:/etc/inside.conf:ro\n"
	if err := os.WriteFile(filepath.Join(root, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		allowOutside bool
		want         []int
	}{
		{false, []int{6379}},
		{true, []int{5432, 6379}},
	} {
		c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{filepath.Join(root, "compose.yaml")},
			WorkDir: root, Root: root, AllowOutside: tc.allowOutside})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, r := range OutsideRefs(c, root) {
			got = append(got, r.Port)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("allow outside %v: ports %v, want %v", tc.allowOutside, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("allow outside %v: ports %v, want %v", tc.allowOutside, got, tc.want)
			}
		}
	}
}
