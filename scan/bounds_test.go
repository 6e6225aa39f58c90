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
)

const hostCompose = "services:\n  a:\n    image: x\n    network_mode: host\n"

// boundedScan scans paths and fails the test when the scan takes 10 s or
// more, or allocates 200 MB or more in all (an upper bound of its peak
// heap).
func boundedScan(t *testing.T, paths []string, o Options) *Report {
	t.Helper()
	type result struct {
		rep *Report
		err error
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := Scan(context.Background(), paths, o)
		done <- result{rep, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the scan did not answer within 10 s")
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc >= 200<<20 {
		t.Errorf("the scan allocated %d MB, want under 200 MB", alloc>>20)
	}
	t.Logf("answered in %v", time.Since(start).Round(time.Millisecond))
	if r.err != nil {
		t.Fatalf("the scan failed: %v", r.err)
	}
	return r.rep
}

// findingFor returns the findings of rule in file.
func findingsFor(rep *Report, rule, file string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Rule == rule && f.File == file {
			out = append(out, f)
		}
	}
	return out
}

func TestScanBoundedInputs(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.yml")
	if err := os.WriteFile(secret, []byte(hostCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		make         func(t *testing.T, root string) // creates file "x.yml" in root
		allowOutside bool
		max          int64
		want         string // in the skipped finding; "" wants a host-network finding
	}{
		{"sparse 3 GB file", func(t *testing.T, root string) {
			f, err := os.Create(filepath.Join(root, "x.yml"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(3 << 30); err != nil {
				t.Fatal(err)
			}
		}, false, 0, "larger than --max-file-size: 3221225472 bytes, the limit is 8388608"},
		{"FIFO", func(t *testing.T, root string) {
			if err := syscall.Mkfifo(filepath.Join(root, "x.yml"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false, 0, "not a regular file: a named pipe (FIFO)"},
		{"symlink to a FIFO", func(t *testing.T, root string) {
			if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
			symlink(t, "pipe", filepath.Join(root, "x.yml"))
		}, false, 0, "not a regular file: a named pipe (FIFO)"},
		{"symlink out of the root", func(t *testing.T, root string) {
			symlink(t, secret, filepath.Join(root, "x.yml"))
		}, false, 0, "leads out of the scanned root, to " + secret},
		{"symlink out of the root, allowed", func(t *testing.T, root string) {
			symlink(t, secret, filepath.Join(root, "x.yml"))
		}, true, 0, ""},
		{"symlink to /dev/zero", func(t *testing.T, root string) {
			symlink(t, "/dev/zero", filepath.Join(root, "x.yml"))
		}, false, 0, "leads out of the scanned root, to /dev/zero"},
		{"symlink to /dev/zero, allowed", func(t *testing.T, root string) {
			symlink(t, "/dev/zero", filepath.Join(root, "x.yml"))
		}, true, 0, "not a regular file: a character device"},
		{"symlink to /proc, allowed: the read is bounded, not the size stat says", func(t *testing.T, root string) {
			symlink(t, "/proc/self/status", filepath.Join(root, "x.yml"))
		}, true, 64, "larger than --max-file-size: more than 64 bytes"},
		{"symlink inside the root", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "real"), []byte(hostCompose), 0o644); err != nil {
				t.Fatal(err)
			}
			symlink(t, "real", filepath.Join(root, "x.yml"))
		}, false, 0, ""},
		{"broken symlink", func(t *testing.T, root string) {
			symlink(t, "nothing", filepath.Join(root, "x.yml"))
		}, false, 0, "cannot be read: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "ok.yml"), []byte(hostCompose), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.make(t, root)
			rep := boundedScan(t, []string{root}, Options{WorkDir: root, Bounds: Bounds{MaxFileSize: tc.max, AllowOutside: tc.allowOutside}})
			if len(findingsFor(rep, RuleHostNetwork, "ok.yml")) != 1 {
				t.Errorf("the regular file beside it was not scanned: %+v", rep.Findings)
			}
			skips := findingsFor(rep, RuleSkipped, "x.yml")
			if tc.want == "" {
				if len(skips) != 0 || len(findingsFor(rep, RuleHostNetwork, "x.yml")) != 1 {
					t.Errorf("want x.yml read and its host-network found; got %+v", rep.Findings)
				}
				return
			}
			if len(skips) != 1 || !strings.HasPrefix(skips[0].Message, "skipped: "+tc.want) || !skips[0].Note {
				t.Fatalf("want one skipped note %q; got %+v", tc.want, rep.Findings)
			}
			if len(findingsFor(rep, RuleHostNetwork, "x.yml")) != 0 {
				t.Errorf("a skipped file has findings: %+v", rep.Findings)
			}
			if rep.Files != 1 {
				t.Errorf("files scanned %d, want 1 (a skipped file is not scanned)", rep.Files)
			}
		})
	}
}

// TestScanBoundedArguments covers files named on the command line and an
// override file that leads out of the root.
func TestScanBoundedArguments(t *testing.T) {
	root := t.TempDir()
	fifo := filepath.Join(root, "compose.yml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := boundedScan(t, []string{fifo}, Options{WorkDir: root})
	if s := findingsFor(rep, RuleSkipped, "compose.yml"); len(s) != 1 || !strings.Contains(s[0].Message, "named pipe") {
		t.Errorf("a FIFO named on the command line: %+v", rep.Findings)
	}
	if rep.Failing(false) || !rep.Failing(true) {
		t.Errorf("a skipped file alone fails the scan %v, with --strict %v; want false, true", rep.Failing(false), rep.Failing(true))
	}

	proj := t.TempDir()
	if err := os.WriteFile(filepath.Join(proj, "compose.yaml"), []byte(hostCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/proc/self/environ", filepath.Join(proj, "compose.override.yaml"))
	rep = boundedScan(t, []string{filepath.Join(proj, "compose.yaml")}, Options{WorkDir: proj})
	if s := findingsFor(rep, RuleSkipped, "compose.override.yaml"); len(s) != 1 || !strings.Contains(s[0].Message, "leads out of the scanned root") {
		t.Errorf("an override that leads to /proc: %+v", rep.Findings)
	}
	if len(findingsFor(rep, RuleHostNetwork, "compose.yaml")) != 1 {
		t.Errorf("the base file was not scanned: %+v", rep.Findings)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
