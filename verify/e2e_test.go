package verify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

func find(t *testing.T, r *verify.Report, name, service, target string) verify.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name && c.Service == service && (target == "" || strings.Contains(c.Target, target)) {
			return c
		}
	}
	t.Fatalf("no %s check for %s %s in %+v", name, service, target, r.Checks)
	return verify.Check{}
}

func runVerify(t *testing.T, file string, extra func(*verify.Options)) *verify.Report {
	t.Helper()
	opts := verify.Options{
		Files:       []string{file},
		Timeout:     time.Minute,
		Watch:       time.Second,
		ProbeBinary: verifytest.Binary(t),
	}
	if extra != nil {
		extra(&opts)
	}
	rep, err := verify.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func TestMigratedStackPasses(t *testing.T) {
	verifytest.Env(t)
	plan := strings.TrimSuffix(verifytest.Stack("migrated"), "compose.yaml") + "plan.json"
	rep := runVerify(t, verifytest.Stack("migrated"), func(o *verify.Options) { o.PlanFile = plan })
	// The host service reference is skipped beside production: not a pass.
	if !rep.Failed() || rep.Status != verify.Incomplete || len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0], "host.docker.internal:2525") {
		t.Fatalf("verify: %s, skipped %v: %+v", rep.Status, rep.Skipped, rep.Checks)
	}
	for _, want := range []struct{ name, service, target string }{
		{verify.CheckRef, "api", "echo:15353/udp"}, // from the plan only
		{verify.CheckPort, "api", "18080/tcp"},
		{verify.CheckPort, "echo", "15353/udp"},
		{verify.CheckRef, "api", "db:15432"},
		{verify.CheckInternal, "db", "15432/tcp"},
		{verify.CheckHTTP, "api", "18080/healthz=200"},
		{verify.CheckHealth, "api", ""},
		{verify.CheckHealth, "db", ""},
		{verify.CheckHealth, "echo", ""},
	} {
		if c := find(t, rep, want.name, want.service, want.target); c.Status != verify.Pass {
			t.Errorf("%s %s %s: %s: %s", want.name, want.service, want.target, c.Status, c.Reason)
		}
	}
	if c := find(t, rep, verify.CheckRef, "api", "host.docker.internal:2525"); c.Status != verify.Skip || !strings.Contains(c.Reason, "--in-place") {
		t.Errorf("host service reference: %s: %s", c.Status, c.Reason)
	}
	if c := find(t, rep, verify.CheckPort, "echo", "15353/udp"); !strings.Contains(c.Reason, "answers datagrams through") {
		t.Errorf("udp echo should be answered through the published port: %s", c.Reason)
	}
	for _, p := range rep.Ports {
		if p.Test == "" || p.Test == p.Real {
			t.Errorf("port %s %d/%s not remapped: real %q test %q", p.Service, p.Target, p.Protocol, p.Real, p.Test)
		}
	}
}

func TestLocalhostReferenceFails(t *testing.T) {
	verifytest.Env(t)
	rep := runVerify(t, verifytest.Stack("broken"), func(o *verify.Options) { o.RefWait = time.Second })
	if !rep.Failed() {
		t.Fatalf("verify passed a stack with a localhost reference: %+v", rep.Checks)
	}
	var failed []verify.Check
	for _, c := range rep.Checks {
		if c.Status == verify.Fail {
			failed = append(failed, c)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("want exactly the localhost reference to fail, got %+v", failed)
	}
	c := failed[0]
	for _, want := range []string{"api environment.DATABASE_URL localhost:15432", "nothing listens on 15432/tcp inside api's own network namespace (connection refused)", "db listens on 15432: use db:15432"} {
		if c.Name != verify.CheckRef || !strings.Contains(c.Reason, want) {
			t.Errorf("failure = %s %q, want a reference failure with %q", c.Name, c.Reason, want)
		}
	}
}

// A published port whose server listens only on loopback inside the
// container is unreachable through Docker's proxy, although a host-side
// connect succeeds: verify must see it from inside.
func TestLoopbackOnlyListenerFails(t *testing.T) {
	verifytest.Env(t)
	dir := t.TempDir()
	file := dir + "/compose.yaml"
	stack := `services:
  web:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "127.0.0.1:8080"]
    ports: ["127.0.0.1:18081:8080"]
`
	if err := os.WriteFile(file, []byte(stack), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := runVerify(t, file, nil)
	c := find(t, rep, verify.CheckPort, "web", "8080/tcp")
	if c.Status != verify.Fail || !strings.Contains(c.Reason, "listening only on loopback (127.0.0.1:8080)") {
		t.Errorf("published-port web: %s: %s", c.Status, c.Reason)
	}
}

// Beside a running copy of the original host-network stack: verify passes
// (its ports are remapped, its db port is held by the original and that is
// not held against the test stack) and the original is untouched.
func TestBesideRunningOriginal(t *testing.T) {
	cli := verifytest.Env(t)
	name := "unhost-test-original-" + strings.ToLower(t.Name()[4:12])
	verifytest.ComposeUp(t, name, verifytest.Stack("original"))
	ctx := context.Background()
	list := func() map[string]container.Summary {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+name))})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]container.Summary{}
		for _, c := range cs {
			out[c.ID] = c
		}
		return out
	}
	before := list()
	if len(before) != 3 {
		t.Fatalf("original stack has %d containers, want 3", len(before))
	}
	started := map[string]string{}
	for id := range before {
		in, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		started[id] = in.State.StartedAt
	}

	rep := runVerify(t, verifytest.Stack("migrated"), func(o *verify.Options) { o.AllowSkip = true })
	if rep.Failed() || rep.Status != verify.Incomplete {
		t.Fatalf("verify beside the original: %s %+v", rep.Status, rep.Checks)
	}
	// The original holds 127.0.0.1:15432: the host-side check cannot run.
	if c := find(t, rep, verify.CheckInternal, "db", "15432/tcp"); c.Status != verify.Skip || !strings.Contains(c.Reason, "already held it before the test stack started") {
		t.Errorf("internal-port db should be skipped for the original's listener: %s: %s", c.Status, c.Reason)
	}

	after := list()
	if len(after) != len(before) {
		t.Fatalf("original stack changed: %d containers before, %d after", len(before), len(after))
	}
	for id := range before {
		in, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatalf("original container %.12s: %v", id, err)
		}
		if in.State.Status != "running" || in.RestartCount != 0 || in.State.StartedAt != started[id] {
			t.Errorf("original container %s was touched: %s, restarts %d, started %s (was %s)", in.Name, in.State.Status, in.RestartCount, in.State.StartedAt, started[id])
		}
	}
}

