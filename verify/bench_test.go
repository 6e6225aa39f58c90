package verify_test

import (
	"context"
	"io"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// BenchmarkVerifyOverhead runs, side by side in each iteration, the floor
// (docker compose up -d --wait, then down -v, on the migrated test stack)
// and unhost verify on the same stack with the CLI defaults (its lease
// included), and reports the median over the iterations of verify's time
// as a ratio of the floor's in the same pair. The goal is median-ratio <=
// 1.25 over at least 5 interleaved pairs.
//
//	flock /tmp/unhost-engine.lock go test -run '^$' -bench VerifyOverhead -benchtime 7x ./verify/
func BenchmarkVerifyOverhead(b *testing.B) {
	verifytest.Env(b)
	file := verifytest.Stack("migrated")
	bin := verifytest.Binary(b)
	// The floor is what a user runs by hand: docker compose, through the
	// docker CLI. verify runs the plugin directly (FindCompose).
	compose := &verify.Compose{Argv: []string{"docker", "compose"}}
	ctx := context.Background()
	floorRun := func(i int) time.Duration {
		name := "unhost-bench-floor-" + strconv.Itoa(i)
		start := time.Now()
		if err := compose.Run(ctx, io.Discard, io.Discard, "-p", name, "-f", file, "up", "-d", "--wait"); err != nil {
			b.Fatal(err)
		}
		if err := compose.Run(ctx, io.Discard, io.Discard, "-p", name, "down", "-v"); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	verifyRun := func() time.Duration {
		start := time.Now()
		rep, err := verify.Run(ctx, verify.Options{Files: []string{file}, Timeout: time.Minute, Watch: 500 * time.Millisecond, ProbeBinary: bin, AllowSkip: true})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed() {
			b.Fatalf("verify failed: %+v", rep.Checks)
		}
		return time.Since(start)
	}
	// Warm up both paths (image cache, compose plugin start) outside the timing.
	floorRun(-1)
	verifyRun()
	b.ResetTimer()
	var floors, vers, ratios []float64
	for i := 0; i < b.N; i++ {
		// Alternate the order so that neither always runs on a warmer engine.
		var f, v time.Duration
		if i%2 == 0 {
			f = floorRun(i)
			v = verifyRun()
		} else {
			v = verifyRun()
			f = floorRun(i)
		}
		floors, vers, ratios = append(floors, f.Seconds()), append(vers, v.Seconds()), append(ratios, v.Seconds()/f.Seconds())
		b.Logf("pair %d: floor %.2fs verify %.2fs ratio %.2f", i, f.Seconds(), v.Seconds(), v.Seconds()/f.Seconds())
	}
	b.ReportMetric(median(floors), "floor-s/op")
	b.ReportMetric(median(vers), "verify-s/op")
	b.ReportMetric(median(ratios), "median-ratio")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
