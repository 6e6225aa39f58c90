package verify

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// LabelLease marks a run's lease container.
const LabelLease = "io.unhost.verify.lease"

// A run owns its objects on the engine through a lease: a small container
// (the lease program, see leaseprog.go) that reads its stdin, which the run keeps
// attached, and exits (and is removed: AutoRemove) when that connection
// drops, whether the run ended, was killed, or its host went away. Any other
// run, in any PID namespace, container or host, sees from the engine
// whether a run's lease is still there. Labels cannot change after
// creation on API 1.41, and every container of a host shares one boot id,
// so neither a renewed label nor a boot id could say this.
type lease struct {
	id   string
	conn types.HijackedResponse
}

// leaseStartGrace: a lease created but not started within this long
// belongs to a run killed between the two calls.
const leaseStartGrace = time.Minute

// imageGrace: a run's probe image exists a moment before its lease; an
// image with no lease and no other object of its run is spared this long.
const imageGrace = 30 * time.Second

// createLease creates the run's lease container. Created, it already
// counts as live for leaseStartGrace: the run may go on while hold starts it.
// It runs img's entrypoint with the arguments cmd.
func createLease(ctx context.Context, c *client.Client, img string, cmd []string, labels map[string]string) (*lease, error) {
	l := map[string]string{LabelLease: "1"}
	for k, v := range labels {
		l[k] = v
	}
	cr, err := c.ContainerCreate(ctx, &container.Config{
		Image:       img,
		Cmd:         cmd,
		Labels:      l,
		OpenStdin:   true,
		StdinOnce:   true,
		AttachStdin: true,
	}, &container.HostConfig{
		// The lease never uses a network, nor any capability. Not the
		// host's namespace, which would spare the engine creating one:
		// engines with user namespaces (userns-remap) refuse it, and its
		// saving did not show in verify's overhead (BENCHMARKS.md).
		NetworkMode: "none", CapDrop: []string{"ALL"},
		AutoRemove: true,
	}, nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("create lease container: %w", err)
	}
	return &lease{id: cr.ID}, nil
}

// hold attaches to the lease container's stdin and starts it.
func (l *lease) hold(ctx context.Context, c *client.Client) error {
	conn, err := c.ContainerAttach(ctx, l.id, container.AttachOptions{Stream: true, Stdin: true})
	if err != nil {
		return fmt.Errorf("attach lease container: %w", err)
	}
	if err := c.ContainerStart(ctx, l.id, container.StartOptions{}); err != nil {
		conn.Close()
		return fmt.Errorf("start lease container: %w", err)
	}
	l.conn = conn
	return nil
}

// release ends the lease: its container sees end of input and exits.
func (l *lease) release() {
	if l == nil || l.conn.Conn == nil {
		return
	}
	_ = l.conn.CloseWrite()
	l.conn.Close()
}

// HoldLease is what a lease container runs where there is no lease
// program for the architecture: it reads r until it ends.
func HoldLease(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// liveRuns are the runs whose lease container is running (or created a
// moment ago and about to start).
func liveRuns(ctx context.Context, c *client.Client) (map[string]bool, error) {
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelLease))})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	live := map[string]bool{}
	for _, ct := range cs {
		run := ct.Labels[LabelRun]
		switch ct.State {
		case "running", "restarting", "paused":
			live[run] = true
		case "created":
			if time.Since(time.Unix(ct.Created, 0)) < leaseStartGrace {
				live[run] = true
			}
		}
	}
	return live, nil
}
