package verify

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Killing only the docker CLI leaves its compose plugin child running: Run
// must end the whole process group when its context ends.
func TestComposeRunKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The shell stands for the docker CLI, sleep for the plugin child.
	c := &Compose{Argv: []string{"sh", "-c", `sleep 300 & echo $! > "$0"; wait`, pidFile}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Run(ctx, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("Run = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s after its deadline", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil && !zombie(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d of the compose command still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie tells whether pid has exited but is not reaped yet (its parent,
// the shell, was killed too; init reaps it soon).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

func TestFindComposeRefusesV1(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose"), []byte("#!/bin/sh\necho 1.29.2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	noPlugins(t)
	_, err := FindCompose(context.Background())
	if err == nil || !strings.Contains(err.Error(), "found only docker-compose 1.29.2") {
		t.Errorf("FindCompose = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose"), []byte("#!/bin/sh\necho 2.40.3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := FindCompose(context.Background())
	if err != nil || c.Version != "2.40.3" || c.Argv[0] != "docker-compose" {
		t.Errorf("FindCompose with a standalone v2 = %+v, %v", c, err)
	}
}

// noPlugins hides the machine's docker CLI plugins from FindCompose.
func noPlugins(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	saved := systemPluginDirs
	systemPluginDirs = nil
	t.Cleanup(func() { systemPluginDirs = saved })
}

// The docker CLI's compose plugin runs on its own, found where the CLI
// looks for it: the user's folder first, then config.json's extra folders,
// then the system's. Without a docker CLI there is no plugin; a v1 plugin
// is refused.
func TestFindComposePlugin(t *testing.T) {
	bin := t.TempDir()
	script := func(dir, name, text string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	script(bin, "docker", "#!/bin/sh\nexit 1\n") // "docker compose" fails
	t.Setenv("PATH", bin)
	noPlugins(t)
	cfg := os.Getenv("DOCKER_CONFIG")
	extra, system := t.TempDir(), t.TempDir()
	systemPluginDirs = []string{system}
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"cliPluginsExtraDirs":[`+strconv.Quote(extra)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	find := func() string {
		t.Helper()
		c, err := FindCompose(context.Background())
		if err != nil {
			return err.Error()
		}
		return strings.Join(c.Argv, " ") + " " + c.Version
	}
	v2 := "#!/bin/sh\necho v2.40.3\n"
	sys := script(system, "docker-compose", v2)
	if got := find(); got != sys+" 2.40.3" {
		t.Errorf("system plugin: %q", got)
	}
	ext := script(extra, "docker-compose", v2)
	if got := find(); got != ext+" 2.40.3" {
		t.Errorf("extra folder before the system's: %q", got)
	}
	user := script(filepath.Join(cfg, "cli-plugins"), "docker-compose", "#!/bin/sh\necho 1.29.2\n")
	if got := find(); !strings.Contains(got, "found only "+user+" 1.29.2") {
		t.Errorf("v1 plugin in the user's folder: %q", got)
	}
	if err := os.Chmod(user, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := find(); got != ext+" 2.40.3" {
		t.Errorf("user's plugin not executable: %q", got)
	}
	if err := os.Remove(filepath.Join(bin, "docker")); err != nil {
		t.Fatal(err)
	}
	if got := find(); got != ErrNoCompose.Error() {
		t.Errorf("no docker CLI: %q", got)
	}
}
