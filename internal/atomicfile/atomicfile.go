// Package atomicfile writes every file unhost writes: through a temporary
// file beside the target that is synced and renamed over it, so a reader
// (or a crash) never sees half a file.
//
// Create and WriteFile write one file whose earlier content, if any, was
// not read (reports, inventories, -o). Replace rewrites files that were read
// (--write): it refuses a file that changed since it was read, writes every
// temporary file before it renames any, and on any error puts back what it
// had already renamed, so a failed call leaves nothing half-migrated.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// BackupSuffix names the copy of a file that Replace leaves beside it;
// further copies get ".1", ".2", ... appended.
const BackupSuffix = ".unhost-backup"

// maxBackups bounds the search for a free backup name.
const maxBackups = 1000

// rename is os.Rename; tests replace it to make the final step fail.
var rename = os.Rename

// modeBits are the bits of a mode a rewritten file keeps.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// File is a file being written. Writes go to a temporary file in the
// target's folder; Commit renames it over the target, Abort removes it.
type File struct {
	path   string // as the caller named it, for messages
	target string // path with symlinks resolved
	tmp    *os.File
	closed bool
}

// Create starts writing path. A symlink is followed: its target is
// replaced and the link stays a link. A new file gets mode perm; an
// existing one keeps its owner and gets the bits both its mode and perm
// allow, so a rewrite never makes a file more readable than it was or than
// the caller asked. The folder must exist: a bad path fails here, before
// the caller does any work.
func Create(path string, perm fs.FileMode) (*File, error) {
	target, fi, err := resolve(path)
	if err != nil {
		return nil, err
	}
	if fi == nil {
		return open(path, target, perm&modeBits, nil)
	}
	return open(path, target, fi.Mode()&modeBits&(perm|^fs.ModePerm), fi)
}

// WriteFile writes data to path through Create.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.tmp.Write(p)
	if err != nil {
		return n, f.errorf(err)
	}
	return n, nil
}

// Commit makes the written content the file's: sync, close, rename.
func (f *File) Commit() error {
	if err := f.finish(); err != nil {
		return err
	}
	if err := rename(f.tmp.Name(), f.target); err != nil {
		return f.errorf(err)
	}
	// Make the rename itself durable. The new content is already in
	// place, so a failure here is not reported as a failed write.
	syncDir(filepath.Dir(f.target))
	f.tmp = nil
	return nil
}

// Abort drops the temporary file. It does nothing after Commit, so
// `defer f.Abort()` is always right.
func (f *File) Abort() {
	if f == nil || f.tmp == nil {
		return
	}
	if !f.closed {
		f.tmp.Close()
	}
	os.Remove(f.tmp.Name())
	f.tmp = nil
}

func (f *File) finish() error {
	if err := f.tmp.Sync(); err != nil {
		return f.errorf(err)
	}
	f.closed = true
	if err := f.tmp.Close(); err != nil {
		return f.errorf(err)
	}
	return nil
}

func (f *File) errorf(err error) error { return fmt.Errorf("write %s: %w", f.path, err) }

// resolve follows symlinks from path to a regular file. When nothing is
// there, fi is nil and target is path; a dangling link is an error.
func resolve(path string) (target string, fi fs.FileInfo, err error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return path, nil, nil
	}
	target, err = filepath.EvalSymlinks(path)
	if err != nil {
		return "", nil, fmt.Errorf("write %s: %w", path, err)
	}
	fi, err = os.Stat(target)
	if err != nil {
		return "", nil, fmt.Errorf("write %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		if target != path {
			return "", nil, fmt.Errorf("write %s: target %s is not a regular file", path, target)
		}
		return "", nil, fmt.Errorf("write %s: not a regular file", path)
	}
	return target, fi, nil
}

