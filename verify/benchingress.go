package verify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/unhost/unhost/verify/netbench"
)

// ServeEcho serves the bench's echo protocol on addr until ctx ends: what
// the swarm service of the ingress path runs (it has no stdin to serve
// probe batches on).
func ServeEcho(ctx context.Context, addr string) error {
	s, err := netbench.Listen(ctx, addr)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// ingressSpec is the swarm service of the ingress path: one echo server
// task, its port published in ingress mode (the routing mesh, on every
// node's interfaces, as ingress publishing always is), labelled as part of
// the run's stack so that its teardown and the sweep of dead runs remove
// it with the stack.
func (r *runner) ingressSpec() swarm.ServiceSpec {
	labels := maps.Clone(r.labels)
	labels[LabelStack] = r.name
	one := uint64(1)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: r.name + "-bench-ingress", Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: r.image, Args: []string{"probe", "echo", ":" + strconv.Itoa(benchEchoPort)}, Labels: labels},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: benchEchoPort, PublishMode: swarm.PortConfigPublishModeIngress,
		}}},
	}
}

// ingressPath starts the ingress echo service and waits until its task
// runs and its port is published; the client is the host-network probe,
// through 127.0.0.1 and the routing mesh.
func (b *bench) ingressPath(ctx context.Context) (*benchPath, error) {
	r := b.r
	created, err := r.cli.ServiceCreate(ctx, r.ingressSpec(), swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		return nil, fmt.Errorf("create the ingress echo service: %w", err)
	}
	b.swarmSvcs = append(b.swarmSvcs, created.ID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		svc, _, err := r.cli.ServiceInspectWithRaw(ctx, created.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return nil, fmt.Errorf("inspect the ingress echo service: %w", err)
		}
		tasks, err := r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", created.ID), filters.Arg("desired-state", "running"))})
		if err != nil {
			return nil, fmt.Errorf("list the ingress echo task: %w", err)
		}
		running := false
		for _, t := range tasks {
			running = running || t.Status.State == swarm.TaskStateRunning
		}
		if ports := svc.Endpoint.Ports; running && len(ports) > 0 && ports[0].PublishedPort != 0 {
			port := strconv.Itoa(int(ports[0].PublishedPort))
			return &benchPath{name: PathIngress, client: b.host, addr: net.JoinHostPort("127.0.0.1", port),
				route: fmt.Sprintf("ingress routing mesh (IPVS): published port %s of a one-task echo service, on every interface while the bench runs", port)}, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the ingress echo service did not run with a published port within 30s")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
