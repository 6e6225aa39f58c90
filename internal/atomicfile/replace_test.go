package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestReplaceRefusesChangedFile edits the second of three files between
// the read and its rename, through the hook: the call fails naming it, the
// first file (already renamed) holds its input again, nothing else changed.
func TestReplaceRefusesChangedFile(t *testing.T) {
	dir := t.TempDir()
	var changes []Change
	for _, n := range []string{"a.yaml", "b.yaml", "c.yaml"} {
		p := filepath.Join(dir, n)
		writeTestFile(t, p, "old "+n+"\n", 0o640)
		changes = append(changes, Change{Path: p, Old: []byte("old " + n + "\n"), New: []byte("new " + n + "\n")})
	}
	b := changes[1].Path
	edited := "old b.yaml\nappended by someone else\n"
	var calls []string
	_, err := Replace(changes, Options{Backup: true, BeforeRename: func(p string) {
		calls = append(calls, filepath.Base(p))
		if p == b {
			writeTestFile(t, b, edited, 0o640)
		}
	}})
	checkOneLineError(t, err, b)
	if !strings.Contains(err.Error(), "changed since it was read") {
		t.Errorf("error %q does not say the file changed", err)
	}
	if !slices.Equal(calls, []string{"a.yaml", "b.yaml"}) {
		t.Errorf("hook called for %q", calls)
	}
	want := map[string]string{"a.yaml": "old a.yaml\n", "b.yaml": edited, "c.yaml": "old c.yaml\n"}
	for n, w := range want {
		if got := readTestFile(t, filepath.Join(dir, n)); got != w {
			t.Errorf("%s holds %q, want %q", n, got, w)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"a.yaml", "b.yaml", "c.yaml"}) {
		t.Errorf("folder holds %q: temp files or backups left", names)
	}
	if fi, err := os.Stat(changes[0].Path); err != nil || fi.Mode() != 0o640 {
		t.Errorf("restored a.yaml: %v, %v; want mode 0640", fi.Mode(), err)
	}
}

// TestReplaceRenameFailsHalfway fails the second rename: the first file is
// put back from the input held in memory.
func TestReplaceRenameFailsHalfway(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeTestFile(t, a, "old a\n", 0o600)
	writeTestFile(t, b, "old b\n", 0o644)
	boom := errors.New("disk on fire")
	orig := rename
	n := 0
	rename = func(from, to string) error {
		n++
		if n == 2 {
			return boom
		}
		return orig(from, to)
	}
	t.Cleanup(func() { rename = orig })
	_, err := Replace([]Change{{Path: a, Old: []byte("old a\n"), New: []byte("new a\n")},
		{Path: b, Old: []byte("old b\n"), New: []byte("new b\n")}}, Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the rename error", err)
	}
	checkOneLineError(t, err, b)
	if got := readTestFile(t, a); got != "old a\n" {
		t.Errorf("a holds %q after the failed batch", got)
	}
	if got := readTestFile(t, b); got != "old b\n" {
		t.Errorf("b holds %q after the failed batch", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"a.yaml", "b.yaml"}) {
		t.Errorf("folder holds %q", names)
	}
}

