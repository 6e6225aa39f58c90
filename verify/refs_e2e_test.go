package verify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// The shop stack comes up healthy, but its api still looks for its database
// at tcp:localhost:PORT and for its cache at tcp:cache:WRONG_PORT: verify
// must fail and name both (the service, the field, the address, and for the
// localhost one the service that listens there); fixed, it passes.
func TestSchemeHostPortReferences(t *testing.T) {
	verifytest.Env(t)
	rep := runVerify(t, verifytest.Stack("shop"), func(o *verify.Options) { o.RefWait = time.Second })
	if !rep.Failed() || rep.Status != verify.Fail {
		t.Fatalf("verify passed a stack with broken references: %s %+v", rep.Status, rep.Checks)
	}
	local := find(t, rep, verify.CheckRef, "api", "localhost:25432")
	for _, want := range []string{"api environment.UPSTREAMS localhost:25432", "nothing listens on 25432/tcp inside api's own network namespace", "db listens on 25432: use db:25432"} {
		if local.Status != verify.Fail || !strings.Contains(local.Reason, want) {
			t.Errorf("localhost reference: %s: %q lacks %q", local.Status, local.Reason, want)
		}
	}
	wrong := find(t, rep, verify.CheckRef, "api", "cache:26380")
	if wrong.Status != verify.Fail || !strings.Contains(wrong.Reason, "api environment.UPSTREAMS cache:26380") || !strings.Contains(wrong.Reason, "connection refused") {
		t.Errorf("service reference: %s: %s", wrong.Status, wrong.Reason)
	}
	if c := find(t, rep, verify.CheckRef, "web", "api:29000"); c.Status != verify.Pass {
		t.Errorf("web -> api: %s: %s", c.Status, c.Reason)
	}
	for _, c := range rep.Checks {
		if c.Status == verify.Fail && c.Name != verify.CheckRef {
			t.Errorf("unexpected failure: %+v", c)
		}
	}

	rep = runVerify(t, verifytest.Stack("shop-fixed"), nil)
	if rep.Failed() || rep.Status != verify.Pass {
		t.Fatalf("the fixed stack: %s %+v", rep.Status, rep.Checks)
	}
	for _, target := range []string{"db:25432", "cache:26379"} {
		if c := find(t, rep, verify.CheckRef, "api", target); c.Status != verify.Pass {
			t.Errorf("api -> %s: %s: %s", target, c.Status, c.Reason)
		}
	}
}

// A port that the original published (here: a host-network listener on all
// interfaces) and that the migrated files no longer publish fails with
// --original; published as before, it passes.
func TestExposureAgainstOriginal(t *testing.T) {
	verifytest.Env(t)
	dir := t.TempDir()
	write := func(name, text string) string { return verifytest.WriteFile(t, dir, name, text) }
	orig := write("original.yaml", `services:
  web:
    image: ${UNHOST_TEST_IMAGE}
    network_mode: host
    command: ["-tcp", "0.0.0.0:28081"]
`)
	lost := write("lost.yaml", `services:
  web:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:28081"]
`)
	kept := write("kept.yaml", `services:
  web:
    image: ${UNHOST_TEST_IMAGE}
    command: ["-tcp", "0.0.0.0:28081"]
    ports: ["28081:28081"]
`)
	rep := runVerify(t, lost, func(o *verify.Options) { o.Originals = []string{orig} })
	if !rep.Failed() || rep.Status != verify.Fail || len(rep.Exposure) != 1 {
		t.Fatalf("a port published before and not now passed: %s %+v", rep.Status, rep.Exposure)
	}
	if e := rep.Exposure[0]; e.Status != verify.Fail || !strings.Contains(e.Reason, "web 28081/tcp: reachable on all interfaces:28081 before, stack-internal now") {
		t.Errorf("exposure row: %+v", e)
	}
	rep = runVerify(t, kept, func(o *verify.Options) { o.Originals = []string{orig} })
	if rep.Failed() || len(rep.Exposure) != 1 || rep.Exposure[0].Status != verify.Pass {
		t.Errorf("published as before: %s %+v %+v", rep.Status, rep.Exposure, rep.Checks)
	}
}
