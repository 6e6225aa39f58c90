package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/unhost/unhost/internal/ci"
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
	if !strings.Contains(string(b), `<failure message="api environment.DATABASE_URL localhost:15432 (`) || !strings.Contains(string(b), "db listens on 15432: use db:15432") {
		t.Errorf("junit report lacks the failure:\n%s", b)
	}
}

// startVerify starts the unhost binary's verify with args and waits until
// its test stack has at least n containers.
func startVerify(t *testing.T, cli *client.Client, n int, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(verifytest.Binary(t), append([]string{"verify", "-q"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		verifytest.AssertClean(t, cli, pid)
	})
	f := filters.NewArgs(filters.Arg("label", verify.LabelPID+"="+strconv.Itoa(pid)), filters.Arg("label", "com.docker.compose.project"))
	deadline := time.Now().Add(time.Minute)
	for {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) >= n {
			return cmd, &stderr
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("verify created no stack within a minute: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err == nil {
			return 0
		}
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(within):
		_ = cmd.Process.Kill()
		t.Fatalf("verify did not stop within %s", within)
	}
	return -1
}

// SIGINT, SIGTERM, SIGHUP and a second signal during the teardown (CI's
// SIGINT then SIGTERM) all stop verify with a teardown that leaves nothing
// of the run on the engine (AssertClean, at cleanup, by the run's pid).
func TestVerifySignalsLeaveNothing(t *testing.T) {
	cli := verifytest.Env(t)
	// For a second signal to land during the teardown for sure, the
	// teardown must last: the stack runs, and its server ignores the stop
	// signal (Go programs take no action on SIGWINCH), so compose down
	// waits out its timeout (5 s) before it kills it.
	slow := verifytest.WriteFile(t, t.TempDir(), "compose.yaml", `services:
  db:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:15432"]
    stop_signal: SIGWINCH
`)
	for _, tc := range []struct {
		name  string
		sigs  []os.Signal
		stack string
		n     int // containers to wait for
	}{
		{"SIGINT", []os.Signal{os.Interrupt}, verifytest.Stack("migrated"), 3},
		{"SIGTERM", []os.Signal{syscall.SIGTERM}, verifytest.Stack("migrated"), 3},
		{"SIGHUP", []os.Signal{syscall.SIGHUP}, verifytest.Stack("migrated"), 3},
		{"SIGINT then SIGTERM", []os.Signal{os.Interrupt, syscall.SIGTERM}, slow, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, stderr := startVerify(t, cli, tc.n, "-f", tc.stack, "--timeout", "2m", "--watch", "1m")
			if len(tc.sigs) > 1 {
				waitRunning(t, cli, cmd.Process.Pid, tc.n)
			}
			for i, sig := range tc.sigs {
				if i > 0 {
					time.Sleep(300 * time.Millisecond)
				}
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
			}
			if code := waitExit(t, cmd, 2*time.Minute); code != ExitError {
				t.Errorf("exit %d, want %d; stderr: %s", code, ExitError, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted, tearing down") || len(tc.sigs) > 1 && !strings.Contains(stderr.String(), "still tearing down") {
				t.Errorf("stderr: %s", stderr.String())
			}
			if strings.Contains(stderr.String(), "teardown left") {
				t.Errorf("teardown left something: %s", stderr.String())
			}
		})
	}
}

// waitRunning waits until n containers of the test stack of the verify run
// by pid run.
func waitRunning(t *testing.T, cli *client.Client, pid, n int) {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", verify.LabelPID+"="+strconv.Itoa(pid)), filters.Arg("label", "com.docker.compose.project"), filters.Arg("status", "running"))
	for deadline := time.Now().Add(time.Minute); ; {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test stack of verify %d does not run within a minute", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// After SIGKILL nothing tears down, but the run's lease ends with its
// connection: the next run (here --cleanup) removes everything it left.
func TestVerifySIGKILLLeftoversGoWithTheLease(t *testing.T) {
	cli := verifytest.Env(t)
	cmd, _ := startVerify(t, cli, 3, "-f", verifytest.Stack("migrated"), "--timeout", "2m", "--watch", "1m")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	pid := strconv.Itoa(cmd.Process.Pid)
	// The engine ends the lease once it sees the connection gone.
	f := filters.NewArgs(filters.Arg("label", verify.LabelPID+"="+pid), filters.Arg("label", verify.LabelLease))
	for deadline := time.Now().Add(20 * time.Second); ; {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease of a killed run still holds: %+v", cs[0].State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	all := filters.NewArgs(filters.Arg("label", verify.LabelPID+"="+pid))
	if cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: all}); err != nil || len(cs) == 0 {
		t.Fatalf("the killed run left no containers to clean up (%v): the test proves nothing", err)
	}
	if code := run([]string{"verify", "--cleanup"}); code != ExitOK {
		t.Fatalf("--cleanup: exit %d", code)
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

// freeOutsidePID finds a pid that no process outside a new PID namespace
// has, nor the 20 after it: a verify inside that namespace gets one of them,
// and under pid-based ownership any other run would take it for dead.
func freeOutsidePID(t *testing.T) int {
	t.Helper()
	for p := 200; p < 30000; p++ {
		free := true
		for q := p; q < p+20 && free; q++ {
			free = errors.Is(syscall.Kill(q, 0), syscall.ESRCH)
		}
		if free {
			return p
		}
	}
	t.Skip("no run of free pids")
	return 0
}

// Two verify runs at once, one in its own PID namespace whose pids do not
// exist outside it: the other run's start-up cleanup, and a --cleanup in
// the middle, race it, and neither removes the other's resources (their
// leases hold), so both pass.
func TestVerifyRunsInOtherPIDNamespacesAreKept(t *testing.T) {
	cli := verifytest.Env(t)
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		if ci.Enabled() {
			t.Fatalf("unshare --pid (CI): %v", err)
		}
		t.Skipf("unshare --pid: %v", err)
	}
	bin := verifytest.Binary(t)
	target := freeOutsidePID(t)
	// Burn pids inside the namespace up to target, then run verify there.
	script := `while [ "$(sh -c 'echo $$')" -lt "$1" ]; do :; done; shift; "$@"`
	a := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script, "sh", strconv.Itoa(target),
		bin, "verify", "-q", "--format", "json", "-f", verifytest.Stack("shop-fixed"), "--watch", "15s", "--timeout", "2m")
	var aOut, aErr strings.Builder
	a.Stdout, a.Stderr = &aOut, &aErr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Process.Kill() })
	// Wait for A's stack, and read the pid A sees itself as.
	var aPID, aRun string
	for deadline := time.Now().Add(time.Minute); aRun == ""; time.Sleep(100 * time.Millisecond) {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project"), filters.Arg("label", verify.LabelRun))})
		if err != nil {
			t.Fatal(err)
		}
		// A's containers: their pid label names no process out here.
		byRun := map[string]int{}
		for _, c := range cs {
			if n, err := strconv.Atoi(c.Labels[verify.LabelPID]); err == nil && n >= target && errors.Is(syscall.Kill(n, 0), syscall.ESRCH) {
				byRun[c.Labels[verify.LabelRun]]++
				if byRun[c.Labels[verify.LabelRun]] >= 4 {
					aPID, aRun = c.Labels[verify.LabelPID], c.Labels[verify.LabelRun]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the namespaced verify created no stack: %s", aErr.String())
		}
	}
	t.Cleanup(func() {
		if _, err := verify.Cleanup(context.Background(), cli, aRun); err != nil {
			t.Error(err)
		}
	})
	n, _ := strconv.Atoi(aPID)
	if n < target || !errors.Is(syscall.Kill(n, 0), syscall.ESRCH) {
		t.Fatalf("the namespaced verify runs as pid %s, which exists outside its namespace (wanted >= %d)", aPID, target)
	}
	// B starts (its start-up cleanup races A), and a --cleanup runs while
	// both are up.
	var bOut strings.Builder
	b := exec.Command(bin, "verify", "-q", "--format", "json", "-f", verifytest.Stack("shop-fixed"), "--watch", "1s", "--timeout", "2m")
	b.Stdout = &bOut
	var bErr strings.Builder
	b.Stderr = &bErr
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { verifytest.AssertClean(t, cli, b.Process.Pid) })
	time.Sleep(2 * time.Second)
	var cleanOut strings.Builder
	cl := exec.Command(bin, "verify", "--cleanup")
	cl.Stdout, cl.Stderr = &cleanOut, &cleanOut
	if err := cl.Run(); err != nil {
		t.Fatalf("--cleanup: %v: %s", err, cleanOut.String())
	}
	if strings.Contains(cleanOut.String(), aRun) {
		t.Errorf("--cleanup removed objects of the live namespaced run %s: %s", aRun, cleanOut.String())
	}
	if code := waitExit(t, b, 3*time.Minute); code != ExitOK {
		t.Errorf("B: exit %d: %s%s", code, bOut.String(), bErr.String())
	}
	if code := waitExit(t, a, 3*time.Minute); code != ExitOK {
		t.Errorf("A (own PID namespace): exit %d: %s%s", code, aOut.String(), aErr.String())
	}
	for name, out := range map[string]string{"A": aOut.String(), "B": bOut.String()} {
		var rep verify.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Status != verify.Pass {
			t.Errorf("%s: %v, status %q", name, err, rep.Status)
		}
	}
	left, err := verify.Cleanup(context.Background(), cli, aRun)
	if err != nil || len(left) > 0 {
		t.Errorf("the namespaced run left %v (%v)", left, err)
	}
}

// Beside a production stack with Traefik-style labels, a docker.sock
// mounting service and a named volume: verify of the same files is refused
// (naming the service and the flag), verify of the files without that
// service runs without the router labels, and production's containers,
// labels and volumes are unchanged.
func TestVerifyBesideProductionWithRouterAndSocket(t *testing.T) {
	cli := verifytest.Env(t)
	dir := t.TempDir()
	prodFile := filepath.Join(dir, "prod.yaml")
	stack := `services:
  web:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:8080"]
    labels:
      traefik.enable: "true"
      traefik.http.routers.web.rule: Host(` + "`shop.example`" + `)
      com.centurylinklabs.watchtower.enable: "true"
    volumes: ["data:/data"]
  watchtower:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:8081"]
    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
volumes:
  data:
`
	if err := os.WriteFile(prodFile, []byte(stack), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "unhost-test-prod-" + strings.ToLower(dockertest.RunID())
	verifytest.ComposeUp(t, name, prodFile)
	ctx := context.Background()
	snapshot := func() string {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+name))})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, c := range cs {
			in, err := cli.ContainerInspect(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%s %s %s %d %v", in.ID, in.State.Status, in.State.StartedAt, in.RestartCount, in.Config.Labels))
		}
		vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+name))})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs.Volumes {
			lines = append(lines, fmt.Sprintf("volume %s %s %v", v.Name, v.CreatedAt, v.Labels))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	before := snapshot()
	if !strings.Contains(before, "traefik.enable") || !strings.Contains(before, "volume ") {
		t.Fatalf("production is not what the test needs:\n%s", before)
	}

	var out, errOut strings.Builder
	code := runWith([]string{"verify", "-q", "-f", prodFile, "--probe-binary", verifytest.Binary(t)}, &out, &errOut)
	if code != ExitError || !strings.Contains(errOut.String(), "service watchtower binds /var/run/docker.sock") || !strings.Contains(errOut.String(), "--allow-engine-socket") {
		t.Errorf("verify with the socket service: exit %d: %s", code, errOut.String())
	}

	noSocket := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(noSocket, []byte(strings.Split(stack, "  watchtower:")[0]+"volumes:\n  data:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Run(ctx, verify.Options{Files: []string{noSocket}, Timeout: time.Minute, Watch: time.Second, ProbeBinary: verifytest.Binary(t), Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	run := strings.TrimPrefix(rep.Project, "unhost-verify-")
	defer func() {
		if _, err := verify.Cleanup(ctx, cli, run); err != nil {
			t.Error(err)
		}
	}()
	if rep.Failed() {
		t.Errorf("verify without the socket service: %s %+v", rep.Status, rep.Checks)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+rep.Project))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("kept test stack: %d containers, %v", len(cs), err)
	}
	for k := range cs[0].Labels {
		if strings.HasPrefix(k, "traefik") || strings.HasPrefix(k, "com.centurylinklabs.watchtower") {
			t.Errorf("the test container carries %s", k)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("production changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
