package verify_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/unhost/unhost/internal/dockertest"
	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

func writeStack(t *testing.T, text string) string {
	t.Helper()
	return verifytest.WriteFile(t, t.TempDir(), "stack.yml", text)
}

// assertNoStack fails when a service of a verify run of this process is
// left on the swarm.
func assertNoStack(t *testing.T, cli *client.Client) {
	t.Helper()
	svcs, err := cli.ServiceList(context.Background(), swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", fmt.Sprintf("%s=%d", verify.LabelPID, os.Getpid())))})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	for _, s := range svcs {
		t.Errorf("verify left service %s behind", s.Spec.Name)
	}
}

// A stack that relies on virtual IPs (the default endpoint_mode vip) and
// the ingress routing mesh: on a kernel without IPVS those checks are
// skipped with the reason, not failed; with IPVS they must pass.
func TestSwarmVIPAndIngress(t *testing.T) {
	cli := verifytest.Env(t)
	dockertest.Swarm(t, cli)
	file := writeStack(t, `version: "3.9"
services:
  store:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:15432"]
  client:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-connect", "store:15432"]
  web:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:18080"]
    ports: ["18080:18080"]
`)
	rep := runVerify(t, file, func(o *verify.Options) { o.Target = verify.TargetSwarm })
	assertNoStack(t, cli)
	ref := find(t, rep, verify.CheckRef, "client", "store:15432")
	port := find(t, rep, verify.CheckPort, "web", "18080/tcp ingress")
	if verify.HasIPVS("/proc") {
		if rep.Failed() || ref.Status != verify.Pass || port.Status != verify.Pass {
			t.Fatalf("with IPVS every check should pass: %+v", rep.Checks)
		}
		return
	}
	if rep.Status != verify.Incomplete || !rep.Failed() {
		t.Fatalf("without IPVS, VIP and ingress checks must be skipped (INCOMPLETE, not a pass), not failed: %s %+v", rep.Status, rep.Checks)
	}
	for _, c := range []verify.Check{ref, port} {
		if c.Status != verify.Skip || !strings.Contains(c.Reason, verify.NoIPVSReason) {
			t.Errorf("%s %s: %s: %s", c.Name, c.Service, c.Status, c.Reason)
		}
	}
	for _, svc := range []string{"client", "store", "web"} {
		if c := find(t, rep, verify.CheckStack, svc, ""); c.Status != verify.Pass {
			t.Errorf("stack-up %s: %s: %s", svc, c.Status, c.Reason)
		}
	}
}

// A task that exits is a failed stack-up check with swarm's reason, not an
// error, and the stack is still removed.
func TestSwarmTaskFails(t *testing.T) {
	cli := verifytest.Env(t)
	dockertest.Swarm(t, cli)
	file := writeStack(t, `version: "3.9"
services:
  crash:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-no-such-flag"]
    deploy: {endpoint_mode: dnsrr}
`)
	rep := runVerify(t, file, func(o *verify.Options) { o.Target = verify.TargetSwarm; o.Timeout = 30 * time.Second })
	assertNoStack(t, cli)
	c := find(t, rep, verify.CheckStack, "crash", "")
	if c.Status != verify.Fail || !strings.Contains(c.Reason, "exit code 2") {
		t.Errorf("stack-up crash: %s: %s", c.Status, c.Reason)
	}
}

// Without a swarm, verify refuses unless --init-swarm; with it, it
// initialises one, verifies, and leaves it, docker_gwbridge included.
// A swarm that was there before is used and kept.
func TestSwarmInitAndLeave(t *testing.T) {
	cli := verifytest.Env(t)
	state := dockertest.NoSwarmUsers(t, cli)
	ctx := context.Background()
	_, gwErr := cli.NetworkInspect(ctx, "docker_gwbridge", network.InspectOptions{})
	file := writeStack(t, `services:
  web:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:18080"]
    ports: [{target: 18080, published: 18080, mode: host}]
    deploy: {endpoint_mode: dnsrr}
`)
	opts := verify.Options{Files: []string{file}, Timeout: time.Minute, ProbeBinary: verifytest.Binary(t)}
	if state == swarm.LocalNodeStateInactive {
		if _, err := verify.Run(ctx, opts); err == nil || !strings.Contains(err.Error(), "--init-swarm") {
			t.Errorf("without a swarm nor --init-swarm: %v", err)
		}
	}
	opts.InitSwarm = true
	rep, err := verify.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Swarm || rep.Failed() {
		t.Errorf("swarm %v, checks %+v", rep.Swarm, rep.Checks)
	}
	if c := find(t, rep, verify.CheckPort, "web", "18080/tcp host"); !strings.Contains(c.Reason, "accepts on the host") {
		t.Errorf("published-port web: %s: %s", c.Status, c.Reason)
	}
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Swarm.LocalNodeState != state {
		t.Errorf("swarm state after verify %q, before %q", info.Swarm.LocalNodeState, state)
	}
	if state == swarm.LocalNodeStateInactive && gwErr != nil {
		if _, err := cli.NetworkInspect(ctx, "docker_gwbridge", network.InspectOptions{}); err == nil {
			t.Error("verify left the docker_gwbridge network of the swarm it initialised")
		}
	}
}

// verify --bench on a swarm stack adds the overlay path (throwaway probes
// on an attachable overlay network of the run) and says why the ingress
// routing mesh was not measured.
func TestSwarmBenchOverlay(t *testing.T) {
	cli := verifytest.Env(t)
	dockertest.Swarm(t, cli)
	file := writeStack(t, `version: "3.9"
services:
  store:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:15432"]
    deploy:
      endpoint_mode: dnsrr
`)
	rep := runVerify(t, file, func(o *verify.Options) {
		o.Target, o.Bench, o.BenchTime, o.AllowSkip = verify.TargetSwarm, true, 20*time.Second, true
	})
	assertNoStack(t, cli)
	if rep.Failed() || rep.BenchEnv == nil || rep.BenchEnv.NotRun != "" {
		t.Fatalf("verify --bench on swarm: %s %+v %+v", rep.Status, rep.BenchEnv, rep.Checks)
	}
	var overlay, ingress *verify.BenchEntry
	for i, e := range rep.Bench {
		switch e.Path {
		case verify.PathOverlay:
			overlay = &rep.Bench[i]
		case verify.PathIngress:
			ingress = &rep.Bench[i]
		}
	}
	if overlay == nil || overlay.RTTN == 0 || overlay.RTTP50us <= 0 || overlay.ThroughputMbit <= 0 || !strings.HasPrefix(overlay.Route, "overlay network unhost-verify-") {
		t.Errorf("overlay path: %+v", overlay)
	}
	if ingress == nil || ingress.RTTN != 0 || ingress.Note == "" {
		t.Errorf("ingress: want a note saying why it was not measured: %+v", ingress)
	}
	if !verify.HasIPVS("/proc") && !strings.Contains(ingress.Note, "no IPVS") {
		t.Errorf("ingress note on a kernel without IPVS: %q", ingress.Note)
	}
}
