package verify_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// BenchmarkVerifyOverhead runs, side by side in each iteration, the floor
// (docker compose up -d --wait, then down -v, on the migrated test stack)
// and unhost verify on the same stack with the CLI defaults, and reports
// verify's time as a ratio of the floor's. The goal is ratio <= 1.25.
//
//	go test -run '^$' -bench VerifyOverhead -benchtime 5x ./verify/
func BenchmarkVerifyOverhead(b *testing.B) {
	verifytest.Env(b)
	file := verifytest.Stack("migrated")
	bin := verifytest.Binary(b)
	compose, err := verify.FindCompose(context.Background())
	if err != nil {
		b.Fatal(err)
	}
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
	var floor, ver time.Duration
	for i := 0; i < b.N; i++ {
		// Alternate the order so that neither always runs on a warmer engine.
		if i%2 == 0 {
			floor += floorRun(i)
			ver += verifyRun()
		} else {
			ver += verifyRun()
			floor += floorRun(i)
		}
	}
	b.ReportMetric(floor.Seconds()/float64(b.N), "floor-s/op")
	b.ReportMetric(ver.Seconds()/float64(b.N), "verify-s/op")
	b.ReportMetric(ver.Seconds()/floor.Seconds(), "ratio")
}
