package detect

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/unhost/unhost/internal/dockertest"
)

const testserverPkg = "github.com/unhost/unhost/internal/testserver"

// composeLabels are the labels docker compose would put on a container.
func composeLabels(project, service string) map[string]string {
	return map[string]string{LabelComposeProject: project, LabelComposeService: service}
}

// bridgeGateway is the default bridge's gateway: the address of docker0 (the
// network's IPAM config on Engine 20.10 often leaves Gateway empty).
func bridgeGateway(t *testing.T, cli *client.Client) string {
	t.Helper()
	n, err := cli.NetworkInspect(context.Background(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway
		}
	}
	name := n.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("default bridge gateway: %v", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatalf("%s has no IPv4 address", name)
	return ""
}

// TestObserveEngine runs a small host-network project on the real engine and
// checks that detection reports exactly its sockets and connections.
func TestObserveEngine(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.BuildImage(t, cli, testserverPkg, nil)
	s := dockertest.NewScope(t, cli)
	project := "unhosttest-" + s.ID()
	p := dockertest.FreePorts(t, 6)
	gw := bridgeGateway(t, cli)
	hp := func(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

	srvID := s.Run(t, project+"-srv-1", &container.Config{Image: img, Labels: composeLabels(project, "srv"), Cmd: []string{
		"-tcp", hp("0.0.0.0", p[0]), "-tcp", hp("127.0.0.1", p[1]), "-tcp", hp("::", p[2]),
		"-udp", hp("0.0.0.0", p[3]), "-tcp", hp("0.0.0.0", p[4]), "-tcp6only", hp("::", p[4]),
	}}, &container.HostConfig{NetworkMode: "host"}, nil)
	dockertest.WaitLog(t, cli, srvID, 10*time.Second, "listening udp 0.0.0.0:"+strconv.Itoa(p[3]))
	sideID := s.Run(t, project+"-side-1", &container.Config{Image: img, Labels: composeLabels(project, "side"), Cmd: []string{
		"-udp", hp("0.0.0.0", p[5]),
	}}, &container.HostConfig{NetworkMode: container.NetworkMode("container:" + srvID)}, nil)
	cliID := s.Run(t, project+"-client-1", &container.Config{Image: img, Labels: composeLabels(project, "client"), Cmd: []string{
		"-connect", hp("127.0.0.1", p[0]), "-connect", hp("127.0.0.1", p[1]), "-connect", hp("::1", p[2]),
	}}, &container.HostConfig{NetworkMode: "host"}, nil)
	workerID := s.Run(t, project+"-worker-1", &container.Config{Image: img, Labels: composeLabels(project, "worker"), Cmd: []string{
		"-connect", hp(gw, p[0]),
	}}, &container.HostConfig{NetworkMode: "bridge"}, nil)
	dockertest.WaitLog(t, cli, sideID, 10*time.Second, "listening udp 0.0.0.0:"+strconv.Itoa(p[5]))
	connected := func(id string, addrs ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for _, a := range addrs {
			for !containsPrefix(dockertest.Logs(t, cli, id), "connected "+a+" ") {
				if time.Now().After(deadline) {
					t.Fatalf("%.12s never connected to %s; log:\n%s", id, a, dockertest.Logs(t, cli, id))
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	connected(cliID, hp("127.0.0.1", p[0]), hp("127.0.0.1", p[1]), hp("::1", p[2]))
	connected(workerID, hp(gw, p[0]))
	// A host process outside the project: this test.
	outside, err := net.Dial("tcp", hp("127.0.0.1", p[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()

	ins, err := cli.ContainerInspect(context.Background(), srvID)
	if err != nil {
		t.Fatal(err)
	}
	srvPID := ins.State.Pid
	sideIns, err := cli.ContainerInspect(context.Background(), sideID)
	if err != nil {
		t.Fatal(err)
	}

	inv, err := Observe(context.Background(), Options{Docker: cli, Projects: []string{project}, Samples: 2, Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := func(proto, addr string, port int, dual bool, pid int) Listener {
		return Listener{Protocol: proto, Address: addr, Port: port, DualStack: dual, PID: pid, Process: "app"}
	}
	srvListeners := []Listener{
		l("tcp", "0.0.0.0", p[0], false, srvPID), l("tcp", "127.0.0.1", p[1], false, srvPID),
		l("tcp", "::", p[2], true, srvPID),
		l("tcp", "0.0.0.0", p[4], false, srvPID), l("tcp", "::", p[4], false, srvPID), // the second is IPV6_V6ONLY
		l("udp", "0.0.0.0", p[3], false, srvPID),
	}
	want := &Inventory{
		Version: InventoryVersion, Project: project, Method: "procfs", Samples: 2, Interval: "200ms",
		Services: []ServiceObservation{
			{Service: "client", Containers: []string{project + "-client-1"}, NetworkMode: "host", Listeners: []Listener{}},
			{Service: "side", Containers: []string{project + "-side-1"}, NetworkMode: "service:srv",
				Listeners: []Listener{l("udp", "0.0.0.0", p[5], false, sideIns.State.Pid)}},
			{Service: "srv", Containers: []string{project + "-srv-1"}, NetworkMode: "host", Listeners: srvListeners,
				OutsideClients: []OutsideClient{{Port: p[1], Protocol: "tcp", Peers: []string{"127.0.0.1"}}}},
			{Service: "worker", Containers: []string{project + "-worker-1"}, NetworkMode: "bridge", Listeners: []Listener{}},
		},
		Edges: []Edge{
			{From: "client", To: "srv", Port: p[0], Protocol: "tcp", Via: "loopback"},
			{From: "client", To: "srv", Port: p[1], Protocol: "tcp", Via: "loopback"},
			{From: "client", To: "srv", Port: p[2], Protocol: "tcp", Via: "loopback"},
			{From: "worker", To: "srv", Port: p[0], Protocol: "tcp", Via: "gateway"},
		},
	}
	want.Sort()
	inv.ObservedAt = time.Time{}
	stripStats(inv)
	if !reflect.DeepEqual(inv, want) {
		t.Errorf("inventory:\n got %s\nwant %s", dump(inv), dump(want))
	}
}

func containsPrefix(log, prefix string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

func dump(inv *Inventory) string { return fmt.Sprintf("%+v", *inv) }
