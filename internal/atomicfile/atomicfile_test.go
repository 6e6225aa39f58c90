package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func writeTestFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod, not WriteFile's mode: that one is filtered by the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceOne replaces one file with data, reading what it holds first as
// a caller does; a file that cannot be read is passed with no old content.
func replaceOne(t *testing.T, path string, data []byte, backup bool) (string, error) {
	t.Helper()
	old, _ := os.ReadFile(path)
	w, err := Replace([]Change{{Path: path, Old: old, New: data}}, Options{Backup: backup})
	if err != nil {
		return "", err
	}
	if len(w) != 1 || w[0].Path != path {
		t.Fatalf("written %+v, want %s", w, path)
	}
	return w[0].Backup, nil
}

func checkOneLineError(t *testing.T, err error, path string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, path) || msg[:1] != strings.ToLower(msg[:1]) {
		t.Errorf("error %q: want one lower-case line naming %s", msg, path)
	}
}

func TestReplaceModes(t *testing.T) {
	for _, mode := range []fs.FileMode{0o600, 0o640, 0o644, 0o755, 0o444, fs.ModeSetuid | 0o750, fs.ModeSetgid | 0o750} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "compose.yaml")
			writeTestFile(t, path, "old\n", mode)
			bp, err := replaceOne(t, path, []byte("new\n"), false)
			if err != nil {
				t.Fatal(err)
			}
			if bp != "" {
				t.Errorf("backup path %q without backup", bp)
			}
			if got := readTestFile(t, path); got != "new\n" {
				t.Errorf("content %q", got)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != mode {
				t.Errorf("mode %v, want %v", fi.Mode(), mode)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"compose.yaml"}) {
				t.Errorf("folder holds %q, want only compose.yaml", names)
			}
		})
	}
}

func TestReplaceEmptyAndLarge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeTestFile(t, path, "old\n", 0o644)
	for _, data := range []string{"", strings.Repeat("x: 1\n", 200000)} {
		if _, err := replaceOne(t, path, []byte(data), false); err != nil {
			t.Fatal(err)
		}
		if got := readTestFile(t, path); got != data {
			t.Fatalf("content has %d bytes, want %d", len(got), len(data))
		}
	}
}

func TestReplaceSymlink(t *testing.T) {
	root := t.TempDir()
	realDir := filepath.Join(root, "real")
	linkDir := filepath.Join(root, "links")
	for _, d := range []string{realDir, linkDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(realDir, "compose.yaml")
	writeTestFile(t, target, "old\n", 0o640)
	// links/compose.yaml -> ../real/compose.yaml (relative), and
	// links/chain.yaml -> links/compose.yaml (absolute): a chain.
	link := filepath.Join(linkDir, "compose.yaml")
	if err := os.Symlink(filepath.Join("..", "real", "compose.yaml"), link); err != nil {
		t.Fatal(err)
	}
	chain := filepath.Join(linkDir, "chain.yaml")
	if err := os.Symlink(link, chain); err != nil {
		t.Fatal(err)
	}

	for i, p := range []string{link, chain} {
		data := []string{"via link\n", "via chain\n"}[i]
		bp, err := replaceOne(t, p, []byte(data), i == 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := readTestFile(t, target); got != data {
			t.Errorf("target content %q, want %q", got, data)
		}
		if i == 0 && bp != target+BackupSuffix {
			t.Errorf("backup at %q, want beside the target %q", bp, target+BackupSuffix)
		}
	}
	if dest, err := os.Readlink(link); err != nil || dest != filepath.Join("..", "real", "compose.yaml") {
		t.Errorf("link now %q, %v", dest, err)
	}
	if dest, err := os.Readlink(chain); err != nil || dest != link {
		t.Errorf("chain now %q, %v", dest, err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o640 {
		t.Errorf("target mode %v, want 0640", fi.Mode())
	}
	if names := dirNames(t, linkDir); !slices.Equal(names, []string{"chain.yaml", "compose.yaml"}) {
		t.Errorf("link folder holds %q", names)
	}
	if names := dirNames(t, realDir); !slices.Equal(names, []string{"compose.yaml", "compose.yaml" + BackupSuffix}) {
		t.Errorf("target folder holds %q", names)
	}
}

func TestReplaceRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeTestFile(t, "compose.yaml", "old\n", 0o644)
	bp, err := replaceOne(t, "compose.yaml", []byte("new\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if bp != "compose.yaml"+BackupSuffix {
		t.Errorf("backup path %q", bp)
	}
	if got := readTestFile(t, "compose.yaml"); got != "new\n" {
		t.Errorf("content %q", got)
	}
	if names := dirNames(t, "."); !slices.Equal(names, []string{"compose.yaml", "compose.yaml" + BackupSuffix}) {
		t.Errorf("folder holds %q", names)
	}
}

func TestReplaceBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "compose.yaml")
	b0 := path + BackupSuffix
	writeTestFile(t, path, "v1\n", 0o640)

	steps := []struct {
		name       string
		setup      func()
		data       string
		wantBackup string
		wantFiles  map[string]string
	}{
		{name: "first backup", data: "v2\n", wantBackup: b0,
			wantFiles: map[string]string{path: "v2\n", b0: "v1\n"}},
		// The backup holds v1, the file v2: keep v1, take the next name.
		{name: "differing backup kept", data: "v3\n", wantBackup: b0 + ".1",
			wantFiles: map[string]string{path: "v3\n", b0: "v1\n", b0 + ".1": "v2\n"}},
		{name: "next free number", data: "v4\n", wantBackup: b0 + ".2",
			wantFiles: map[string]string{path: "v4\n", b0: "v1\n", b0 + ".1": "v2\n", b0 + ".2": "v3\n"}},
		// Writing the same content twice: the backup that matches the
		// original is reused, no new file.
		{name: "identical backup reused",
			setup: func() { writeTestFile(t, b0, "v4\n", 0o640) },
			data:  "v5\n", wantBackup: b0,
			wantFiles: map[string]string{path: "v5\n", b0: "v4\n", b0 + ".1": "v2\n", b0 + ".2": "v3\n"}},
		// A name taken by something that is not a regular file is skipped.
		{name: "directory in the way",
			setup: func() {
				if err := os.Mkdir(b0+".3", 0o755); err != nil {
					t.Fatal(err)
				}
			},
			data: "v6\n", wantBackup: b0 + ".4",
			wantFiles: map[string]string{path: "v6\n", b0 + ".4": "v5\n"}},
	}
	for _, s := range steps {
		if s.setup != nil {
			s.setup()
		}
		bp, err := replaceOne(t, path, []byte(s.data), true)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if bp != s.wantBackup {
			t.Errorf("%s: backup %q, want %q", s.name, bp, s.wantBackup)
		}
		for f, want := range s.wantFiles {
			if got := readTestFile(t, f); got != want {
				t.Errorf("%s: %s holds %q, want %q", s.name, filepath.Base(f), got, want)
			}
		}
		fi, err := os.Stat(bp)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o640 {
			t.Errorf("%s: backup mode %v, want 0640", s.name, fi.Mode())
		}
	}
	for _, n := range dirNames(t, dir) {
		if strings.Contains(n, "tmp") {
			t.Errorf("temp file %s left behind", n)
		}
	}
}

func TestReplaceOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "compose.yaml")
	writeTestFile(t, path, "old\n", 0o640)
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	bp, err := replaceOne(t, path, []byte("new\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, bp} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s owned by %d:%d, want 1234:5678", filepath.Base(p), st.Uid, st.Gid)
		}
		if fi.Mode() != 0o640 {
			t.Errorf("%s mode %v, want 0640", filepath.Base(p), fi.Mode())
		}
	}
}

