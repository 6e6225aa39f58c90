package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/internal/dockertest"
	"github.com/unhost/unhost/plan"
	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// TestSwarmMigrateVerify is issue 6's proof. A stack on swarm's host
// networking (the external network named host) runs on a single-node
// swarm: a store listening on TCP, a client holding a connection to it on
// 127.0.0.1, a web listening on a port. It is migrated from what detect
// sees running (migrate --target swarm --endpoint-mode dnsrr --publish-mode
// host --from-running), and verify deploys the result beside it: the
// client reaches its store by name over the internal overlay network, the
// web's host-mode port answers, the store stays unpublished; afterwards
// nothing of verify is left.
func TestSwarmMigrateVerify(t *testing.T) {
	cli := verifytest.Env(t)
	img := os.Getenv("UNHOST_TEST_IMAGE")
	dockertest.Swarm(t, cli)
	s := dockertest.NewScope(t, cli)
	stack := "unhosttest-s" + s.ID()[:10]
	p := dockertest.FreePorts(t, 2)
	store, web := p[0], p[1]
	dir := t.TempDir()
	writeFile(t, dir, "stack.yml", []byte(fmt.Sprintf(`version: "3.9"
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
    command: ["-tcp", "0.0.0.0:%[3]d"]
    networks: [hostnet]
networks:
  hostnet:
    external: true
    name: host
`, img, store, web)))
	dockertest.DeployStack(t, cli, stack, filepath.Join(dir, "stack.yml"))
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", detect.LabelSwarmService+"="+stack+"_client"))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("client task: %d containers, %v", len(cs), err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(dockertest.Logs(t, cli, cs[0].ID), fmt.Sprintf("connected 127.0.0.1:%d ", store)); {
		if time.Now().After(deadline) {
			t.Fatalf("client did not connect to store:\n%s", dockertest.Logs(t, cli, cs[0].ID))
		}
		time.Sleep(100 * time.Millisecond)
	}

	migrateArgs := []string{"migrate", "-f", "stack.yml", "-p", stack, "--from-running", stack,
		"--target", "swarm", "--endpoint-mode", "dnsrr", "--publish-mode", "host"}
	planJSON, errOut, code := runIn(t, dir, append(migrateArgs, "--format", "json")...)
	if code != ExitOK {
		t.Fatalf("migrate --format json: exit %d: %s", code, errOut)
	}
	var pl plan.Plan
	if err := json.Unmarshal([]byte(planJSON), &pl); err != nil {
		t.Fatal(err)
	}
	if pl.Evidence != plan.EvidenceRuntime {
		t.Errorf("plan evidence %q, want runtime (detect read the running stack)", pl.Evidence)
	}
	writeFile(t, dir, "plan.json", []byte(planJSON))
	if _, errOut, code := runIn(t, dir, append(migrateArgs, "--write", "--no-backup")...); code != ExitOK {
		t.Fatalf("migrate --write: exit %d: %s", code, errOut)
	}
	migrated, err := os.ReadFile(filepath.Join(dir, "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(migrated), "name: host") || !strings.Contains(string(migrated), "mode: host") {
		t.Fatalf("migrated stack still on the host network or without host-mode port:\n%s", migrated)
	}

	// --allow-skip: the running original holds the store's port on the
	// host, so the host side of its internal-port check cannot run (skip).
	out, errOut, code := runIn(t, dir, "verify", "-q", "-f", "stack.yml", "--plan", "plan.json",
		"--probe-binary", verifytest.Binary(t), "--timeout", "90s", "--format", "json", "--allow-skip")
	if code != ExitOK {
		t.Fatalf("verify: exit %d: %s\n%s\n%s", code, errOut, out, migrated)
	}
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !rep.Swarm {
		t.Errorf("the stack file was not verified as a stack: %s", out)
	}
	check := func(name, svc, target string) verify.Check {
		t.Helper()
		for _, c := range rep.Checks {
			if c.Name == name && c.Service == svc && strings.Contains(c.Target, target) {
				return c
			}
		}
		t.Fatalf("no %s check for %s %s in %+v", name, svc, target, rep.Checks)
		return verify.Check{}
	}
	s2 := strconv.Itoa(store)
	for _, c := range []struct {
		check          verify.Check
		reasonContains string
	}{
		{check("reference", "client", "store:"+s2), "connected inside client's network namespace"},
		{check("published-port", "web", strconv.Itoa(web)+"/tcp host"), "accepts on the host"},
		{check("stack-up", "store", ""), "every replica running"},
		{check("health", "client", ""), "without restart"},
	} {
		if c.check.Status != verify.Pass || !strings.Contains(c.check.Reason, c.reasonContains) {
			t.Errorf("%s %s %s: %s: %s (want pass, %q)", c.check.Name, c.check.Service, c.check.Target, c.check.Status, c.check.Reason, c.reasonContains)
		}
	}

	if c := check("internal-port", "store", s2+"/tcp"); c.Status != verify.Skip || !strings.Contains(c.Reason, "already held it before the test stack started") {
		t.Errorf("internal-port store: %s: %s (want skip: the original holds the port)", c.Status, c.Reason)
	}
	if rep.Status != verify.Incomplete || len(rep.Skipped) != 1 {
		t.Errorf("status %s, skipped %v: want INCOMPLETE with the one internal-port check", rep.Status, rep.Skipped)
	}

	// Nothing of verify's stack is left; the running original is untouched.
	f := filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+rep.Project))
	if svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err != nil || len(svcs) > 0 {
		t.Errorf("verify left %d services (%v)", len(svcs), err)
	}
	if ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f}); err != nil || len(ns) > 0 {
		t.Errorf("verify left %d networks (%v)", len(ns), err)
	}
	if left, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f}); err != nil || len(left) > 0 {
		t.Errorf("verify left %d containers (%v)", len(left), err)
	}
	orig, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Status: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+stack))})
	if err != nil || len(orig) != 3 {
		t.Fatalf("original stack: %d services, %v", len(orig), err)
	}
	for _, o := range orig {
		if o.ServiceStatus == nil || o.ServiceStatus.RunningTasks != 1 {
			t.Errorf("original service %s not running after verify: %+v", o.Spec.Name, o.ServiceStatus)
		}
	}
}
