package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/unhost/unhost/internal/dockertest"
	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	verifytest.RemoveBinary()
	if err := dockertest.ReleaseSwarm(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func TestVerifyBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "--format", "xml"},
		{"verify", "--no-such-flag"},
		{"verify", "--timeout", "0s"},
		{"verify", "extra-arg"},
		{"verify", "--http", "web"},
		{"verify", "--http", "web:80/=abc"},
	} {
		if code := run(args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// Without a compose v2 CLI verify cannot run: exit 1, and compose v1 is
// refused by its version.
func TestVerifyNoCompose(t *testing.T) {
	dir := t.TempDir()
	fake := "#!/bin/sh\necho 1.29.2\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-compose"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if _, err := verify.FindCompose(context.Background()); err == nil || !strings.Contains(err.Error(), "found only docker-compose 1.29.2") {
		t.Errorf("FindCompose with only v1: %v", err)
	}
	if code := run([]string{"verify", "-q", "-f", verifytest.Stack("migrated")}); code != ExitError {
		t.Errorf("exit %d, want %d", code, ExitError)
	}
}

// The CLI on the stack with a reference left at localhost: exit 4 and a
// JUnit failure naming it.
func TestVerifyCLIFailsWithJUnit(t *testing.T) {
	verifytest.Env(t)
	out := filepath.Join(t.TempDir(), "report.xml")
	code := run([]string{"verify", "-q", "-f", verifytest.Stack("broken"), "--timeout", "1m",
		"--probe-binary", verifytest.Binary(t), "--format", "junit", "-o", out})
	if code != ExitVerify {
		t.Fatalf("exit %d, want %d", code, ExitVerify)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `<failure message="api -&gt; localhost:15432 (environment DATABASE_URL): connection refused inside api&#39;s network namespace"`) {
		t.Errorf("junit report lacks the failure:\n%s", b)
	}
}

// SIGINT to a running unhost verify tears the test stack down.
func TestVerifyInterruptLeavesNothing(t *testing.T) {
	cli := verifytest.Env(t)
	bin := verifytest.Binary(t)
	cmd := exec.Command(bin, "verify", "-q", "-f", verifytest.Stack("migrated"), "--timeout", "2m", "--watch", "1m")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { verifytest.AssertClean(t, cli, pid) })
	// Interrupt once the test stack's containers exist.
	f := filters.NewArgs(filters.Arg("label", verify.LabelPID+"="+strconv.Itoa(pid)))
	deadline := time.Now().Add(time.Minute)
	for {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("verify created no containers within a minute: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitError {
			t.Errorf("interrupted verify: %v, want exit %d; stderr: %s", err, ExitError, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("verify did not stop within 2 minutes of SIGINT")
	}
	if !strings.Contains(stderr.String(), "interrupt: stopping and tearing down") {
		t.Errorf("stderr: %s", stderr.String())
	}
	// AssertClean (cleanup) fails the test if anything of pid is left.
}

// --cleanup removes leftovers of runs whose lease is gone, and only
// those: a run's pid says nothing (it may live in another PID namespace).
func TestVerifyCleanupKeepsLiveRuns(t *testing.T) {
	cli := verifytest.Env(t)
	img := os.Getenv("UNHOST_TEST_IMAGE")
	scope := dockertest.NewScope(t, cli)
	labels := func(run string) map[string]string {
		// pid 1 is alive everywhere: the pid must not decide.
		return map[string]string{verify.LabelRun: run, verify.LabelPID: "1"}
	}
	dead := scope.Run(t, "", &container.Config{Image: img, Cmd: []string{"-tcp", "0.0.0.0:1"}, Labels: labels("stale")}, nil, nil)
	live := scope.Run(t, "", &container.Config{Image: img, Cmd: []string{"-tcp", "0.0.0.0:1"}, Labels: labels("live")}, nil, nil)
	leaseLabels := labels("live")
	leaseLabels[verify.LabelLease] = "1"
	lease := scope.Run(t, "", &container.Config{Image: img, Cmd: []string{"-tcp", "0.0.0.0:2"}, Labels: leaseLabels}, nil, nil)
	if code := run([]string{"verify", "--cleanup"}); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	ctx := context.Background()
	if _, err := cli.ContainerInspect(ctx, dead); err == nil {
		t.Error("leftover of a run without a lease was kept")
	}
	for _, id := range []string{live, lease} {
		if _, err := cli.ContainerInspect(ctx, id); err != nil {
			t.Errorf("container of a run whose lease holds was removed: %v", err)
		}
	}
	if _, err := verify.Cleanup(ctx, cli, "live"); err != nil {
		t.Fatal(err)
	}
}
