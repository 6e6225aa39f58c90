package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unhost/unhost/internal/peakrss"
)

// hostileCase is one input an untrusted repository can hold. setup writes
// it under dir and returns the options to load it with.
type hostileCase struct {
	name  string
	setup func(t *testing.T, dir string) ComposeOptions
	want  error  // the reason the load fails with; nil: it loads
	text  string // a part of the one-line message
}

const webService = "services:\n  web:\n    image: nginx\n"

func write(t *testing.T, p, s string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func composeWith(extra string) func(t *testing.T, dir string) ComposeOptions {
	return func(t *testing.T, dir string) ComposeOptions {
		p := write(t, filepath.Join(dir, "compose.yaml"), webService+extra)
		return ComposeOptions{Files: []string{p}, WorkDir: dir}
	}
}

func aliasBomb() string {
	var b strings.Builder
	b.WriteString("x-a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&b, "x-%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	return b.String()
}

// environment writes a 7 MiB file of one service with environment
// entries of the given length.
func environment(n int) func(t *testing.T, dir string) ComposeOptions {
	return func(t *testing.T, dir string) ComposeOptions {
		var b strings.Builder
		b.WriteString(webService + "    environment:\n")
		for i := 0; b.Len() < 7<<20-n; i++ {
			fmt.Fprintf(&b, "      - VAR_%06d=%s\n", i, strings.Repeat("v", n))
		}
		p := write(t, filepath.Join(dir, "compose.yaml"), b.String())
		return ComposeOptions{Files: []string{p}, WorkDir: dir}
	}
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{name: "dev-zero", setup: func(t *testing.T, dir string) ComposeOptions {
			return ComposeOptions{Files: []string{"/dev/zero"}, WorkDir: dir}
		}, want: ErrNotRegular, text: "/dev/zero: not a regular file (a character device)"},
		{name: "fifo", setup: func(t *testing.T, dir string) ComposeOptions {
			p := filepath.Join(dir, "compose.yaml")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return ComposeOptions{Files: []string{p}, WorkDir: dir}
		}, want: ErrNotRegular, text: "compose.yaml: not a regular file (a FIFO)"},
		{name: "sparse-3g", setup: func(t *testing.T, dir string) ComposeOptions {
			p := write(t, filepath.Join(dir, "compose.yaml"), webService)
			if err := os.Truncate(p, 3<<30); err != nil {
				t.Fatal(err)
			}
			return ComposeOptions{Files: []string{p}, WorkDir: dir}
		}, want: ErrTooLarge, text: "compose.yaml: larger than the size limit: more than 8 MiB (--max-file-size)"},
		{name: "size-10m-no-aliases", setup: func(t *testing.T, dir string) ComposeOptions {
			p := write(t, filepath.Join(dir, "compose.yaml"), webService+"x-big: |\n"+strings.Repeat("  "+strings.Repeat("a", 98)+"\n", 100_000))
			return ComposeOptions{Files: []string{p}, WorkDir: dir}
		}, want: ErrTooLarge, text: "more than 8 MiB"},
		{name: "env-file-dev-zero", setup: composeWith("    env_file: /dev/zero\n"),
			want: ErrNotRegular, text: "compose.yaml:4:5: services.web.env_file: /dev/zero: not a regular file (a character device)"},
		{name: "env-file-proc-environ", setup: composeWith("    env_file: /proc/self/environ\n"),
			want: ErrPseudoFile, text: "services.web.env_file: /proc/self/environ: not a file on disk: it is in /proc"},
		{name: "label-file-dev-zero", setup: composeWith("    label_file: /dev/zero\n"),
			want: ErrNotRegular, text: "services.web.label_file: /dev/zero: not a regular file"},
		{name: "env-file-flag-fifo", setup: func(t *testing.T, dir string) ComposeOptions {
			p := write(t, filepath.Join(dir, "compose.yaml"), webService)
			ef := filepath.Join(dir, "prod.env")
			if err := syscall.Mkfifo(ef, 0o644); err != nil {
				t.Fatal(err)
			}
			return ComposeOptions{Files: []string{p}, WorkDir: dir, EnvFiles: []string{ef}}
		}, want: ErrNotRegular, text: "prod.env: not a regular file (a FIFO)"},
		{name: "dotenv-fifo", setup: func(t *testing.T, dir string) ComposeOptions {
			p := write(t, filepath.Join(dir, "compose.yaml"), webService)
			if err := syscall.Mkfifo(filepath.Join(dir, ".env"), 0o644); err != nil {
				t.Fatal(err)
			}
			return ComposeOptions{Files: []string{p}, WorkDir: dir}
		}, want: ErrNotRegular, text: ".env: not a regular file (a FIFO)"},
		{name: "include-dev-zero", setup: composeWith("include:\n  - /dev/zero\n"),
			want: ErrNotRegular, text: "/dev/zero: not a regular file"},
		{name: "include-env-file-dev-zero", setup: func(t *testing.T, dir string) ComposeOptions {
			write(t, filepath.Join(dir, "sub", "compose.yaml"), "services:\n  db:\n    image: postgres\n")
			return composeWith("include:\n  - path: sub/compose.yaml\n    env_file: /dev/zero\n")(t, dir)
		}, want: ErrNotRegular, text: "/dev/zero: not a regular file"},
		{name: "extends-fifo", setup: func(t *testing.T, dir string) ComposeOptions {
			if err := syscall.Mkfifo(filepath.Join(dir, "base.yaml"), 0o644); err != nil {
				t.Fatal(err)
			}
			return composeWith("    extends:\n      file: base.yaml\n      service: app\n")(t, dir)
		}, want: ErrNotRegular, text: "base.yaml: not a regular file (a FIFO)"},
		{name: "extends-alias-bomb", setup: func(t *testing.T, dir string) ComposeOptions {
			write(t, filepath.Join(dir, "base.yaml"), "services:\n  app:\n    image: x\n"+aliasBomb())
			return composeWith("    extends:\n      file: base.yaml\n      service: app\n")(t, dir)
		}, want: ErrAliasBomb, text: "base.yaml: yaml aliases expand too far"},
		{name: "alias-bomb", setup: composeWith(aliasBomb()),
			want: ErrAliasBomb, text: "compose.yaml: yaml aliases expand too far: aliases expand to more than 200000 nodes"},
		{name: "deep-10000-flow", setup: composeWith("x-deep: " + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + "\n"),
			want: ErrTooDeep, text: "compose.yaml:4:"},
		{name: "deep-10000-block", setup: composeWith("x-deep:\n" + strings.Repeat("- ", 10_000) + "x\n"),
			want: ErrTooDeep, text: "yaml nested too deep: collections nest more than 100 levels"},
		{name: "nodes-7m-flow", setup: composeWith("x-many: [" + strings.Repeat("a,", 3_500_000) + "a]\n"),
			want: ErrTooManyNodes, text: "compose.yaml:4:1: too many yaml nodes: more than 200000 nodes"},
		{name: "just-under-limit-7m", setup: composeWith("x-blob: |\n" + strings.Repeat("  "+strings.Repeat("b", 98)+"\n", 73_000)),
			want: nil},
		{name: "just-under-limit-7m-environment", setup: environment(300), want: nil},
		{name: "nodes-7m-environment", setup: environment(8),
			want: ErrTooManyNodes, text: "too many yaml nodes: more than 200000 nodes"},
	}
}

// TestLoadHostile loads each hostile input in a process of its own and
// checks the answer, the process's peak memory and the CPU time it took
// (the machine is shared: wall time says little, beyond catching a hang,
// which a generous wall bound does).
func TestLoadHostile(t *testing.T) {
	if c := os.Getenv("UNHOST_LOAD_HOSTILE_CASE"); c != "" {
		runHostileChild(t, c, os.Getenv("UNHOST_LOAD_HOSTILE_DIR"))
		return
	}
	const maxRSS = 200 << 20
	const maxCPU = 10 * time.Second
	const hang = 90 * time.Second
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadHostile$", "-test.v")
			cmd.Env = append(os.Environ(), "UNHOST_LOAD_HOSTILE_CASE="+tc.name, "UNHOST_LOAD_HOSTILE_DIR="+dir)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("no answer within %v: it hangs", hang)
			}
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			// the child's own peak: ru_maxrss would count this process too
			rss, ok := peakrss.Parse(out)
			if !ok {
				t.Fatalf("the child reported no peak memory:\n%s", out)
			}
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			t.Logf("%s: %v CPU (%v wall), peak RSS %d MB", tc.name, cpu.Round(time.Millisecond), took.Round(time.Millisecond), rss>>20)
			if rss > maxRSS {
				t.Errorf("peak memory %d MB, want under %d MB", rss>>20, maxRSS>>20)
			}
			if cpu > maxCPU {
				t.Errorf("took %v of CPU, want under %v", cpu, maxCPU)
			}
		})
	}
}

