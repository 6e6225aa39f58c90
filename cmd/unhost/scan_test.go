package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unhost/unhost/internal/peakrss"
	"github.com/unhost/unhost/internal/streams"
	"github.com/unhost/unhost/load"
)

// fixtureDir holds the repo-like tree of hand-written scan fixtures.
const fixtureDir = "../../testdata/scan"

// scanIn runs `unhost scan` in-process and returns stdout, stderr and the
// exit code.
func scanIn(t *testing.T, o *scanOptions) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	o.stdout, o.stderr = &out, &errb
	if o.format == "" {
		o.format = "text"
	}
	if o.maxFileSize == 0 {
		o.maxFileSize = load.DefaultMaxFileSize // the flag's default
	}
	err := runScan(context.Background(), o)
	code := ExitOK
	if err != nil {
		code = exitCode(err)
		if msg := err.Error(); msg != "" {
			errb.WriteString("unhost: " + msg + "\n")
		}
	}
	return out.String(), errb.String(), code
}

var versionRe = regexp.MustCompile(`("version": )"(?:devel|v)[^"]*"`)

// scanGolden compares got with the named file below testdata/scan/golden
// (the tests run there), or rewrites it with -update.
func scanGolden(t *testing.T, name, got string) {
	t.Helper()
	golden(t, filepath.Join("golden", name), []byte(got))
}

func TestScanGolden(t *testing.T) {
	t.Chdir(fixtureDir)
	for _, tc := range []struct{ format, file string }{
		{"text", "scan.txt"}, {"json", "scan.json"}, {"sarif", "scan.sarif"}, {"github", "scan.github"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out, errOut, code := scanIn(t, &scanOptions{paths: []string{"tree"}, format: tc.format})
			if code != ExitFindings {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitFindings, errOut)
			}
			scanGolden(t, tc.file, versionRe.ReplaceAllString(out, `$1"VERSION"`))
		})
	}
}

func TestScanTextSummary(t *testing.T) {
	t.Chdir(fixtureDir)
	out, errOut, _ := scanIn(t, &scanOptions{paths: []string{"tree"}})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(errOut, "finding(s)") || !strings.Contains(errOut, "2 suppressed") || !strings.Contains(errOut, ", 5 of them note(s)") {
		t.Errorf("summary on stderr: %q, want the count, 5 notes (torrent follows vpn, which needs the host network; exporter is node-exporter; app, agent and agent-base: listeners unknown) and 2 suppressed (chain/compose.yaml)", errOut)
	}
	for _, l := range lines {
		if strings.Contains(l, "node_modules") {
			t.Errorf("node_modules is scanned: %s", l)
		}
		if strings.Contains(l, "docs/workflow.yml") {
			t.Errorf("a workflow file is reported: %s", l)
		}
		if strings.Contains(l, "s3cret") {
			t.Errorf("a credential is printed: %s", l)
		}
	}
	for _, want := range []string{
		"tree/compose.yaml:4:17: host-network: services kafka and zookeeper", // the anchor
		"tree/compose.yaml:4:17: host-network: service app",                  // the anchor, kept: listeners unknown
		"tree/compose.override.yaml:5:19: host-network: service exporter",    // the override
		"tree/extends/base.yaml:4:19: host-network: service agent",           // extends
		"tree/chain/compose.yaml:8:19: host-network: service torrent",        // service: chain
		"tree/swarm/stack.yml:6:9: host-network: service node-exporter",      // swarm host network
		"tree/templates/docker-compose.yml.tmpl:7:19: host-network: service coturn",
		"tree/fragments/esphome/service.yml:5:17: host-network: service esphome",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing finding %q", want)
		}
	}
	if strings.Contains(out, "adguardhome/service.yml") && strings.Contains(out, "host-network: service adguardhome") {
		t.Error("x-network_mode is reported as host networking")
	}
}

