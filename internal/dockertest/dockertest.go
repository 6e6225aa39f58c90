// Package dockertest helps tests use the real Docker Engine: a pinged client,
// offline image builds of Go main packages into scratch images, and labels
// with cleanup so that every test removes what it created, also on failure.
//
// Label convention: everything a test creates carries
//
//	io.unhost.test=<run id>          (one id per test binary run, RunID)
//	io.unhost.test.scope=<scope id>  (one id per NewScope call)
//
// Scope.Cleanup removes the containers, networks and volumes of its scope;
// CleanupRun removes everything of the run. A leftover from a crashed run can
// be found with `docker ps -a --filter label=io.unhost.test`.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/unhost/unhost/internal/ci"
	"github.com/unhost/unhost/internal/jsonstream"
)

const (
	// LabelRun is set to RunID on every object a test creates.
	LabelRun = "io.unhost.test"
	// LabelScope is set to the scope id of the Scope that created an object.
	LabelScope = "io.unhost.test.scope"
)

var runID = newID()

func newID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}

// RunID is the id of this test binary run, the value of LabelRun.
func RunID() string { return runID }

// Client returns a Docker client configured from the environment, with API
// version negotiation, after pinging the engine. If no engine answers, the
// test fails when CI=true and is skipped otherwise.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		noEngine(t, err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		noEngine(t, err)
		return nil
	}
	cli.NegotiateAPIVersion(ctx)
	t.Cleanup(func() { cli.Close() })
	return cli
}

func noEngine(t testing.TB, err error) {
	t.Helper()
	if ci.Enabled() {
		t.Fatalf("docker engine required (CI=true): %v", err)
	}
	t.Skipf("no docker engine: %v", err)
}

// cleanupCtx is the context for removals in t.Cleanup, where the test's own
// context is already cancelled.
func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

var (
	binMu    sync.Mutex
	binCache = map[string][]byte{} // goPkg -> static binary

	imgMu    sync.Mutex
	imgCache = map[string]*builtImage{} // goPkg + labels -> image
)

type builtImage struct {
	tag  string
	refs int
}

// BuildImage compiles the Go main package goPkg (import path or directory,
// resolved from the test's working directory) with CGO_ENABLED=0 and builds
// a FROM scratch image whose entrypoint is the binary, through the Engine's
// ImageBuild API (no registry needed). labels are added to the image
// besides LabelRun. It returns a unique tag. The image is removed when the
// last test that asked for it cleans up; the compiled binary is cached for
// the whole run.
func BuildImage(t testing.TB, cli *client.Client, goPkg string, labels map[string]string) string {
	t.Helper()
	key := goPkg + "\x00" + labelKey(labels)
	imgMu.Lock()
	defer imgMu.Unlock()
	img, ok := imgCache[key]
	if !ok {
		bin, err := compile(goPkg)
		if err != nil {
			t.Fatalf("build %s: %v", goPkg, err)
		}
		tag := "unhost-test/" + sanitize(filepath.Base(goPkg)) + ":" + runID + "-" + newID()
		if err := buildImage(cli, bin, tag, labels); err != nil {
			t.Fatalf("build image for %s: %v", goPkg, err)
		}
		img = &builtImage{tag: tag}
		imgCache[key] = img
	}
	img.refs++
	t.Cleanup(func() {
		imgMu.Lock()
		defer imgMu.Unlock()
		img.refs--
		if img.refs > 0 {
			return
		}
		delete(imgCache, key)
		ctx, cancel := cleanupCtx()
		defer cancel()
		if _, err := cli.ImageRemove(ctx, img.tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove image %s: %v", img.tag, err)
		}
	})
	return img.tag
}

func labelKey(labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x00")
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "app"
	}
	return b.String()
}

func compile(goPkg string) ([]byte, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if b, ok := binCache[goPkg]; ok {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "dockertest-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, goPkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w: %s", err, bytes.TrimSpace(msg))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	binCache[goPkg] = b
	return b, nil
}

// The binary and a file naming the tag share one layer, so that no two
// builds (from test binaries running in parallel) share a layer: the 20.10
// builder can fail ("failed to get digest") when another process removes an
// image whose layer a running build reuses.
const dockerfile = "FROM scratch\nCOPY root/ /\nENTRYPOINT [\"/app\"]\n"