// open creates the temporary file for target with mode, and the owner of
// fi when fi is not nil. A file owned by someone else keeps its owner, or
// the write is refused: it is never silently handed to the current user.
func open(path, target string, mode fs.FileMode, fi fs.FileInfo) (*File, error) {
	dir, base := filepath.Dir(target), filepath.Base(target)
	tmp, err := os.CreateTemp(dir, "."+base+".unhost-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	f := &File{path: path, target: target, tmp: tmp}
	if fi != nil {
		if uid, gid, ok := fileOwner(fi); ok {
			if err := keepOwner(tmp, uid, gid); err != nil {
				f.Abort()
				return nil, fmt.Errorf("write %s: keep owner %d:%d: %w", path, uid, gid, err)
			}
		}
	}
	// Chmod after chown: chown clears setuid and setgid bits. Chmod, not
	// the umask-filtered mode of open: a kept mode is kept exactly.
	if err := tmp.Chmod(mode); err != nil {
		f.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return f, nil
}

// Change is one file that Replace rewrites.
type Change struct {
	Path string // as shown to the user
	Old  []byte // the content that was read: the file must still hold it
	New  []byte
}

// Options are Replace's settings.
type Options struct {
	// Backup leaves a copy of Old beside each file (see Replace).
	Backup bool
	// Roots, when not empty, confine the writes: a file whose path, or
	// whose symlinks, lead outside every one of Roots is refused (bot use:
	// the repository is untrusted, and a link in it must not make unhost
	// write elsewhere).
	Roots []string
	// BeforeRename, when set, is called with each file's path just before
	// its content is compared with Old and it is replaced. Tests use it to
	// change a file at exactly that moment.
	BeforeRename func(path string)
}

// Written is one file Replace wrote.
type Written struct {
	Path   string
	Backup string // "" without a backup
}

// pending is one change on its way: its temp file is written.
type pending struct {
	c      Change
	file   *File
	fi     fs.FileInfo
	backup string
	made   bool // this call created the backup
	done   bool // renamed over the target
}

// Replace rewrites the files of changes, all or none:
//
//   - every temp file is written and synced before any file is renamed;
//   - just before each rename the file is read again, and if it no longer
//     holds Old (someone edited it meanwhile) the call fails, naming it;
//   - when a rename or a comparison fails, the files already renamed get
//     their Old content back (from memory, not from a backup), and temp
//     files and backups this call created are removed.
//
// Symlinks are followed (the target is written, the link stays) unless
// they lead outside Roots. Each file keeps its mode and owner; a file
// whose owner cannot be kept is refused.
//
// With Backup, a copy of Old (the input that was read, not whatever the
// file holds now) is left beside each target as <target>.unhost-backup.
// An existing backup is reused only when it holds exactly Old; otherwise
// the first free name of <target>.unhost-backup.1, .2, ... is used, so no
// earlier backup is lost.
//
// Hard links to a target are not kept: the target becomes a new inode.
func Replace(changes []Change, o Options) (written []Written, err error) {
	var ps []*pending
	defer func() {
		if err == nil {
			return
		}
		for _, p := range ps {
			p.file.Abort()
			if p.made {
				os.Remove(p.backup)
			}
		}
	}()
	seen := map[string]string{}
	for _, c := range changes {
		target, fi, err := resolve(c.Path)
		if err != nil {
			return nil, err
		}
		if fi == nil {
			return nil, fmt.Errorf("write %s: %w", c.Path, fs.ErrNotExist)
		}
		if len(o.Roots) > 0 {
			if err := inside(o.Roots, c.Path, target); err != nil {
				return nil, err
			}
		}
		if prev, ok := seen[target]; ok {
			return nil, fmt.Errorf("write %s: the same file as %s", c.Path, prev)
		}
		seen[target] = c.Path
		f, err := open(c.Path, target, fi.Mode()&modeBits, fi)
		if err != nil {
			return nil, err
		}
		p := &pending{c: c, file: f, fi: fi}
		ps = append(ps, p)
		if _, err := f.Write(c.New); err != nil {
			return nil, err
		}
		if err := f.finish(); err != nil {
			return nil, err
		}
	}
	if o.Backup {
		for _, p := range ps {
			p.backup, p.made, err = makeBackup(p.file.target, p.c.Old, p.fi)
			if err != nil {
				return nil, fmt.Errorf("write %s: %w", p.c.Path, err)
			}
		}
	}
	for i, p := range ps {
		if o.BeforeRename != nil {
			o.BeforeRename(p.c.Path)
		}
		err := unchanged(p)
		if err == nil {
			if err = rename(p.file.tmp.Name(), p.file.target); err != nil {
				err = p.file.errorf(err)
			}
		}
		if err != nil {
			return nil, rollback(ps[:i], err)
		}
		p.done = true
		p.file.tmp = nil
	}
	dirs := map[string]bool{}
	for _, p := range ps {
		if d := filepath.Dir(p.file.target); !dirs[d] {
			dirs[d] = true
			syncDir(d)
		}
		written = append(written, Written{Path: p.c.Path, Backup: p.backup})
	}
	return written, nil
}

// unchanged checks that p's file still holds what was read. It reads at
// most one byte more than that, and only from a regular file: a file
// swapped for a FIFO or a huge one meanwhile is refused, not read.
func unchanged(p *pending) error {
	changed := fmt.Errorf("write %s: the file changed since it was read: not replaced, nothing written (run again on the new content)", p.c.Path)
	fi, err := os.Lstat(p.file.target)
	if err != nil {
		return p.file.errorf(err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(p.c.Old)) {
		return changed
	}
	f, err := os.Open(p.file.target)
	if err != nil {
		return p.file.errorf(err)
	}
	defer f.Close()
	cur, err := io.ReadAll(io.LimitReader(f, int64(len(p.c.Old))+1))
	if err != nil {
		return p.file.errorf(err)
	}
	if !bytes.Equal(cur, p.c.Old) {
		return changed
	}
	return nil
}

// rollback puts Old back into the files already renamed and returns cause,
// with any file it could not restore named after it.
func rollback(done []*pending, cause error) error {
	var lost []string
	for i := len(done) - 1; i >= 0; i-- {
		p := done[i]
		f, err := open(p.c.Path, p.file.target, p.fi.Mode()&modeBits, p.fi)
		if err == nil {
			if _, err = f.Write(p.c.Old); err == nil {
				err = f.Commit()
			}
			f.Abort()
		}
		if err != nil {
			lost = append(lost, p.c.Path)
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%w; and could not put back %s: restore from its backup", cause, strings.Join(lost, ", "))
	}
	return cause
}

// inside refuses path when it, or its resolved target, is outside every
// one of roots.
func inside(roots []string, path, target string) error {
	absPath, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	absTarget, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	pathIn := false
	for _, root := range roots {
		absRoot, err := filepath.Abs(root)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		realRoot, err := filepath.EvalSymlinks(absRoot)
		if err != nil {
			return fmt.Errorf("write %s: root %s: %w", path, root, err)
		}
		if within(absRoot, absPath) || within(realRoot, absPath) {
			pathIn = true
			if within(realRoot, absTarget) {
				return nil
			}
		}
	}
	if !pathIn {
		return fmt.Errorf("write %s: outside %s: refused (--allow-outside to permit)", path, strings.Join(roots, ", "))
	}
	return fmt.Errorf("write %s: a symlink leads outside %s, to %s: refused (--allow-outside to permit)", path, strings.Join(roots, ", "), target)
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// fileOwner returns the uid and gid of fi where the platform has them.
func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// keepOwner gives f the owner uid:gid unless it already has it.
func keepOwner(f *os.File, uid, gid int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if u, g, ok := fileOwner(fi); ok && u == uid && g == gid {
		return nil
	}
	return f.Chown(uid, gid)
}

// makeBackup leaves data (the original) beside target with target's mode
// (and owner where possible). It returns the backup's path and whether this
// call created it (false when an identical backup existed).
func makeBackup(target string, data []byte, fi fs.FileInfo) (string, bool, error) {
	for n := 0; n < maxBackups; n++ {
		name := target + BackupSuffix
		if n > 0 {
			name += "." + strconv.Itoa(n)
		}
		if bfi, err := os.Lstat(name); err == nil {
			if bfi.Mode().IsRegular() && bfi.Size() == int64(len(data)) {
				if prev, err := os.ReadFile(name); err == nil && bytes.Equal(prev, data) {
					return name, false, nil
				}
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("backup: %w", err)
		}
		created, err := writeNew(name, data, fi)
		if errors.Is(err, fs.ErrExist) && !created {
			continue // someone else took the name meanwhile
		}
		if err != nil {
			return "", false, fmt.Errorf("backup: %w", err)
		}
		return name, true, nil
	}
	return "", false, fmt.Errorf("backup: %s through .%d all exist and differ", target+BackupSuffix, maxBackups-1)
}

// writeNew creates name, failing if it exists, with data, fi's mode and
// (best effort) owner, and syncs it. On error it removes what it created.
func writeNew(name string, data []byte, fi fs.FileInfo) (created bool, err error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return true, err
	}
	if uid, gid, ok := fileOwner(fi); ok {
		// A backup owned by the current user is still useful: the
		// mode below keeps it no more readable than the original.
		_ = keepOwner(f, uid, gid)
	}
	if err = f.Chmod(fi.Mode() & modeBits); err != nil {
		return true, err
	}
	if err = f.Sync(); err != nil {
		return true, err
	}
	return true, f.Close()
}

// syncDir fsyncs a folder so a rename in it survives a crash; best effort.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
