package main

import "github.com/unhost/unhost/verify"

// benchSection is the data of the pull-request body's Performance section
// (migrate --format markdown --bench-report FILE); nil without a report,
// or with a report of a verify run without --bench.
func benchSection(rep *verify.Report) map[string]any {
	if rep == nil || rep.BenchEnv == nil {
		return nil
	}
	pathHead, paths := rep.BenchPathRows()
	svcHead, services := rep.BenchServiceRows()
	return map[string]any{
		"Status":      string(rep.Status),
		"NotRun":      rep.BenchEnv.NotRun,
		"Method":      rep.BenchEnv.Method(),
		"PathHead":    pathHead,
		"Paths":       paths,
		"ServiceHead": svcHead,
		"Services":    services,
		"Causes":      rep.BenchEnv.Causes,
		"Notes":       rep.BenchEnv.Notes,
	}
}
