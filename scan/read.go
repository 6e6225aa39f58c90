package scan

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/unhost/unhost/load"
)

// Bounds limit what a scan reads: only regular files, each read no further
// than MaxFileSize bytes, and, unless AllowOutside, only files that stay
// inside the scanned root once symlinks are followed (a repository may hold
// a symlink to /proc or /dev).
type Bounds struct {
	// MaxFileSize bounds every file scan reads; 0 means load.DefaultMaxFileSize.
	MaxFileSize  int64
	AllowOutside bool
}

func (b Bounds) max() int64 {
	if b.MaxFileSize > 0 {
		return b.MaxFileSize
	}
	return load.DefaultMaxFileSize
}

// skipError says why a file was not read; it becomes a skipped finding.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

func skipped(format string, a ...any) error { return &skipError{fmt.Sprintf(format, a...)} }

// within reports whether p lies in root; both are absolute and resolved.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolveRoot returns a folder's absolute path with symlinks followed.
func resolveRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// fileKind names what a file that is not regular is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// read reads the file at abs, which lies in root (resolved) as found; it
// fails with a *skipError when bounds forbid it. Opening does not block on
// a FIFO (O_NONBLOCK), the type is checked on the open file (no window
// between check and read), and the read itself stops after the limit, so
// a file that lies about its size cannot make it read more.
func (b Bounds) read(abs, root string) ([]byte, error) {
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, skipped("cannot be read: %v", unwrapPath(err))
	}
	if root != "" && !b.AllowOutside && !within(root, resolved) {
		return nil, skipped("leads out of the scanned root, to %s (--allow-outside reads it)", resolved)
	}
	// a device is never opened: opening some has effects of its own
	if fi, err := os.Stat(resolved); err != nil {
		return nil, skipped("cannot be read: %v", unwrapPath(err))
	} else if !fi.Mode().IsRegular() {
		return nil, skipped("not a regular file: %s", fileKind(fi.Mode()))
	}
	f, err := os.OpenFile(resolved, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, skipped("cannot be read: %v", unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, skipped("cannot be read: %v", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, skipped("not a regular file: %s", fileKind(fi.Mode()))
	}
	limit := b.max()
	if fi.Size() > limit {
		return nil, skipped("larger than --max-file-size: %d bytes, the limit is %d", fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, skipped("cannot be read: %v", unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return nil, skipped("larger than --max-file-size: more than %d bytes", limit)
	}
	return data, nil
}
