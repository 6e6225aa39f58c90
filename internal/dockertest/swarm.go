package dockertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// Test binaries of several packages run at once (go test ./...) and share
// one engine. A swarm that a test initialises must stay until the last
// test binary using it is done, and must then be left; a swarm that was
// there before (someone else's) must never be left. Every test binary
// using the swarm holds a shared flock on swarmLock; the first one
// initialises the swarm under an exclusive lock and writes swarmMarker;
// whoever finds itself the last holder at release (its lock converts to
// exclusive without waiting) leaves a swarm that swarmMarker says a test
// initialised.
var (
	swarmLock   = filepath.Join(os.TempDir(), "unhost-test-swarm.lock")
	swarmMarker = filepath.Join(os.TempDir(), "unhost-test-swarm.initialised")
)

const gwBridge = "docker_gwbridge"

// held is this process's shared hold on the swarm, kept from the first
// Swarm call until ReleaseSwarm: swarm init and leave disturb the engine's
// embedded DNS for containers of everyone else's tests running meanwhile
// (names stop resolving for a moment), so a test binary initialises and
// leaves a swarm at most once, not once per test.
var held struct {
	sync.Mutex
	f *os.File
}

// Swarm makes sure the engine is a swarm manager until ReleaseSwarm: it
// initialises a single-node swarm (advertised and listening on 127.0.0.1)
// when the engine is in none. Call ReleaseSwarm from TestMain: it leaves
// the swarm, with the docker_gwbridge network it created, once no test
// binary uses it any more. A test on a swarm worker fails.
func Swarm(t testing.TB, cli *client.Client) {
	t.Helper()
	held.Lock()
	defer held.Unlock()
	if held.f != nil {
		return
	}
	f, err := os.OpenFile(swarmLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("swarm lock: %v", err)
	}
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("swarm lock: %v", err)
	}
	if err := ensureSwarm(cli); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		f.Close()
		t.Fatalf("swarm lock: %v", err)
	}
	held.f = f
}

func ensureSwarm(cli *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("engine info: %w", err)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			return errors.New("the engine is a swarm worker: swarm tests need a manager")
		}
		return nil
	case swarm.LocalNodeStateInactive:
	default:
		return fmt.Errorf("the engine's swarm state is %q", info.Swarm.LocalNodeState)
	}
	_, err = cli.NetworkInspect(ctx, gwBridge, network.InspectOptions{})
	marker := "gwbridge-created\n"
	if err == nil {
		marker = "gwbridge-existed\n"
	}
	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return fmt.Errorf("swarm init: %w", err)
	}
	if err := os.WriteFile(swarmMarker, []byte(marker), 0o600); err != nil {
		_ = cli.SwarmLeave(ctx, true)
		return fmt.Errorf("swarm marker: %w", err)
	}
	return nil
}

// ReleaseSwarm drops this process's hold on the swarm (see Swarm) and,
// when no other test binary holds it and a test initialised it, leaves it.
// Call it from TestMain after m.Run.
func ReleaseSwarm() error {
	held.Lock()
	defer held.Unlock()
	if held.f == nil {
		return nil
	}
	defer func() {
		held.f.Close()
		held.f = nil
	}()
	return leaveIfLast(held.f)
}

// leaveIfLast leaves a swarm a test initialised when f's lock converts
// to exclusive without waiting (no other holder).
func leaveIfLast(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil // others still use it; the last one leaves
	}
	marker, err := os.ReadFile(swarmMarker)
	if err != nil {
		return nil // not initialised by a test: never leave it
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("leave the test swarm: %w", err)
	}
	defer cli.Close()
	ctx, cancel := cleanupCtx()
	defer cancel()
	if err := cli.SwarmLeave(ctx, true); err != nil {
		return fmt.Errorf("leave the test swarm: %w", err)
	}
	os.Remove(swarmMarker)
	if strings.TrimSpace(string(marker)) == "gwbridge-created" {
		if err := cli.NetworkRemove(ctx, gwBridge); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: %w", gwBridge, err)
		}
	}
	return nil
}

// NoSwarmUsers drops this process's hold on the swarm and takes the swarm
// lock exclusively for the rest of the test: no other test binary of this
// repository uses the swarm meanwhile, so the test may initialise and
// leave one itself. A swarm a test initialised is left first. It returns
// the engine's swarm state.
func NoSwarmUsers(t testing.TB, cli *client.Client) swarm.LocalNodeState {
	t.Helper()
	if err := ReleaseSwarm(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(swarmLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("swarm lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("swarm lock: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	if err := leaveIfLast(f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatalf("engine info: %v", err)
	}
	return info.Swarm.LocalNodeState
}

// DeployStack deploys file as stack name with the docker CLI (local images:
// --resolve-image never), waits until every service has its replicas
// running, and registers the stack's removal. Call Swarm first.
func DeployStack(t testing.TB, cli *client.Client, name, file string) {
	t.Helper()
	t.Cleanup(func() {
		if err := RemoveStack(cli, name); err != nil {
			t.Errorf("remove stack %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "stack", "deploy", "--resolve-image", "never", "-c", file, name).CombinedOutput()
	if err != nil {
		t.Fatalf("docker stack deploy %s: %v: %s", name, err, out)
	}
	f := filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+name))
	for {
		svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f, Status: true})
		if err != nil {
			t.Fatalf("list services of %s: %v", name, err)
		}
		ready := len(svcs) > 0
		for _, s := range svcs {
			st := s.ServiceStatus
			ready = ready && st != nil && st.DesiredTasks > 0 && st.RunningTasks >= st.DesiredTasks
		}
		if ready {
			return
		}
		select {
		case <-ctx.Done():
			ts, _ := cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: f})
			var states []string
			for _, tk := range ts {
				states = append(states, fmt.Sprintf("%s %s %s", tk.ServiceID[:12], tk.Status.State, tk.Status.Err))
			}
			t.Fatalf("stack %s: not every replica running: %v", name, states)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// RemoveStack removes stack name's services, waits for their task
// containers to go (removing stragglers), then removes its networks,
// secrets and configs.
func RemoveStack(cli *client.Client, name string) error {
	ctx, cancel := cleanupCtx()
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+name))
	var errs []error
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	for _, s := range svcs {
		if err := cli.ServiceRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove service %s: %w", s.Spec.Name, err))
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers: %w", err))
			break
		}
		if len(cs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range cs {
				if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
				}
			}
			break
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list networks: %w", err))
			break
		}
		var last error
		for _, n := range ns {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				last = fmt.Errorf("remove network %s: %w", n.Name, err)
			}
		}
		if len(ns) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, last)
			break
		}
	}
	secs, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list secrets: %w", err))
	}
	for _, s := range secs {
		if err := cli.SecretRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove secret %s: %w", s.Spec.Name, err))
		}
	}
	cfgs, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list configs: %w", err))
	}
	for _, c := range cfgs {
		if err := cli.ConfigRemove(ctx, c.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove config %s: %w", c.Spec.Name, err))
		}
	}
	return errors.Join(errs...)
}
