package migrate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/unhost/unhost/internal/gctune"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// benchPhases times migrate's phases on a generated file of n services:
// load, plan and edit (Migrate), re-check (Check) and diff, each reported
// in ms per run, so that a change can be aimed at the phase that costs.
func benchPhases(b *testing.B, n int) {
	path := genStack(b, n)
	defer gctune.Raise()()
	var tLoad, tPlan, tCheck, tDiff time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{path}, WorkDir: filepath.Dir(path)})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		res, err := migrate.Migrate(c, migrate.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := migrate.Check(context.Background(), c, res); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		for _, f := range res.Files {
			f.Diff(f.Path)
		}
		t4 := time.Now()
		tLoad += t1.Sub(t0)
		tPlan += t2.Sub(t1)
		tCheck += t3.Sub(t2)
		tDiff += t4.Sub(t3)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(tLoad), "load-ms/op")
	b.ReportMetric(ms(tPlan), "plan+edit-ms/op")
	b.ReportMetric(ms(tCheck), "recheck-ms/op")
	b.ReportMetric(ms(tDiff), "diff-ms/op")
}

func BenchmarkPhases500(b *testing.B)  { benchPhases(b, 500) }
func BenchmarkPhases5000(b *testing.B) { benchPhases(b, 5000) }