func TestScanExitCodes(t *testing.T) {
	t.Chdir(fixtureDir)
	if _, _, code := scanIn(t, &scanOptions{paths: []string{"tree/docs"}}); code != ExitOK {
		t.Errorf("a folder without findings: exit %d, want 0", code)
	}
	if _, errOut, code := scanIn(t, &scanOptions{paths: []string{"no/such/dir"}}); code != ExitError || !strings.Contains(errOut, "no/such/dir") {
		t.Errorf("a missing path: exit %d (%q), want 1 naming the path", code, errOut)
	}
	if _, _, code := scanIn(t, &scanOptions{paths: []string{"tree"}, format: "xml"}); code != ExitUsage {
		t.Errorf("a bad format: exit %d, want 2", code)
	}
	if code := run([]string{"scan", "--no-such-flag"}); code != ExitUsage {
		t.Errorf("a bad flag: exit %d, want 2", code)
	}
	// a fragment alone is a finding (not-loadable), so exit 3
	if out, _, code := scanIn(t, &scanOptions{paths: []string{"tree/fragments/adguardhome"}}); code != ExitFindings || !strings.Contains(out, "not-loadable") {
		t.Errorf("a fragment: exit %d, output %q; want 3 with not-loadable", code, out)
	}
}

func TestScanBaselineFixture(t *testing.T) {
	t.Chdir(fixtureDir)
	out, errOut, code := scanIn(t, &scanOptions{paths: []string{"tree"}, baseline: "baseline.json"})
	if code != ExitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "tree/fragments/") {
		t.Errorf("findings listed in baseline.json are shown:\n%s", out)
	}
	scanGolden(t, "scan-baseline.txt", out)
}

