package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// backupSuffix names the copy of a file that writeFileAtomic leaves beside
// it; further copies get ".1", ".2", ... appended.
const backupSuffix = ".unhost-backup"

// maxBackups bounds the search for a free backup name.
const maxBackups = 1000

// renameFile is os.Rename; tests replace it to make the final step fail.
var renameFile = os.Rename

// writeFileAtomic replaces the file at path with data: it resolves symlinks (edits
// the target, the link stays a link), writes a temp file in the target's folder,
// fsyncs, keeps the original's mode and owner/group, and renames over the target.
//
// Owner: the temp file is chowned to the original's uid and gid when they
// differ from its own. When that fails (not root, and not owner plus member
// of the group) the write is refused with an error instead of silently
// handing the file to the current user.
//
// When backup is true it first leaves a copy of the original beside the
// target, with the same mode (and owner where possible), named
// <target>.unhost-backup. An existing backup is reused only when its
// content is identical to the original; otherwise the first free name of
// <target>.unhost-backup.1, .2, ... is used, so no earlier backup is lost.
//
// It returns the backup path ("" when none). On error the original is
// untouched and nothing new is left behind (temp file and any backup this
// call created are removed); the error is one line and names the path.
// Hard links to the target are not kept: the target becomes a new inode.
func writeFileAtomic(path string, data []byte, backup bool) (backupPath string, err error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		if target != path {
			return "", fmt.Errorf("write %s: target %s is not a regular file", path, target)
		}
		return "", fmt.Errorf("write %s: not a regular file", path)
	}
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	uid, gid, hasOwner := fileOwner(fi)

	var bak string
	if backup {
		var created bool
		bak, created, err = makeBackup(target, mode, uid, gid, hasOwner)
		if err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		if created {
			defer func() {
				if err != nil {
					os.Remove(bak)
				}
			}()
		}
	}

	dir, base := filepath.Dir(target), filepath.Base(target)
	tmp, err := os.CreateTemp(dir, "."+base+".unhost-tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()

	if _, err = tmp.Write(data); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if hasOwner {
		if err = keepOwner(tmp, uid, gid); err != nil {
			return "", fmt.Errorf("write %s: keep owner %d:%d: %w", path, uid, gid, err)
		}
	}
	// Chmod after chown: chown clears setuid and setgid bits.
	if err = tmp.Chmod(mode); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err = renameFile(tmpName, target); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// Make the rename itself durable. The new content is already in
	// place, so a failure here is not reported as a failed write.
	syncDir(dir)
	return bak, nil
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

// makeBackup leaves a copy of target beside it and returns its path and
// whether this call created it (false when an identical backup existed).
func makeBackup(target string, mode fs.FileMode, uid, gid int, hasOwner bool) (string, bool, error) {
	orig, err := os.ReadFile(target)
	if err != nil {
		return "", false, err
	}
	for n := 0; n < maxBackups; n++ {
		name := target + backupSuffix
		if n > 0 {
			name += "." + strconv.Itoa(n)
		}
		if fi, err := os.Lstat(name); err == nil {
			if fi.Mode().IsRegular() && fi.Size() == int64(len(orig)) {
				if prev, err := os.ReadFile(name); err == nil && bytes.Equal(prev, orig) {
					return name, false, nil
				}
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("backup: %w", err)
		}
		created, err := writeNew(name, orig, mode, uid, gid, hasOwner)
		if errors.Is(err, fs.ErrExist) && !created {
			continue // someone else took the name meanwhile
		}
		if err != nil {
			return "", false, fmt.Errorf("backup: %w", err)
		}
		return name, true, nil
	}
	return "", false, fmt.Errorf("backup: %s through .%d all exist and differ", target+backupSuffix, maxBackups-1)
}

// writeNew creates name, failing if it exists, with data, mode and (best
// effort) owner, and syncs it. On error it removes what it created.
func writeNew(name string, data []byte, mode fs.FileMode, uid, gid int, hasOwner bool) (created bool, err error) {
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
	if hasOwner {
		// A backup owned by the current user is still useful: the
		// mode below keeps it no more readable than the original.
		_ = keepOwner(f, uid, gid)
	}
	if err = f.Chmod(mode); err != nil {
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
