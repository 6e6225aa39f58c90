package scan

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/internal/ci"
	"github.com/unhost/unhost/internal/gctune"
)

func TestSuppressedByComment(t *testing.T) {
	lines := []string{
		"services:", // 1
		"  a:",      // 2
		"    network_mode: host # unhost:ignore host-network",                       // 3
		"    # unhost:ignore ports-ignored, all-interfaces -- published on purpose", // 4
		"    ports: ['80:80']", // 5
		"    # unhost:ignore",  // 6
		"    x: 1",             // 7
		"    y: 2",             // 8
		`      - "8080:8080" # unhost:ignore all-interfaces -- published by unhost migrate: same reach as before`, // 9
	}
	for _, tc := range []struct {
		rule string
		line int
		want bool
	}{
		{RuleHostNetwork, 3, true},
		{RulePortsIgnored, 3, false},
		{RuleHostNetwork, 4, true}, // the line above says so
		{RulePortsIgnored, 5, true},
		{RuleAllInterfaces, 5, true},
		{RuleHostNetwork, 5, false},
		{RuleLoopbackReference, 7, true}, // no rule named: all rules
		{RuleHostNetwork, 8, false},
		{RuleHostNetwork, 1, false},
		{RuleAllInterfaces, 9, true}, // migrate's marker
		{RuleHostNetwork, 9, false},
	} {
		if got := suppressedByComment(Finding{Rule: tc.rule, Line: tc.line}, lines); got != tc.want {
			t.Errorf("%s at line %d: suppressed %v, want %v", tc.rule, tc.line, got, tc.want)
		}
	}
}

func TestTextHostModes(t *testing.T) {
	text := strings.Join([]string{
		"{{ if .X }}",
		"services:",
		"  coturn:",
		"    # network_mode: host",
		"    x-network_mode: host",
		`    network_mode: "host"`,
		"    image: a # network_mode: host",
		"    network_mode: hostile",
		"  web: {image: nginx, network_mode: host}",
	}, "\n")
	got := textHostModes([]byte(text))
	if len(got) != 2 {
		t.Fatalf("got %+v, want lines 6 and 9", got)
	}
	if got[0].line != 6 || got[0].col != 20 || got[0].service != "coturn" {
		t.Errorf("first hit %+v, want line 6 col 20 service coturn", got[0])
	}
	if got[1].line != 9 {
		t.Errorf("second hit %+v, want line 9", got[1])
	}
}

func TestAllInterfaces(t *testing.T) {
	for in, want := range map[string]bool{
		"8080:80":                      true,
		"80":                           true,
		"127.0.0.1:8080:80":            false,
		"[::1]:8080:80":                false,
		"${PORT:-80}:80":               true,
		"${BIND:-127.0.0.1}:8080:80":   false,
		"${BIND_PORT}":                 false, // one variable may hold the whole spec
		"0.0.0.0:53:53/udp":            false, // an explicit address is a choice
		"${IP:-0.0.0.0}:${P:-1}:1/tcp": false,
	} {
		_, got := allInterfaces(&yaml.Node{Kind: yaml.ScalarNode, Value: in})
		if got != want {
			t.Errorf("%q: all interfaces %v, want %v", in, got, want)
		}
	}
}

func TestStructureAliasBombRefused(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		_ = i
		bomb += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	bomb += "services:\n  s:\n    network_mode: host\n    image: *" + prev + "\n"
	if _, err := ParseBounded([]byte(bomb)); err == nil {
		t.Fatal("an alias bomb parses")
	}
	f := Classify("bomb.yml", "/bomb.yml", []byte(bomb))
	if f == nil || f.Root != nil {
		t.Fatalf("an alias bomb is classified %+v, want text", f)
	}
	if got := scanText(f); len(got) != 1 || got[0].Rule != RuleHostNetwork {
		t.Errorf("the text scan of an alias bomb found %+v", got)
	}
}

// corpusDir is the shared folder of real public Compose files; the tests
// read it in place and never copy it into the project.
func corpusDir(tb testing.TB) string {
	tb.Helper()
	d := filepath.Join("..", "..", "shared", "corpus")
	if fi, err := os.Stat(d); err == nil && fi.IsDir() {
		return d
	}
	if ci.Enabled() {
		tb.Fatal("../../shared/corpus is missing, and CI=true: the corpus tests must run in CI")
	}
	tb.Skip("../../shared/corpus is not here")
	return ""
}