// copyTree copies the fixture tree into a temporary folder.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestScanBaselineSurvivesLineMoves(t *testing.T) {
	src, err := filepath.Abs(filepath.Join(fixtureDir, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyTree(t, src, filepath.Join(dir, "tree"))
	t.Chdir(dir)
	if _, errOut, code := scanIn(t, &scanOptions{paths: []string{"tree"}, writeBaseline: "base.json"}); code != ExitOK {
		t.Fatalf("--write-baseline: exit %d: %s", code, errOut)
	}
	var b struct {
		Findings []map[string]string `json:"findings"`
	}
	data, _ := os.ReadFile("base.json")
	if err := json.Unmarshal(data, &b); err != nil || len(b.Findings) == 0 {
		t.Fatalf("baseline %s: %v", data, err)
	}
	// move every line of two files down
	for _, f := range []string{"tree/compose.yaml", "tree/chain/compose.yaml"} {
		old, _ := os.ReadFile(f)
		if err := os.WriteFile(f, append([]byte("# moved\n\n# down\n"), old...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, code := scanIn(t, &scanOptions{paths: []string{"tree"}, baseline: "base.json"}); code != ExitOK {
		t.Fatalf("after moving lines, the baseline hides nothing: exit %d\n%s%s", code, out, errOut)
	}
	// a new host-network service is still reported (one that migrate
	// moves: a kept one would be a note, which exits 0)
	f, _ := os.OpenFile("tree/chain/compose.yaml", os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("  dns:\n    image: example/dns-api\n    network_mode: host\n    command: [serve, --listen, ':8053']\n")
	f.Close()
	out, _, code := scanIn(t, &scanOptions{paths: []string{"tree"}, baseline: "base.json"})
	if code != ExitFindings || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "service dns") {
		t.Errorf("want exactly the new finding, got exit %d:\n%s", code, out)
	}
}

// TestScanSARIFRequired checks every property the SARIF 2.1.0 schema
// requires (sarifLog, run, tool, toolComponent, reportingDescriptor,
// result, message, multiformatMessageString, physicalLocation), and the
// ones GitHub code scanning reads.
func TestScanSARIFRequired(t *testing.T) {
	t.Chdir(fixtureDir)
	out, _, _ := scanIn(t, &scanOptions{paths: []string{"tree"}, format: "sarif"})
	var log map[string]any
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	str := func(m map[string]any, k, where string) string {
		s, ok := m[k].(string)
		if !ok || s == "" {
			t.Errorf("%s: %s is missing or empty", where, k)
		}
		return s
	}
	obj := func(m map[string]any, k, where string) map[string]any {
		o, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("%s: %s is missing or not an object", where, k)
		}
		return o
	}
	arr := func(m map[string]any, k, where string) []any {
		a, ok := m[k].([]any)
		if !ok {
			t.Fatalf("%s: %s is missing or not an array", where, k)
		}
		return a
	}
	if v := str(log, "version", "sarifLog"); v != "2.1.0" {
		t.Errorf("version %q", v)
	}
	str(log, "$schema", "sarifLog")
	runs := arr(log, "runs", "sarifLog")
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	run := runs[0].(map[string]any)
	driver := obj(obj(run, "tool", "run"), "driver", "tool")
	str(driver, "name", "driver")
	str(driver, "informationUri", "driver")
	str(driver, "version", "driver")
	var ids []string
	for i, r := range arr(driver, "rules", "driver") {
		rule := r.(map[string]any)
		where := "rules[" + string(rune('0'+i)) + "]"
		ids = append(ids, str(rule, "id", where))
		str(obj(rule, "shortDescription", where), "text", where+".shortDescription")
		str(obj(rule, "fullDescription", where), "text", where+".fullDescription")
		help := obj(rule, "help", where)
		str(help, "text", where+".help")
		str(help, "markdown", where+".help")
	}
	results := arr(run, "results", "run")
	if len(results) == 0 {
		t.Fatal("no results")
	}
	for _, r := range results {
		res := r.(map[string]any)
		id := str(res, "ruleId", "result")
		idx, ok := res["ruleIndex"].(float64)
		if !ok || int(idx) < 0 || int(idx) >= len(ids) || ids[int(idx)] != id {
			t.Errorf("result %s: ruleIndex %v does not point at its rule", id, res["ruleIndex"])
		}
		switch res["level"] {
		case "none", "note", "warning", "error":
		default:
			t.Errorf("result %s: level %v", id, res["level"])
		}
		str(obj(res, "message", "result"), "text", "result.message")
		if fp := obj(res, "partialFingerprints", "result"); len(fp) == 0 {
			t.Errorf("result %s: no partialFingerprints", id)
		}
		locs := arr(res, "locations", "result")
		if len(locs) == 0 {
			t.Errorf("result %s: no locations", id)
		}
		for _, l := range locs {
			pl := obj(l.(map[string]any), "physicalLocation", "location")
			uri := str(obj(pl, "artifactLocation", "physicalLocation"), "uri", "artifactLocation")
			if strings.Contains(uri, `\`) || strings.HasPrefix(uri, "/") || strings.Contains(uri, "://") {
				t.Errorf("uri %q is not a relative reference with forward slashes", uri)
			}
			region := obj(pl, "region", "physicalLocation")
			if l, _ := region["startLine"].(float64); l < 1 {
				t.Errorf("%s: startLine %v", uri, region["startLine"])
			}
			if c, _ := region["startColumn"].(float64); c < 1 {
				t.Errorf("%s: startColumn %v", uri, region["startColumn"])
			}
		}
	}
}

func TestScanSortedOutput(t *testing.T) {
	t.Chdir(fixtureDir)
	out, _, _ := scanIn(t, &scanOptions{paths: []string{"tree"}, format: "json"})
	var rep struct {
		Findings []struct {
			File      string `json:"file"`
			Line, Col int
			Rule      string `json:"rule"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(rep.Findings); i++ {
		a, b := rep.Findings[i-1], rep.Findings[i]
		if a.File > b.File || a.File == b.File && (a.Line > b.Line || a.Line == b.Line && (a.Col > b.Col || a.Col == b.Col && a.Rule > b.Rule)) {
			t.Errorf("not sorted: %v before %v", a, b)
		}
	}
}

func TestPluginMetadata(t *testing.T) {
	var out bytes.Buffer
	if _, done := pluginArgs([]string{"docker-cli-plugin-metadata"}, &out); !done {
		t.Fatal("the metadata call is not answered")
	}
	var md map[string]string
	if err := json.Unmarshal(out.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"SchemaVersion", "Vendor", "Version", "ShortDescription"} {
		if md[k] == "" {
			t.Errorf("metadata has no %s: %s", k, out.String())
		}
	}
	if md["SchemaVersion"] != "0.1.0" {
		t.Errorf("SchemaVersion %q", md["SchemaVersion"])
	}
	rest, done := pluginArgs([]string{"unhost", "scan", "."}, &out)
	if done || strings.Join(rest, " ") != "scan ." {
		t.Errorf("docker's plugin name is not stripped: %v", rest)
	}
	rest, _ = pluginArgs([]string{"scan", "unhost"}, &out)
	if strings.Join(rest, " ") != "scan unhost" {
		t.Errorf("arguments changed outside plugin mode: %v", rest)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	root := newRootCmd(newFactory(streams.System()))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "unhost version ") {
		t.Errorf("--version: %v %q", err, out.String())
	}
	out.Reset()
	root = newRootCmd(newFactory(streams.System()))
	root.SetOut(&out)
	root.SetArgs([]string{"completion", "bash"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "bash completion") {
		t.Errorf("completion bash: %v %.80q", err, out.String())
	}
}

// TestScanNotesAndStrict: a service that migrate keeps on the host network
// for a stated reason, and a file that was not read, are notes: SARIF level
// note, exit 0, unless --strict.
func TestScanNotesAndStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("compose.yaml", "services:\n  hass:\n    image: homeassistant/home-assistant:2024.1\n    network_mode: host\n")
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yml")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	out, errOut, code := scanIn(t, &scanOptions{paths: []string{"."}, format: "sarif"})
	if code != ExitOK {
		t.Fatalf("notes alone: exit %d, want 0; stderr %s", code, errOut)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	levels := map[string]string{}
	for _, r := range log.Runs[0].Results {
		levels[r.RuleID] = r.Level
	}
	if levels["host-network"] != "note" || levels["skipped"] != "note" || len(levels) != 2 {
		t.Errorf("SARIF levels %v, want host-network and skipped at note", levels)
	}
	if _, _, code := scanIn(t, &scanOptions{paths: []string{"."}, strict: true}); code != ExitFindings {
		t.Errorf("notes with --strict: exit %d, want 3", code)
	}
	if out, _, _ := scanIn(t, &scanOptions{paths: []string{"."}, format: "github"}); !strings.Contains(out, "::notice file=compose.yaml,line=4") {
		t.Errorf("github format: a note is not a notice:\n%s", out)
	}

	// a service migrate moves is still a warning, whatever sits beside it
	write("compose.yaml", "services:\n  api:\n    image: example/api\n    network_mode: host\n    command: [serve, --listen, ':8080']\n")
	if out, _, code := scanIn(t, &scanOptions{paths: []string{"compose.yaml"}}); code != ExitFindings {
		t.Errorf("a service migrate moves: exit %d, want 3\n%s", code, out)
	}
}

// TestScanMigratePublishedMarker: a port that `unhost migrate` published on
// all interfaces on purpose carries the marker comment that scan honours,
// so the migration's pull request passes the scan that proposed it.
func TestScanMigratePublishedMarker(t *testing.T) {
	dir := t.TempDir()
	const marker = "# unhost:ignore all-interfaces -- published by unhost migrate: same reach as before"
	// the marker ends the entry's first line, or is the line above it
	text := "services:\n  api:\n    image: example/api\n    ports:\n" +
		"      - \"8080:8080\" " + marker + "\n" +
		"      - \"127.0.0.1:7070:7070\"\n" +
		"      " + marker + "\n" +
		"      - target: 9090\n        published: \"9090\"\n" +
		"    networks: [default]\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	out, errOut, code := scanIn(t, &scanOptions{paths: []string{"."}})
	if code != ExitOK || out != "" || !strings.Contains(errOut, "2 suppressed") {
		t.Errorf("exit %d, output %q, stderr %q; want 0, nothing, 2 suppressed", code, out, errOut)
	}
	// without the marker, both are findings
	if err := os.WriteFile("compose.yaml", []byte(strings.ReplaceAll(text, marker, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, code := scanIn(t, &scanOptions{paths: []string{"."}}); code != ExitFindings || strings.Count(out, ": all-interfaces: ") != 2 {
		t.Errorf("without the marker: exit %d, output %q; want 3 and two all-interfaces findings", code, out)
	}
}

// TestScanBaselineBounded: the baseline file is read within the bounds
// too: a FIFO named as baseline is an error, not a hang.
func TestScanBaselineBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "base.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var errOut string
	var code int
	go func() {
		_, errOut, code = scanIn(t, &scanOptions{paths: []string{dir}, baseline: fifo})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO as baseline: no answer within 10 s")
	}
	if code != ExitError || !strings.Contains(errOut, "not a regular file") {
		t.Errorf("a FIFO as baseline: exit %d, %q; want 1, not a regular file", code, errOut)
	}
}

func TestScanBoundsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "--max-file-size", "0", "."},
		{"scan", "--max-file-size", "-1", "."},
		{"scan", "--max-file-size", "8 apples", "."},
	} {
		if code := run(args); code != ExitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestScanBoundedCLI runs `unhost scan` in a child process on a tree of
// hostile files (a sparse 3 GB file, a FIFO, symlinks to /dev/zero, to
// /proc and out of the tree) and wants the answer within 10 s and a peak
// resident set under 200 MB, measured by the kernel (getrusage maxrss).
func TestScanBoundedCLI(t *testing.T) {
	if dir := os.Getenv("UNHOST_SCAN_CHILD"); dir != "" {
		code := run([]string{"scan", "--format", "json", dir})
		peakrss.Report(os.Stderr)
		os.Exit(code)
	}
	dir := t.TempDir()
	big, err := os.Create(filepath.Join(dir, "big.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(3 << 30); err != nil {
		t.Fatal(err)
	}
	big.Close()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yml"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"zero.yml": "/dev/zero", "environ.yml": "/proc/self/environ", "out.yml": "/etc/hostname"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  a:\n    image: example/api\n    network_mode: host\n    expose: [\"8080\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestScanBoundedCLI$")
	cmd.Env = append(os.Environ(), "UNHOST_SCAN_CHILD="+dir)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("no answer within 10 s")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != ExitFindings {
		t.Fatalf("exit %v, want %d (the host-network service); output:\n%s", err, ExitFindings, out.String())
	}
	// the child's own peak: ru_maxrss would count this test process too
	maxRSS, ok := peakrss.Parse(stderr.Bytes())
	if !ok {
		t.Fatalf("the child reported no peak memory:\n%s", stderr.String())
	}
	t.Logf("answered in %v, peak RSS %d MB", took.Round(time.Millisecond), maxRSS>>20)
	if maxRSS >= 200<<20 {
		t.Errorf("peak RSS %d MB, want under 200 MB", maxRSS>>20)
	}
	var rep struct {
		Findings []struct{ Rule, File, Message string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	skipped := map[string]string{}
	for _, f := range rep.Findings {
		if f.Rule == "skipped" {
			skipped[filepath.Base(f.File)] = f.Message
		}
	}
	for file, want := range map[string]string{
		"big.yml": "larger than --max-file-size", "pipe.yml": "not a regular file",
		"zero.yml": "leads out of the scanned root", "environ.yml": "leads out of the scanned root", "out.yml": "leads out of the scanned root",
	} {
		if !strings.Contains(skipped[file], want) {
			t.Errorf("%s: skipped finding %q, want it to say %q", file, skipped[file], want)
		}
	}
}