func runHostileChild(t *testing.T, name, dir string) {
	for _, tc := range hostileCases() {
		if tc.name != name {
			continue
		}
		o := tc.setup(t, dir)
		_, err := LoadCompose(context.Background(), o)
		checkLoadError(t, err, tc.want, tc.text)
		peakrss.Report(os.Stdout)
		return
	}
	t.Fatalf("no case %q", name)
}

func checkLoadError(t *testing.T, err, want error, text string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("load failed: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("load succeeded, want %v", want)
	}
	msg := err.Error()
	if !errors.Is(err, want) {
		t.Errorf("error %q is not %v", msg, want)
	}
	if !strings.Contains(msg, text) {
		t.Errorf("error %q does not say %q", msg, text)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line", msg)
	}
}

// TestLoadRoot checks that with Root set, nothing outside it is read, by
// path or through a symlink, unless AllowOutside.
func TestLoadRoot(t *testing.T) {
	cases := []struct {
		name    string
		extra   string
		link    bool // env_file is a symlink in the root to a file outside
		outside bool // AllowOutside
		want    error
		text    string
	}{
		{name: "env_file by path", extra: "    env_file: OUTSIDE\n", want: ErrOutsideRoot,
			text: "compose.yaml:4:5: services.web.env_file: OUTSIDE: outside the root"},
		{name: "env_file through a symlink", extra: "    env_file: ./link.env\n", link: true, want: ErrOutsideRoot,
			text: "link.env: outside the root ROOT (through a symlink to OUTSIDE): refused without --allow-outside"},
		{name: "extends file by path", extra: "    extends:\n      file: OUTSIDE\n      service: app\n", want: ErrOutsideRoot,
			text: "OUTSIDE: outside the root"},
		{name: "env_file in /proc", extra: "    env_file: /proc/self/environ\n", want: ErrPseudoFile, text: "it is in /proc"},
		{name: "env_file in /dev", extra: "    env_file: /dev/null\n", want: ErrOutsideRoot, text: "/dev/null: outside the root"},
		{name: "allowed outside", extra: "    env_file: OUTSIDE\n", outside: true},
		{name: "allowed through a symlink", extra: "    env_file: ./link.env\n", link: true, outside: true},
		{name: "proc even when allowed", extra: "    env_file: /proc/self/environ\n", outside: true, want: ErrPseudoFile, text: "/proc/self/environ: not a file on disk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "repo")
			out := write(t, filepath.Join(base, "elsewhere", "base.yaml"), "services:\n  app:\n    image: x\n")
			extra := strings.ReplaceAll(tc.extra, "OUTSIDE", out)
			p := write(t, filepath.Join(root, "compose.yaml"), webService+extra)
			if tc.link {
				if err := os.Symlink(out, filepath.Join(root, "link.env")); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{p}, WorkDir: root, Root: root, AllowOutside: tc.outside})
			text := strings.ReplaceAll(strings.ReplaceAll(tc.text, "OUTSIDE", out), "ROOT", root)
			checkLoadError(t, err, tc.want, text)
		})
	}
}