func buildImage(cli *client.Client, bin []byte, tag string, labels map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"root/app", 0o755, bin}, {"root/unhost-test-image", 0o644, []byte(tag + "\n")}}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	all := map[string]string{LabelRun: runID}
	for k, v := range labels {
		all[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Labels:      all,
		Remove:      true,
		ForceRemove: true,
		Dockerfile:  "Dockerfile",
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// The body is a stream of JSON messages; a failed step reports "error".
	return jsonstream.Check(resp.Body)
}

// Scope groups the Docker objects one test creates. NewScope registers a
// t.Cleanup that removes all containers, networks and volumes labelled with
// the scope, whether the test passed or not.
type Scope struct {
	cli *client.Client
	id  string
}

// NewScope returns a new scope and registers its cleanup with t.
func NewScope(t testing.TB, cli *client.Client) *Scope {
	t.Helper()
	s := &Scope{cli: cli, id: runID + "-" + newID()}
	t.Cleanup(func() {
		if err := removeLabelled(cli, LabelScope+"="+s.id); err != nil {
			t.Errorf("cleanup docker objects of %s: %v", s.id, err)
		}
	})
	return s
}

// ID is the scope's label value.
func (s *Scope) ID() string { return s.id }

// Labels returns extra plus LabelRun and LabelScope. Put them on every
// container, network and volume the test creates.
func (s *Scope) Labels(extra map[string]string) map[string]string {
	m := map[string]string{LabelRun: runID, LabelScope: s.id}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// Run creates and starts a container with the scope's labels added to
// cfg.Labels. name may be empty. It returns the container id. The container is
// removed by the scope's cleanup.
func (s *Scope) Run(t testing.TB, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) string {
	t.Helper()
	c := *cfg
	c.Labels = s.Labels(cfg.Labels)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := s.cli.ContainerCreate(ctx, &c, hc, nc, nil, name)
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	if err := s.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	return resp.ID
}

// CleanupRun registers a t.Cleanup that removes every container, network and
// volume of this test binary run (label LabelRun=RunID()).
func CleanupRun(t testing.TB, cli *client.Client) {
	t.Helper()
	t.Cleanup(func() {
		if err := removeLabelled(cli, LabelRun+"="+runID); err != nil {
			t.Errorf("cleanup docker objects of run %s: %v", runID, err)
		}
	})
}

// removeLabelled removes containers (forcefully, with anonymous volumes), then
// networks, then volumes that carry label (key=value).
func removeLabelled(cli *client.Client, label string) error {
	ctx, cancel := cleanupCtx()
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", label))
	var errs []error
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range cs {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("remove container %.12s: %w", id, err))
				mu.Unlock()
			}
		}(c.ID)
	}
	wg.Wait()
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	for _, n := range ns {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	}
	for _, v := range vs.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// WaitLog waits until the container's combined stdout and stderr contain every
// one of lines (as whole lines, in any order), or fails the test after
// timeout, printing the log so far.
func WaitLog(t testing.TB, cli *client.Client, id string, timeout time.Duration, lines ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var log string
	for {
		log = Logs(t, cli, id)
		have := map[string]bool{}
		for _, l := range strings.Split(log, "\n") {
			have[strings.TrimSpace(l)] = true
		}
		missing := false
		for _, l := range lines {
			if !have[l] {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %.12s: waited %v for lines %q; log:\n%s", id, timeout, lines, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Logs returns the container's stdout and stderr so far (demultiplexed).
func Logs(t testing.TB, cli *client.Client, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %.12s: %v", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read logs of %.12s: %v", id, err)
	}
	return out.String()
}

// FreePorts returns n distinct ports that are free right now for TCP and UDP,
// IPv4 and IPv6, on this host, for host-network containers of a test. Another
// process may still take one before the test binds it; choose them just
// before starting the containers.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n && tries < 100*n; tries++ {
		ln, err := net.Listen("tcp", "[::]:0") // dual-stack: free for v4 and v6
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("[::]:%d", p))
		ln.Close()
		if err != nil || seen[p] {
			continue
		}
		pc.Close()
		seen[p] = true
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("found only %d of %d free ports", len(ports), n)
	}
	return ports
}