// A service that exits at start is a failed check (exit 4 from the CLI),
// not an error; --keep leaves the stack up until it is removed.
func TestStackNotStartingFailsAndKeep(t *testing.T) {
	cli := verifytest.Env(t)
	file := t.TempDir() + "/compose.yaml"
	stack := `services:
  ok:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:8080"]
  crash:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-no-such-flag"]
`
	if err := os.WriteFile(file, []byte(stack), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := runVerify(t, file, func(o *verify.Options) { o.Timeout = 20 * time.Second; o.Keep = true })
	c := find(t, rep, verify.CheckStack, "crash", "")
	if c.Status != verify.Fail || !strings.Contains(c.Reason, "exited (exit code 2)") {
		t.Errorf("stack-up crash: %s: %s", c.Status, c.Reason)
	}
	if !strings.Contains(rep.KeptHint, "docker compose -p "+rep.Project+" down -v") || rep.Teardown != "" {
		t.Errorf("kept hint: %q", rep.KeptHint)
	}
	// Kept: the stack's containers are still there, the probes are gone.
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+rep.Project))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Errorf("--keep left %d containers of %s, want the 2 of the stack", len(cs), rep.Project)
	}
	// Env's cleanup check removes them and would fail the test: do what
	// the hint says first.
	if _, err := verify.Cleanup(context.Background(), cli, strings.TrimPrefix(rep.Project, "unhost-verify-")); err != nil {
		t.Fatal(err)
	}
}

// Bind mounts are read-only during verify: a service that must write to
// one fails, and the report says why; --writable-binds opts out (and the
// file is then really written).
func TestReadOnlyBindReported(t *testing.T) {
	cli := verifytest.Env(t)
	img := dockertest.BuildImage(t, cli, filepath.Join(verifytest.Root(), "verify", "internal", "writer"), nil)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	stack := "services:\n  store:\n    image: " + img + "\n    command: [\"/data/state\"]\n    volumes: [\"./data:/data\"]\n"
	if err := os.WriteFile(file, []byte(stack), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := runVerify(t, file, func(o *verify.Options) { o.Timeout = 20 * time.Second })
	c := find(t, rep, verify.CheckStack, "store", "")
	if c.Status != verify.Fail || !strings.Contains(c.Reason, "cannot write to a bind mount") || !strings.Contains(c.Reason, "--writable-binds") {
		t.Errorf("stack-up store: %s: %s", c.Status, c.Reason)
	}
	if _, err := os.Stat(filepath.Join(data, "state")); err == nil {
		t.Fatal("the service wrote to the bind mount during a read-only verify")
	}

	rep = runVerify(t, file, func(o *verify.Options) { o.WritableBinds = true })
	if rep.Failed() {
		t.Errorf("--writable-binds: %+v", rep.Checks)
	}
	if _, err := os.Stat(filepath.Join(data, "state")); err != nil {
		t.Errorf("--writable-binds: the service did not write: %v", err)
	}
}
