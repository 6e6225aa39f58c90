package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// writeBenchText writes the --bench section of the text report: the path
// baselines with their ratios to host loopback, the stack's ports beside
// the original's, where the time goes, and how it was measured.
func (r *Report) writeBenchText(w io.Writer) error {
	env := r.BenchEnv
	fmt.Fprintf(w, "\nPERFORMANCE (--bench)\n")
	if env.NotRun != "" {
		fmt.Fprintf(w, "not run: %s\n", env.NotRun)
		return nil
	}
	fmt.Fprintf(w, "%s\n\n", env.Method())
	table := func(head []string, rows [][]string) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(head, "\t")))
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		return tw.Flush()
	}
	head, rows := r.BenchPathRows()
	if err := table(head, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, "(×: ratio to host loopback, the path host mode gives)")
	if head, rows := r.BenchServiceRows(); len(rows) > 0 {
		fmt.Fprintln(w)
		if err := table(head, rows); err != nil {
			return err
		}
	}
	for _, c := range env.Causes {
		fmt.Fprintf(w, "\nwhere the time goes: %s\n", c)
	}
	for _, n := range env.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// BenchPathRows are the path baselines as table cells (the text report
// and the pull-request body print the same rows).
func (r *Report) BenchPathRows() (head []string, rows [][]string) {
	head = []string{"path", "rtt p50", "rtt p99", "connect p50", "connect p99", "throughput", "route"}
	for _, e := range r.Bench {
		if e.Kind != BenchBaseline {
			continue
		}
		if e.RTTN == 0 {
			rows = append(rows, []string{e.Path, "-", "-", "-", "-", "-", e.Note})
			continue
		}
		x := func(key string) string {
			if e.Path == PathHostLoopback || e.Ratio[key] == 0 {
				return ""
			}
			return fmt.Sprintf(" (%.1f×)", e.Ratio[key])
		}
		route := e.Route
		if e.Note != "" {
			route += "; " + e.Note
		}
		rows = append(rows, []string{e.Path,
			fmtUS(e.RTTP50us) + x("rtt_p50"), fmtUS(e.RTTP99us) + x("rtt_p99"),
			fmtUS(e.ConnectP50us) + x("connect_p50"), fmtUS(e.ConnectP99us) + x("connect_p99"),
			fmt.Sprintf("%.0f Mbit/s%s", e.ThroughputMbit, x("throughput")), route})
	}
	return head, rows
}

// BenchServiceRows are the stack's ports, original beside migrated, as
// table cells.
func (r *Report) BenchServiceRows() (head []string, rows [][]string) {
	head = []string{"service", "port", "measure", "original p50 / p99", "migrated p50 / p99", "migrated ÷ original", "note"}
	for _, e := range r.Bench {
		if e.Kind != BenchService {
			continue
		}
		port := strconv.Itoa(int(e.Port))
		if e.ConnectN == 0 && e.RequestN == 0 {
			rows = append(rows, []string{e.Service, port, "-", "-", "-", "-", e.Note})
			continue
		}
		var o Figures
		if e.Original != nil {
			o = *e.Original
		}
		row := func(measure string, mp50, mp99, op50, op99 float64, k50, k99, note string) {
			orig, ratio := "-", "-"
			if e.Original != nil {
				orig = fmtUS(op50) + " / " + fmtUS(op99)
				ratio = fmt.Sprintf("%.2f / %.2f", e.Ratio[k50], e.Ratio[k99])
			}
			rows = append(rows, []string{e.Service, port, measure, orig, fmtUS(mp50) + " / " + fmtUS(mp99), ratio, note})
		}
		row("connect", e.ConnectP50us, e.ConnectP99us, o.ConnectP50us, o.ConnectP99us, "connect_p50", "connect_p99", e.Note)
		if e.RequestN > 0 {
			row(e.Route, e.RequestP50us, e.RequestP99us, o.RequestP50us, o.RequestP99us, "request_p50", "request_p99", statusNote(e.Status, o.Status))
		}
	}
	return head, rows
}

// Method says how the bench was measured, in one line.
func (env *BenchEnv) Method() string {
	var parts []string
	if env.SingleRun {
		parts = append(parts, fmt.Sprintf("numbers from a single run (%d interleaved rounds after a warm-up)", env.Rounds))
	}
	if env.Cores > 0 {
		parts = append(parts, fmt.Sprintf("%d cores", env.Cores))
	}
	if env.LoadAvg != "" {
		parts = append(parts, "load average "+env.LoadAvg)
	}
	parts = append(parts, fmt.Sprintf("%.1fs of a %.0fs budget", env.Seconds, env.Budget))
	if env.PublishedRoute != "" {
		parts = append(parts, "published ports via "+env.PublishedRoute)
	}
	if env.ProductionMeasured {
		parts = append(parts, fmt.Sprintf("the running original (production) was measured, at most %.0f requests a second", env.RateLimit))
	}
	return strings.Join(parts, "; ")
}

func fmtUS(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 10000:
		return fmt.Sprintf("%.1fms", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2fms", v/1000)
	}
	return fmt.Sprintf("%.0fµs", v)
}

func statusNote(migrated, original map[int]int) string {
	f := func(m map[int]int) string {
		var s []string
		for code, n := range m {
			s = append(s, fmt.Sprintf("%d×%d", n, code))
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	if len(original) == 0 {
		return "answers " + f(migrated)
	}
	return "answers: original " + f(original) + ", migrated " + f(migrated)
}

// maxReportSize bounds a report read back (a verify report is kilobytes).
const maxReportSize = 16 << 20

// ReadReport reads a report written by verify --format json, for the
// Performance section of a pull-request body.
func ReadReport(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxReportSize {
		return nil, fmt.Errorf("%s: %d bytes, more than a verify report's %d", path, fi.Size(), maxReportSize)
	}
	return decodeReport(io.LimitReader(f, maxReportSize), path)
}

// decodeReport decodes a verify --format json report; name is for errors.
func decodeReport(rd io.Reader, name string) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a verify --format json report: %w", name, err)
	}
	if r.Project == "" || r.Status == "" {
		return nil, fmt.Errorf("%s: not a verify --format json report (no project or status)", name)
	}
	return &r, nil
}
