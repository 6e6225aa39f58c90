// Package scan finds Compose files in a tree and reports services on the
// host network and related exposure problems, each located at
// file:line:column. It reads files only; it never changes them.
package scan

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// Options steer a scan.
type Options struct {
	// WorkDir is the folder paths are shown relative to; default ".".
	WorkDir string
	// Env is the environment used for interpolation (os.Environ() form);
	// nil means none, which keeps results independent of the caller's shell.
	Env []string
	// Workers bounds how many projects load at once; default GOMAXPROCS.
	Workers int
	// Baseline, when set, hides the findings it lists.
	Baseline *Baseline
	// Bounds limit what is read: files scan finds, and those compose-go
	// reads for them (env files, extends and include targets).
	Bounds
}

// Finding is one problem at one place.
type Finding struct {
	Rule string `json:"rule"`
	File string `json:"file"` // relative to WorkDir, forward slashes
	Line int    `json:"line"`
	Col  int    `json:"col"`
	// Services are the services the finding concerns, sorted.
	Services []string `json:"services,omitempty"`
	// Message says what is wrong, what to do, and whether migrate fixes it.
	Message string `json:"message"`
	// Fix is what to do, alone.
	Fix string `json:"fix"`
	// FixedByMigrate is true when `unhost migrate` resolves the finding.
	FixedByMigrate bool `json:"fixed_by_migrate"`
	// Note marks a finding that informs without asking for a change: a
	// file that was not read, a service kept on the host network for a
	// stated reason. It is reported at SARIF level note and does not make
	// the scan fail (exit 3) unless it is strict.
	Note bool `json:"note,omitempty"`
	// Fingerprint identifies the finding across line moves.
	Fingerprint string `json:"fingerprint"`

	// format is the message with "{services}" standing for the services,
	// filled in once findings at one place are merged.
	format string
}

// Report is the result of a scan.
type Report struct {
	Findings []Finding `json:"findings"`
	// Files is how many files were scanned (Compose files and fragments).
	Files int `json:"files_scanned"`
	// Suppressed counts findings hidden by comments or the baseline.
	Suppressed int `json:"suppressed"`
}