// TestWriteFileAtomicRenameFails makes the last step fail and checks that
// the original, the folder and any earlier backup are as they were.
func TestReplaceRenameFails(t *testing.T) {
	boom := errors.New("rename refused")
	orig := rename
	rename = func(string, string) error { return boom }
	t.Cleanup(func() { rename = orig })

	for _, existing := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "compose.yaml")
		writeTestFile(t, path, "old\n", 0o640)
		want := []string{"compose.yaml"}
		if existing {
			// An identical backup from an earlier run must survive.
			writeTestFile(t, path+BackupSuffix, "old\n", 0o640)
			want = append(want, "compose.yaml"+BackupSuffix)
		}
		bp, err := replaceOne(t, path, []byte("new\n"), true)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the rename error wrapped", err)
		}
		checkOneLineError(t, err, path)
		if bp != "" {
			t.Errorf("backup path %q after failure", bp)
		}
		if got := readTestFile(t, path); got != "old\n" {
			t.Errorf("original changed to %q", got)
		}
		if names := dirNames(t, dir); !slices.Equal(names, want) {
			t.Errorf("existing backup %v: folder holds %q, want %q", existing, names, want)
		}
	}
}

func TestReplaceErrors(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.yaml")
	if err := os.Symlink(filepath.Join(dir, "nowhere.yaml"), dangling); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full.yaml")
	writeTestFile(t, full, "old\n", 0o644)
	for i := 0; i < maxBackups; i++ {
		name := full + BackupSuffix
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		writeTestFile(t, name, "other\n", 0o644)
	}

	cases := []struct {
		name   string
		path   string
		backup bool
		is     error
	}{
		{name: "missing file", path: filepath.Join(dir, "missing.yaml"), is: fs.ErrNotExist},
		{name: "directory", path: sub},
		{name: "dangling symlink", path: dangling, is: fs.ErrNotExist},
		{name: "missing folder", path: filepath.Join(dir, "no", "compose.yaml"), is: fs.ErrNotExist},
		{name: "no free backup name", path: full, backup: true},
	}
	before := dirNames(t, dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bp, err := replaceOne(t, tc.path, []byte("new\n"), tc.backup)
			checkOneLineError(t, err, tc.path)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if bp != "" {
				t.Errorf("backup path %q after failure", bp)
			}
		})
	}
	if after := dirNames(t, dir); !slices.Equal(before, after) {
		t.Errorf("folder changed from %q to %q", before, after)
	}
	if got := readTestFile(t, full); got != "old\n" {
		t.Errorf("full.yaml changed to %q", got)
	}
	if names := dirNames(t, sub); len(names) != 0 {
		t.Errorf("directory target gained %q", names)
	}
}
