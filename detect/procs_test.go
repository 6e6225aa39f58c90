package detect

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCgroupProcsFile covers cgroup v2 (systemd driver), v1 with a combined
// controller directory, and a path that does not list the pid.
func TestCgroupProcsFile(t *testing.T) {
	for name, tc := range map[string]struct {
		cgroup string            // /proc/7/cgroup
		files  map[string]string // under the cgroup root
		want   string            // relative to the cgroup root, "" for an error
	}{
		"v2 systemd": {
			cgroup: "0::/system.slice/docker-abc.scope\n",
			files:  map[string]string{"system.slice/docker-abc.scope/cgroup.procs": "7\n8\n", "cgroup.procs": "1\n7\n"},
			want:   "system.slice/docker-abc.scope/cgroup.procs",
		},
		"v1 combined controllers": {
			cgroup: "2:cpu,cpuacct:/docker/abc\n0::/\n",
			files:  map[string]string{"cpu,cpuacct/docker/abc/cgroup.procs": "7\n", "unified/cgroup.procs": "7\n"},
			want:   "cpu,cpuacct/docker/abc/cgroup.procs",
		},
		"v1 named hierarchy": {
			cgroup: "1:name=systemd:/docker/abc\n",
			files:  map[string]string{"systemd/docker/abc/cgroup.procs": "7\n"},
			want:   "systemd/docker/abc/cgroup.procs",
		},
		"pid not listed": {
			cgroup: "0::/docker/abc\n",
			files:  map[string]string{"docker/abc/cgroup.procs": "8\n"},
		},
		"only the root": {
			cgroup: "0::/\n",
			files:  map[string]string{"cgroup.procs": "7\n"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			proc, cg := filepath.Join(dir, "proc"), filepath.Join(dir, "cgroup")
			write(t, filepath.Join(proc, "7", "cgroup"), tc.cgroup)
			for p, data := range tc.files {
				write(t, filepath.Join(cg, p), data)
			}
			got, err := cgroupProcsFile(proc, cg, 7)
			if tc.want == "" {
				if err == nil {
					t.Errorf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != filepath.Join(cg, tc.want) {
				t.Errorf("got %q, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestHidepid(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "self", "mountinfo"), "22 27 0:21 / "+dir+" rw,relatime - proc proc rw,hidepid=2\n")
	if !hidepid(dir) {
		t.Error("hidepid=2 not seen")
	}
	write(t, filepath.Join(dir, "self", "mountinfo"), "22 27 0:21 / "+dir+" rw,relatime - proc proc rw\n")
	if hidepid(dir) {
		t.Error("hidepid seen where there is none")
	}
}
