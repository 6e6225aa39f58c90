package verify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/unhost/unhost/verify"
	"github.com/unhost/unhost/verify/verifytest"
)

// TestHealthchecks runs a stack whose services have healthchecks: the one
// that becomes healthy passes, the one whose healthcheck keeps failing is a
// failed check that says why, and nothing is left behind (verifytest.Env).
func TestHealthchecks(t *testing.T) {
	verifytest.Env(t)
	rep := runVerify(t, verifytest.Stack("health"), func(o *verify.Options) { o.Timeout = 30 * time.Second })
	if !rep.Failed() {
		t.Fatalf("a stack with a service that never becomes healthy passed: %+v", rep.Checks)
	}
	if c := find(t, rep, verify.CheckStack, "db", ""); c.Status != verify.Pass {
		t.Errorf("db has a passing healthcheck: %s: %s", c.Status, c.Reason)
	}
	c := find(t, rep, verify.CheckStack, "api", "")
	if c.Status != verify.Fail || !strings.Contains(c.Reason, "unhealthy") || !strings.Contains(c.Reason, "127.0.0.1:19999") {
		t.Errorf("api: %s: %s; want a failure saying its healthcheck on 127.0.0.1:19999 is unhealthy", c.Status, c.Reason)
	}
}