// FuzzStructure feeds arbitrary text to the fallback scanners: they must
// never panic, and every finding must point inside the file.
func FuzzStructure(f *testing.F) {
	seeds := []string{
		"services:\n  a:\n    network_mode: host\n    ports: ['80:80']\n",
		"x: &x {network_mode: host}\nsvc:\n  <<: *x\n  image: a\n",
		"a:\n  extends: b\n  image: i\nb:\n  network_mode: host\n  image: j\n",
		"services:\n  a: {networks: [h], image: x}\nnetworks:\n  h: {external: true, name: host}\n",
		"services:\n  a: {network_mode: 'service:b', image: x}\n  b: {network_mode: 'container:c', image: y, container_name: c}\n",
		"x: &a [*a]\n",
		"services:\n  a: {image: x}\nnetworks:\n  n: &n {name: [*n]}\n",
		"{{ if .X }}\nservices:\n  a:\n    network_mode: host\n{{ end }}\n",
		"a: !!binary AAAA\n<<: [*b]\n",
		"services:\n  a:\n    <<: [*x, *y]\n",
		"image: x\nnetwork_mode: host\nports: [{target: 80}]\n",
	}
	if dir := os.Getenv("UNHOST_FUZZ_CORPUS"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml*"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				seeds = append(seeds, string(b))
			}
		}
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := Classify("f.yml", "/f.yml", data)
		if file == nil {
			return
		}
		var got []Finding
		if file.Root != nil {
			needsModel(file, []string{"A=localhost"})
			got = scanStructure(file)
		} else {
			got = scanText(file)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, g := range got {
			if g.Line < 1 || g.Line > lines || g.Col < 1 {
				t.Errorf("finding outside the file: %+v", g)
			}
		}
		mergeFindings(got)
	})
}

func TestCorpusHostNetwork(t *testing.T) {
	dir := corpusDir(t)
	want := corpusIndex(t, dir)
	rep, err := Scan(context.Background(), []string{dir}, Options{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, f := range rep.Findings {
		if f.Rule == RuleHostNetwork {
			found[f.File]++
		}
	}
	for file, uses := range want {
		switch {
		case uses && found[file] == 0:
			t.Errorf("%s: INDEX.tsv says it uses host networking; no host-network finding", file)
		case !uses && found[file] > 0:
			t.Errorf("%s: INDEX.tsv says no host networking; %d host-network finding(s)", file, found[file])
		}
	}
}

// corpusIndex reads INDEX.tsv: file name -> whether it uses host mode
// (column 7 not starting with "-").
func corpusIndex(t *testing.T, dir string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "INDEX.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		cols := strings.Split(l, "\t")
		if i == 0 || len(cols) < 7 {
			continue
		}
		out[cols[0]] = !strings.HasPrefix(strings.TrimSpace(cols[6]), "-")
	}
	if len(out) < 50 {
		t.Fatalf("INDEX.tsv lists %d files, want about 61", len(out))
	}
	return out
}

// benchTree copies the corpus 16 times into a temporary folder (about
// 1,000 Compose files) and returns it with the files' paths.
func benchTree(b *testing.B) (string, []string) {
	dir := corpusDir(b)
	files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml*"))
	tmp := b.TempDir()
	var out []string
	for copyNo := 0; copyNo < 16; copyNo++ {
		sub := filepath.Join(tmp, "copy"+string(rune('a'+copyNo)))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			p := filepath.Join(sub, filepath.Base(f))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return tmp, out
}

// scanFloor is the least any scan must do: read every file and parse it
// with go.yaml.in/yaml/v4, on one thread.
func scanFloor(tb testing.TB, files []string) {
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var doc yaml.Node
		_ = yaml.Unmarshal(data, &doc) // a few corpus files are templates, not YAML
	}
}

// BenchmarkScanFloor is the floor alone: read and YAML-parse the files of
// the benchmark tree on one thread.
func BenchmarkScanFloor(b *testing.B) {
	_, files := benchTree(b)
	b.ReportMetric(float64(len(files)), "files")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scanFloor(b, files)
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScan scans the benchmark tree and, in the same iteration, runs
// the floor on the same files, in alternating order; it reports the wall
// and CPU time of both and their ratios (the goal is a wall ratio of at
// most 5). The CPU ratio says more on a busy machine, where the scan's
// second worker waits for a core and the floor's one thread does not.
func BenchmarkScan(b *testing.B) {
	tmp, files := benchTree(b)
	n := len(files)
	b.ReportMetric(float64(n), "files")
	var scanT, floorT, scanCPU, floorCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		floor := func() {
			runtime.GC() // neither side pays for the other's garbage
			t0, c0 := time.Now(), cpuTime(b)
			scanFloor(b, files)
			floorT += time.Since(t0)
			floorCPU += cpuTime(b) - c0
		}
		if i%2 == 1 {
			floor()
		}
		runtime.GC()
		t0, c0 := time.Now(), cpuTime(b)
		restore := gctune.Raise() // as main does for every command; not for the floor
		rep, err := Scan(context.Background(), []string{tmp}, Options{WorkDir: tmp})
		restore()
		if err != nil {
			b.Fatal(err)
		}
		scanT += time.Since(t0)
		scanCPU += cpuTime(b) - c0
		if rep.Files != n {
			b.Fatalf("scanned %d files, want %d", rep.Files, n)
		}
		if i%2 == 0 {
			floor()
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(per(scanT), "scan-ms/op")
	b.ReportMetric(per(floorT), "floor-ms/op")
	b.ReportMetric(float64(scanT)/float64(floorT), "scan/floor")
	b.ReportMetric(per(scanCPU), "scan-cpu-ms/op")
	b.ReportMetric(per(floorCPU), "floor-cpu-ms/op")
	b.ReportMetric(float64(scanCPU)/float64(floorCPU), "cpu-scan/floor")
}