// Scan scans the given files and folders. It fails only when a path cannot
// be read at all; every problem inside a file is a finding. It leaves
// process-wide settings alone: the GC target is main's (internal/gctune).
func Scan(ctx context.Context, paths []string, o Options) (*Report, error) {
	if o.WorkDir == "" {
		o.WorkDir = "."
	}
	projects, err := DiscoverBounded(paths, o.WorkDir, o.Bounds)
	if err != nil {
		return nil, err
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	results := make([][]Finding, len(projects))
	texts := &textCache{data: map[string][]byte{}}
	parallel(len(projects), workers, func(i int) {
		results[i] = scanProject(ctx, projects[i], o, texts)
	})
	files := map[string]bool{}
	var all []Finding
	for i, p := range projects {
		for _, f := range p.Files {
			if f.Kind != KindSkipped {
				files[f.Abs] = true
			}
			texts.put(f.Show, f.Data)
		}
		all = append(all, results[i]...)
	}
	all = mergeFindings(all)
	rep := &Report{Files: len(files)}
	for _, f := range all {
		lines := texts.lines(f.File)
		f.Fingerprint = fingerprint(f, lines)
		if suppressedByComment(f, lines) || o.Baseline.take(f) {
			rep.Suppressed++
			continue
		}
		rep.Findings = append(rep.Findings, f)
	}
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	return rep, nil
}

// parallel calls f(i) for every i below n, on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// scanProject loads one project and scans it, falling back to each file's
// YAML structure, or its text, when Compose cannot load it.
func scanProject(ctx context.Context, p *Project, o Options, texts *textCache) (out []Finding) {
	defer func() {
		if r := recover(); r != nil {
			// never let one odd file stop the scan: report it instead
			for _, f := range p.Files {
				out = append(out, notLoadable(f, fmt.Sprintf("internal error while scanning: %v", r), "text", o.WorkDir)...)
			}
		}
	}()
	if len(p.Files) == 1 && p.Files[0].Kind == KindSkipped {
		return skippedFinding(p.Files[0])
	}
	if p.Loadable() && len(p.Files) == 1 && !needsModel(p.Files[0], o.Env) {
		return scanStructure(p.Files[0])
	}
	if p.Loadable() {
		var names []string
		var parsed []*load.SourceFile
		for _, f := range p.Files {
			names = append(names, f.Abs)
			if f.Source != nil {
				parsed = append(parsed, f.Source)
			}
		}
		c, err := load.LoadCompose(ctx, load.ComposeOptions{Files: names, WorkDir: o.WorkDir, Env: o.Env, ForScan: true, Parsed: parsed,
			MaxFileSize: o.max(), Root: p.Files[0].ScanRoot, AllowOutside: o.AllowOutside})
		if err == nil {
			for _, sf := range c.Files {
				texts.put(sf.Path, sf.Data)
			}
			return scanLoaded(c)
		}
		reason := err.Error()
		for _, f := range p.Files {
			out = append(out, fallback(f, reason, o.WorkDir)...)
		}
		return out
	}
	for _, f := range p.Files {
		out = append(out, fallback(f, f.Reason, o.WorkDir)...)
	}
	return out
}

// skippedFinding reports a file that was not read.
func skippedFinding(f *File) []Finding {
	var fix string
	switch {
	case strings.HasPrefix(f.Reason, "larger than"):
		fix = "if it is a Compose file meant to be scanned, raise --max-file-size"
	case strings.HasPrefix(f.Reason, "leads out"):
		fix = "put the file itself in the repository, or pass --allow-outside if what the symlink leads to is meant to be scanned"
	case strings.HasPrefix(f.Reason, "not a regular file"):
		fix = "scan reads only regular files: replace it with one if it is meant to be scanned"
	default:
		fix = "make it readable, or remove it if it is not meant to be scanned"
	}
	return []Finding{{Rule: RuleSkipped, File: f.Show, Line: 1, Col: 1, Note: true,
		format: "skipped: " + f.Reason + "; " + fix, Fix: fix}}
}

// fallback scans a file that Compose cannot load from its structure, or its
// text, and adds the not-loadable finding.
func fallback(f *File, reason, workDir string) []Finding {
	if f.Root != nil {
		return append(scanStructure(f), notLoadable(f, reason, "structure", workDir)...)
	}
	return append(scanText(f), notLoadable(f, reason, "text", workDir)...)
}

func notLoadable(f *File, reason, how, workDir string) []Finding {
	line, col := 1, 1
	if l, c, ok := errorPos(reason, f.Show); ok {
		line, col = l, c
	}
	reason = strings.ReplaceAll(reason, f.Abs, f.Show)
	if wd, err := filepath.Abs(workDir); err == nil {
		reason = strings.ReplaceAll(reason, wd+string(filepath.Separator), "")
	}
	reason = strings.TrimPrefix(reason, f.Show+":")
	reason = sortPropertyLists(reason)
	reason = strings.TrimSpace(strings.TrimPrefix(reason, fmt.Sprintf("%d:%d:", line, col)))
	what := "its YAML structure"
	if how == "text" {
		what = "its text (it is not YAML)"
	}
	fix := "make it load with `docker compose config`, or ignore this finding if it is a fragment or template by design"
	return []Finding{{Rule: RuleNotLoadable, File: f.Show, Line: line, Col: col,
		format: fmt.Sprintf("compose cannot load this file (%s): it was scanned from %s only, and `unhost migrate` cannot rewrite it; %s",
			oneLine(migrate.Redact(reason)), what, fix),
		Fix: fix}}
}

// propertyListRe matches the list of keys in compose-go's schema errors,
// which it prints in map order.
var propertyListRe = regexp.MustCompile(`properties ('[^']*'(?:, '[^']*')+) not allowed`)

// sortPropertyLists sorts the keys that a schema error lists, so that the
// same file gives the same finding on every run.
func sortPropertyLists(reason string) string {
	return propertyListRe.ReplaceAllStringFunc(reason, func(m string) string {
		sub := propertyListRe.FindStringSubmatch(m)
		keys := strings.Split(sub[1], ", ")
		sort.Strings(keys)
		return strings.Replace(m, sub[1], strings.Join(keys, ", "), 1)
	})
}

// errorPos finds "FILE:LINE:COL:" at the start of an error message.
func errorPos(msg, file string) (int, int, bool) {
	rest, ok := strings.CutPrefix(msg, file+":")
	if !ok {
		return 0, 0, false
	}
	var line, col int
	if n, _ := fmt.Sscanf(rest, "%d:%d:", &line, &col); n == 2 && line > 0 && col > 0 {
		return line, col, true
	}
	return 0, 0, false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// mergeFindings joins findings of one rule at one place (an anchor shared
// by several services, a file scanned in two projects) and sorts them by
// file, line, column and rule.
func mergeFindings(in []Finding) []Finding {
	type key struct {
		rule, file, format string
		line, col          int
	}
	idx := map[key]int{}
	var out []Finding
	for _, f := range in {
		k := key{f.Rule, f.File, f.format, f.Line, f.Col}
		if i, ok := idx[k]; ok {
			out[i].Services = append(out[i].Services, f.Services...)
			out[i].FixedByMigrate = out[i].FixedByMigrate && f.FixedByMigrate
			continue
		}
		idx[k] = len(out)
		out = append(out, f)
	}
	for i := range out {
		out[i].Services = uniqueSorted(out[i].Services)
		// values from the files were redacted where they were quoted
		out[i].Message = fillIn(out[i].format, out[i].Services)
		out[i].Fix = fillIn(out[i].Fix, out[i].Services)
	}
	sort.SliceStable(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func less(a, b Finding) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	if a.Col != b.Col {
		return a.Col < b.Col
	}
	if a.Rule != b.Rule {
		return a.Rule < b.Rule
	}
	return a.Message < b.Message
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// serviceList names services in prose: "service a", "services a and b".
func serviceList(s []string) string {
	switch len(s) {
	case 0:
		return "a service"
	case 1:
		return "service " + s[0]
	}
	return "services " + strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// textCache keeps each scanned file's text, by shown path, for
// suppression comments and fingerprints.
type textCache struct {
	mu    sync.Mutex
	data  map[string][]byte
	split map[string][]string
}

func (t *textCache) put(show string, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.data[show]; !ok {
		t.data[show] = data
	}
}

func (t *textCache) lines(show string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.split == nil {
		t.split = map[string][]string{}
	}
	if l, ok := t.split[show]; ok {
		return l
	}
	l := strings.Split(strings.ReplaceAll(string(t.data[show]), "\r\n", "\n"), "\n")
	t.split[show] = l
	return l
}

// showPath is how a path is shown: relative to workDir, forward slashes.
func showPath(abs, workDir string) string {
	return filepath.ToSlash(load.DisplayPath(abs, workDir))
}

// fillIn puts the services into a message format and makes the words
// around them agree: {services}, {is}, {it}, {s} and {es} (verb endings).
func fillIn(format string, services []string) string {
	one := len(services) <= 1
	pick := func(a, b string) string {
		if one {
			return a
		}
		return b
	}
	return strings.NewReplacer("{services}", serviceList(services), "{is}", pick("is", "are"),
		"{it}", pick("it", "them"), "{s}", pick("s", ""), "{es}", pick("es", "")).Replace(format)
}