// TestReplaceBackupHoldsInput: the backup is the input that was read, and
// every temp file exists before the first rename.
func TestReplaceBackupHoldsInput(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeTestFile(t, a, "in a\n", 0o640)
	writeTestFile(t, b, "in b\n", 0o640)
	temps := 0
	w, err := Replace([]Change{{Path: a, Old: []byte("in a\n"), New: []byte("out a\n")},
		{Path: b, Old: []byte("in b\n"), New: []byte("out b\n")}}, Options{Backup: true,
		BeforeRename: func(p string) {
			if p != a {
				return
			}
			for _, n := range dirNames(t, dir) {
				if strings.Contains(n, ".unhost-tmp-") {
					temps++
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if temps != 2 {
		t.Errorf("%d temp files before the first rename, want 2", temps)
	}
	for i, p := range []string{a, b} {
		if w[i].Backup != p+BackupSuffix {
			t.Errorf("backup %q", w[i].Backup)
		}
		if got := readTestFile(t, w[i].Backup); got != "in "+filepath.Base(p)[:1]+"\n" {
			t.Errorf("backup of %s holds %q", p, got)
		}
	}
}

func TestReplaceRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "repo")
	outside := filepath.Join(base, "elsewhere")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret.yaml")
	writeTestFile(t, secret, "x: 1\n", 0o600)
	link := filepath.Join(root, "compose.yaml")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(root, "inner.yaml")
	writeTestFile(t, inner, "x: 1\n", 0o644)
	innerLink := filepath.Join(root, "link.yaml")
	if err := os.Symlink("inner.yaml", innerLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		ok   bool
	}{{link, false}, {secret, false}, {inner, true}, {innerLink, true}} {
		_, err := Replace([]Change{{Path: tc.path, Old: []byte("x: 1\n"), New: []byte("x: 2\n")}}, Options{Roots: []string{root}})
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.path, err)
		}
		if !tc.ok {
			checkOneLineError(t, err, tc.path)
			if err != nil && !strings.Contains(err.Error(), "outside") {
				t.Errorf("%s: error %q does not say outside", tc.path, err)
			}
		}
		if tc.ok {
			writeTestFile(t, inner, "x: 1\n", 0o644)
		}
	}
	if got := readTestFile(t, secret); got != "x: 1\n" {
		t.Errorf("the file outside the root was written: %q", got)
	}
	// Without a root the link is followed, as an operator expects.
	if _, err := Replace([]Change{{Path: link, Old: []byte("x: 1\n"), New: []byte("x: 2\n")}}, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := readTestFile(t, secret); got != "x: 2\n" {
		t.Errorf("without a root: %q", got)
	}
}

func TestReplaceSameFileTwice(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	writeTestFile(t, a, "a\n", 0o644)
	l := filepath.Join(dir, "l.yaml")
	if err := os.Symlink("a.yaml", l); err != nil {
		t.Fatal(err)
	}
	_, err := Replace([]Change{{Path: a, Old: []byte("a\n"), New: []byte("b\n")}, {Path: l, Old: []byte("a\n"), New: []byte("c\n")}}, Options{})
	checkOneLineError(t, err, l)
	if got := readTestFile(t, a); got != "a\n" {
		t.Errorf("a holds %q", got)
	}
}

func TestCreateModes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name     string
		existing fs.FileMode // 0: no file
		perm     fs.FileMode
		want     fs.FileMode
	}{
		{"new file", 0, 0o644, 0o644},
		{"new file keeps a source's 0640", 0, 0o640, 0o640},
		{"existing 0600 stays 0600", 0o600, 0o644, 0o600},
		// -o of a 0640 source over a world-readable file: not readable by all
		{"never wider than asked", 0o644, 0o640, 0o640},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.existing != 0 {
				writeTestFile(t, p, "old\n", tc.existing)
			}
			if err := WriteFile(p, []byte("new\n"), tc.perm); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tc.want {
				t.Errorf("mode %v, want %v", fi.Mode(), tc.want)
			}
			if got := readTestFile(t, p); got != "new\n" {
				t.Errorf("content %q", got)
			}
		})
	}
}

func TestCreateErrorsAndAbort(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "report.json")
	_, err := Create(missing, 0o644)
	checkOneLineError(t, err, missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err %v is not ErrNotExist", err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	_, err = Create(dangling, 0o644)
	checkOneLineError(t, err, dangling)

	p := filepath.Join(dir, "report.json")
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	f.Abort()
	if names := dirNames(t, dir); !slices.Equal(names, []string{"dangling"}) {
		t.Errorf("after Abort the folder holds %q", names)
	}
}

// A file swapped for a FIFO between read and rename is refused without
// being opened (opening a FIFO for reading would hang).
func TestReplaceRefusesSwappedFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yaml")
	writeTestFile(t, p, "x: 1\n", 0o644)
	_, err := Replace([]Change{{Path: p, Old: []byte("x: 1\n"), New: []byte("x: 2\n")}}, Options{BeforeRename: func(string) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}})
	checkOneLineError(t, err, p)
	if !strings.Contains(err.Error(), "changed since it was read") {
		t.Errorf("error %q", err)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
}
