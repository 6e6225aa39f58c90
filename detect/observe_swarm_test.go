package detect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/unhost/unhost/internal/dockertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := dockertest.ReleaseSwarm(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// TestObserveSwarmStacks deploys two stacks on a (single-node) swarm: one
// on swarm's form of host networking (the external network named host),
// one on overlay networks as migrate --target swarm writes it. Detect
// finds both by their stack labels, names services without the stack
// prefix and reads their sockets: host ports and a loopback edge for the
// first, the overlay network and a container-address edge for the second.
func TestObserveSwarmStacks(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.BuildImage(t, cli, testserverPkg, nil)
	dockertest.Swarm(t, cli)
	s := dockertest.NewScope(t, cli)
	hostStack, overlayStack := "unhosttest-h"+s.ID()[:10], "unhosttest-o"+s.ID()[:10]
	p := dockertest.FreePorts(t, 3)
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	hostFile := write("host.yml", fmt.Sprintf(`version: "3.9"
services:
  store:
    image: %[1]s
    command: ["-tcp", "0.0.0.0:%[2]d"]
    networks: [hostnet]
  client:
    image: %[1]s
    command: ["-connect", "127.0.0.1:%[2]d"]
    networks: [hostnet]
  web:
    image: %[1]s
    command: ["-tcp", "127.0.0.1:%[3]d"]
    networks: [hostnet]
networks:
  hostnet:
    external: true
    name: host
`, img, p[0], p[1]))
	overlayFile := write("overlay.yml", fmt.Sprintf(`version: "3.9"
services:
  store:
    image: %[1]s
    command: ["-tcp", "0.0.0.0:%[2]d"]
    networks: [internal]
    deploy: {endpoint_mode: dnsrr}
  client:
    image: %[1]s
    command: ["-connect", "store:%[2]d"]
    networks: [internal]
    deploy: {endpoint_mode: dnsrr}
networks:
  internal:
    driver: overlay
    internal: true
    attachable: true
`, img, p[2]))
	dockertest.DeployStack(t, cli, hostStack, hostFile)
	dockertest.DeployStack(t, cli, overlayStack, overlayFile)

	ctx := context.Background()
	task := func(stack, svc string) container.InspectResponse {
		t.Helper()
		cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelSwarmService+"="+stack+"_"+svc))})
		if err != nil || len(cs) != 1 {
			t.Fatalf("task of %s_%s: %d containers, %v", stack, svc, len(cs), err)
		}
		in, err := cli.ContainerInspect(ctx, cs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	connected := func(id, addr string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !containsPrefix(dockertest.Logs(t, cli, id), "connected "+addr+" "); {
			if time.Now().After(deadline) {
				t.Fatalf("%.12s never connected to %s; log:\n%s", id, addr, dockertest.Logs(t, cli, id))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	connected(task(hostStack, "client").ID, fmt.Sprintf("127.0.0.1:%d", p[0]))
	connected(task(overlayStack, "client").ID, fmt.Sprintf("store:%d", p[2]))
	dockertest.WaitLog(t, cli, task(hostStack, "web").ID, 10*time.Second, fmt.Sprintf("listening tcp 127.0.0.1:%d", p[1]))

	invs, err := ObserveAll(ctx, Options{Docker: cli, Projects: []string{hostStack, overlayStack}, Samples: 2, Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 2 || invs[0].Project != hostStack || invs[1].Project != overlayStack {
		t.Fatalf("projects: %+v", invs)
	}
	name := func(in container.InspectResponse) []string { return []string{strings.TrimPrefix(in.Name, "/")} }
	l := func(addr string, port int, in container.InspectResponse) []Listener {
		return []Listener{{Protocol: "tcp", Address: addr, Port: port, PID: in.State.Pid, Process: "app"}}
	}
	hc, hs, hw := task(hostStack, "client"), task(hostStack, "store"), task(hostStack, "web")
	want := &Inventory{Version: InventoryVersion, Project: hostStack, Method: "procfs", Samples: 2, Interval: "200ms",
		Services: []ServiceObservation{
			{Service: "client", Containers: name(hc), NetworkMode: "host", Listeners: []Listener{}},
			{Service: "store", Containers: name(hs), NetworkMode: "host", Listeners: l("0.0.0.0", p[0], hs)},
			{Service: "web", Containers: name(hw), NetworkMode: "host", Listeners: l("127.0.0.1", p[1], hw)},
		},
		Edges: []Edge{{From: "client", To: "store", Port: p[0], Protocol: "tcp", Via: "loopback"}},
	}
	oc, ost := task(overlayStack, "client"), task(overlayStack, "store")
	wantOverlay := &Inventory{Version: InventoryVersion, Project: overlayStack, Method: "procfs", Samples: 2, Interval: "200ms",
		Services: []ServiceObservation{
			{Service: "client", Containers: name(oc), NetworkMode: overlayStack + "_internal", Listeners: []Listener{}},
			{Service: "store", Containers: name(ost), NetworkMode: overlayStack + "_internal", Listeners: l("0.0.0.0", p[2], ost)},
		},
		Edges: []Edge{{From: "client", To: "store", Port: p[2], Protocol: "tcp", Via: "container-address"}},
	}
	for i, w := range []*Inventory{want, wantOverlay} {
		w.Sort()
		invs[i].ObservedAt = time.Time{}
		stripStats(invs[i])
		if !reflect.DeepEqual(invs[i], w) {
			t.Errorf("inventory of %s:\n got %s\nwant %s", w.Project, dump(invs[i]), dump(w))
		}
	}
}