// TestLoadMaxFileSize checks that the size limit can be changed and bounds
// env files as well as compose files.
func TestLoadMaxFileSize(t *testing.T) {
	dir := t.TempDir()
	p := write(t, filepath.Join(dir, "compose.yaml"), webService+"    env_file: big.env\n")
	write(t, filepath.Join(dir, "big.env"), "A="+strings.Repeat("a", 2000)+"\n")
	_, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{p}, WorkDir: dir, MaxFileSize: 1024})
	checkLoadError(t, err, ErrTooLarge, "compose.yaml:4:5: services.web.env_file: big.env: larger than the size limit: more than 1 KiB (--max-file-size)")
	_, err = LoadCompose(context.Background(), ComposeOptions{Files: []string{p}, WorkDir: dir, MaxFileSize: 10})
	checkLoadError(t, err, ErrTooLarge, "compose.yaml: larger than the size limit: more than 10 bytes")
	if _, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{p}, WorkDir: dir}); err != nil {
		t.Fatalf("default limit: %v", err)
	}
}

// TestLoadRootComposeFiles checks the compose files themselves and include
// targets against Root.
func TestLoadRootComposeFiles(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "repo")
	out := write(t, filepath.Join(base, "elsewhere", "compose.yaml"), webService)
	link := filepath.Join(root, "compose.yaml")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{link}, WorkDir: root, Root: root})
	checkLoadError(t, err, ErrOutsideRoot, "compose.yaml: outside the root "+root+" (through a symlink to "+out+")")
	if _, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{link}, WorkDir: root, Root: root, AllowOutside: true}); err != nil {
		t.Errorf("allowed outside: %v", err)
	}
	inc := write(t, filepath.Join(root, "inc.yaml"), "include:\n  - "+out+"\n")
	_, err = LoadCompose(context.Background(), ComposeOptions{Files: []string{inc}, WorkDir: root, Root: root})
	checkLoadError(t, err, ErrOutsideRoot, out+": outside the root")
}

// TestLoadPreStartFiles checks the env and label files of pre_start hooks.
func TestLoadPreStartFiles(t *testing.T) {
	dir := t.TempDir()
	p := write(t, filepath.Join(dir, "compose.yaml"), webService+"    pre_start:\n      - image: busybox\n        command: [\"true\"]\n        label_file: /dev/zero\n")
	_, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{p}, WorkDir: dir})
	checkLoadError(t, err, ErrNotRegular, "services.web.pre_start.label_file: /dev/zero: not a regular file")
}
