// Package verifytest sets up end-to-end tests of unhost verify on the real
// engine: the testserver image for the stacks under testdata/verify, a
// static unhost binary for the probe, compose v2, and a check that a test
// left nothing labelled behind.
package verifytest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/unhost/unhost/internal/ci"
	"github.com/unhost/unhost/internal/dockertest"
	"github.com/unhost/unhost/verify"
)

// Root is the repository root, from this file's location.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Stack is the compose file of testdata/verify/NAME.
func Stack(name string) string {
	return filepath.Join(Root(), "testdata", "verify", name, "compose.yaml")
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// Binary builds cmd/unhost statically (CGO_ENABLED=0) once per test binary
// run. Call RemoveBinary from TestMain.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "unhost-verifytest-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "unhost")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/unhost")
		cmd.Dir = Root()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("build unhost: %v", binErr)
	}
	return binPath
}

// WriteFile writes text to dir/name for a test and returns the path.
func WriteFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// RemoveBinary removes what Binary built.
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Env prepares an end-to-end verify test: a Docker client (the test fails
// when CI=true and no engine answers, else it is skipped), compose v2 (same
// rule), the testserver image in UNHOST_TEST_IMAGE, and a check at cleanup
// that nothing labelled by a verify run of this process is left.
func Env(t testing.TB) *client.Client {
	t.Helper()
	cli := dockertest.Client(t)
	if _, err := verify.FindCompose(context.Background()); err != nil {
		if ci.Enabled() {
			t.Fatalf("compose v2 required (CI=true): %v", err)
		}
		t.Skipf("no compose v2: %v", err)
	}
	dockertest.CleanupRun(t, cli)
	img := dockertest.BuildImage(t, cli, filepath.Join(Root(), "internal", "testserver"), nil)
	t.Setenv("UNHOST_TEST_IMAGE", img)
	pid := os.Getpid()
	t.Cleanup(func() { AssertClean(t, cli, pid) })
	return cli
}

// AssertClean fails the test if any container, network, volume or image
// of a verify run owned by pid exists, and removes it.
func AssertClean(t testing.TB, cli *client.Client, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", verify.LabelPID+"="+strconv.Itoa(pid)))
	var left []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("list containers: %v", err)
	}
	for _, c := range cs {
		left = append(left, "container "+c.Names[0])
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("list networks: %v", err)
	}
	for _, n := range ns {
		left = append(left, "network "+n.Name)
		_ = cli.NetworkRemove(ctx, n.ID)
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("list volumes: %v", err)
	}
	for _, v := range vs.Volumes {
		left = append(left, "volume "+v.Name)
		_ = cli.VolumeRemove(ctx, v.Name, true)
	}
	is, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("list images: %v", err)
	}
	for _, im := range is {
		left = append(left, "image "+im.ID)
		_, _ = cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
	if len(left) > 0 {
		t.Errorf("verify left objects behind: %v", left)
	}
}

// ComposeUp starts the compose file as project name with the real compose
// CLI and registers its removal (down -v) at cleanup.
func ComposeUp(t *testing.T, name, file string) {
	t.Helper()
	c, err := verify.FindCompose(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, c.Argv[0], append(c.Argv[1:], "-p", name, "down", "-v", "--remove-orphans", "--timeout", "3")...).CombinedOutput(); err != nil {
			t.Errorf("compose down %s: %v: %s", name, err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, c.Argv[0], append(c.Argv[1:], "-p", name, "-f", file, "up", "-d", "--wait")...).CombinedOutput(); err != nil {
		t.Fatalf("compose up %s: %v: %s", name, err, out)
	}
}
