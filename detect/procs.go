package detect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procInfo is what one sample learned about one process.
type procInfo struct {
	pid    int
	comm   string
	netns  string   // target of /proc/PID/ns/net, e.g. "net:[4026531992]"
	inodes []uint64 // socket inodes of its open fds
}

// readProc reads a process's name, network namespace and socket inodes. A
// process that exits meanwhile gives fs.ErrNotExist.
func readProc(procRoot string, pid int) (procInfo, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	p := procInfo{pid: pid}
	ns, err := os.Readlink(filepath.Join(dir, "ns", "net"))
	if err != nil {
		return p, err
	}
	p.netns = ns
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		p.comm = strings.TrimSpace(string(b))
	}
	fdDir := filepath.Join(dir, "fd")
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return p, err
	}
	for _, e := range ents {
		if ino, ok := socketInode(filepath.Join(fdDir, e.Name())); ok {
			p.inodes = append(p.inodes, ino)
		}
	}
	return p, nil
}

// socketInode returns the socket inode an fd refers to. stat(2) on
// /proc/PID/fd/N follows the magic link and gives the socket's st_ino, which
// is cheaper than readlink; where stat fails (a fixture tree, where the link
// is a plain dangling symlink "socket:[N]"), the link text is parsed.
func socketInode(fdPath string) (uint64, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(fdPath, &st); err == nil {
		if st.Mode&syscall.S_IFMT == syscall.S_IFSOCK {
			return st.Ino, true
		}
		return 0, false
	}
	l, err := os.Readlink(fdPath)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(l, "socket:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return ino, err == nil
}

// cgroupProcsFile finds the cgroup.procs file of the cgroup that pid is in,
// from /proc/PID/cgroup, under cgroup v2 ("0::/path") or v1
// ("N:controller,...:/path"), and checks that the file lists pid (the path in
// /proc/PID/cgroup is relative to our cgroup namespace, so a found file that
// does not hold the process is not trusted).
func cgroupProcsFile(procRoot, cgroupRoot string, pid int) (string, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", err
	}
	var candidates []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, path := parts[1], parts[2]
		if ctrls == "" {
			// v2, or the unified hierarchy of a hybrid v1 setup.
			candidates = append(candidates, filepath.Join(cgroupRoot, path), filepath.Join(cgroupRoot, "unified", path))
			continue
		}
		candidates = append(candidates, filepath.Join(cgroupRoot, ctrls, path))
		for _, c := range strings.Split(ctrls, ",") {
			candidates = append(candidates, filepath.Join(cgroupRoot, strings.TrimPrefix(c, "name="), path))
		}
	}
	// Prefer v1 "pids"/"memory"-style controller directories: every process
	// is in them; the v2 root "0::/" of a hybrid setup lists everything.
	want := strconv.Itoa(pid)
	for _, dir := range candidates {
		f := filepath.Join(dir, "cgroup.procs")
		pids, err := readPidList(f)
		if err != nil {
			continue
		}
		if filepath.Clean(dir) == filepath.Clean(cgroupRoot) || filepath.Clean(dir) == filepath.Join(cgroupRoot, "unified") {
			continue // a root cgroup holds the whole machine, not the container
		}
		for _, p := range pids {
			if strconv.Itoa(p) == want {
				return f, nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup.procs listing pid %d under %s", pid, cgroupRoot)
}

func readPidList(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: bad pid %q", path, f)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// cgroupMentions reports whether /proc/PID/cgroup names the container id:
// Docker's cgroup paths end in the id (cgroupfs "/docker/ID", systemd
// "docker-ID.scope"). If it does not, the pid we see is not the container's
// process: the engine lives in another pid namespace.
func cgroupMentions(procRoot string, pid int, id string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return false, err
	}
	return bytes.Contains(data, []byte(id)), nil
}

// hidepid reports whether procRoot is mounted with hidepid=1/2 (or
// invisible/noaccess), which hides other users' processes.
func hidepid(procRoot string) bool {
	data, err := os.ReadFile(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || filepath.Clean(f[4]) != filepath.Clean(procRoot) {
			continue
		}
		for _, o := range strings.Split(f[len(f)-1], ",") {
			switch o {
			case "hidepid=1", "hidepid=2", "hidepid=noaccess", "hidepid=invisible", "hidepid=ptraceable":
				return true
			}
		}
	}
	return false
}

func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }
