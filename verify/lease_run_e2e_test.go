package verify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// TestLeaseImages runs the migrated stack with the lease program (the
// lease from its own small image) and without one (the lease from the
// probe image, as on an architecture without a listing): both pass, each
// lease runs from the image it should, and nothing is left behind
// (verifytest.Env checks).
func TestLeaseImages(t *testing.T) {
	cli := verifytest.Env(t)
	for _, tc := range []struct {
		name    string
		program func(string) []byte
		image   string
	}{
		{"lease program", nil, "unhost-verify-lease:"},
		{"probe image", func(string) []byte { return nil }, "unhost-verify-probe:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.program != nil {
				defer verify.SetLeaseProgram(tc.program)()
			}
			// Which images do this run's leases run from? Each lease as
			// first seen: once the teardown has untagged its image, the
			// engine names that by its id.
			ctx, cancel := context.WithCancel(context.Background())
			var mu sync.Mutex
			seen := map[string]string{} // container id -> image
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := filters.NewArgs(filters.Arg("label", verify.LabelLease))
				for ctx.Err() == nil {
					cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
					if err == nil {
						mu.Lock()
						for _, c := range cs {
							if _, ok := seen[c.ID]; !ok {
								seen[c.ID] = c.Image
							}
						}
						mu.Unlock()
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			rep := runVerify(t, verifytest.Stack("migrated"), func(o *verify.Options) { o.AllowSkip = true })
			cancel()
			wg.Wait()
			if rep.Failed() {
				t.Errorf("verify: %s: %+v", rep.Status, rep.Checks)
			}
			if len(seen) != 1 {
				t.Fatalf("leases seen: %v; want one", seen)
			}
			for _, img := range seen {
				if !strings.HasPrefix(img, tc.image) {
					t.Errorf("the lease ran from %s; want %s*", img, tc.image)
				}
			}
		})
	}
}
