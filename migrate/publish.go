package migrate

import (
	"strings"

	"github.com/unhost/unhost/analysis"
)

// Publication with static evidence only. The files alone never show that
// no client outside the stack uses a port: a port that the stack's own
// services use may also serve a host tool (a backup job, an admin CLI) or
// another machine. Leaving it unpublished would cut those clients off on a
// guess. unhost publishes it on loopback: the stack reaches it by service
// name, tools on the host keep reaching it as before, and other machines
// no longer do, which the plan lists as narrowed so the operator decides
// (--publish SERVICE:PORT publishes it as reachable as before; an
// inventory from `unhost detect` shows whether outside clients exist).

// usedInsideStatic is the reason for such a port.
// Swarm cannot publish on loopback only: there the port is published as
// reachable as before (on the nodes).
func usedInsideStatic(users []string, swarm bool) string {
	if swarm {
		return "used inside the stack (by " + strings.Join(users, ", ") + "); the files alone cannot show whether clients outside the stack use it too, " +
			"and swarm cannot publish on loopback only: published as reachable as before (an inventory shows whether outside clients exist)"
	}
	return "used inside the stack (by " + strings.Join(users, ", ") + "); the files alone cannot show whether clients outside the stack use it too: " +
		"published on loopback only, so the stack reaches it by name and the host as before, while other machines no longer do (narrowed: --publish SERVICE:PORT keeps it reachable as before; an inventory shows whether outside clients exist)"
}

// narrowIP is the loopback address to publish a listener bound to addr on:
// ::1 for an IPv6-only bind, 127.0.0.1 otherwise.
func narrowIP(addr string) string {
	a := strings.Trim(addr, "[]")
	if strings.Contains(a, ":") && !analysis.IsBindAll(a) {
		return "::1"
	}
	return "127.0.0.1"
}

// withIPv6Loopback adds [::1] beside every port published on 127.0.0.1,
// for engines with IPv6: host clients that resolve localhost to ::1 first
// (Node 17 and later) reach it too (issue 10, item 13).
func withIPv6Loopback(want []portSpec) []portSpec {
	out := make([]portSpec, 0, len(want))
	for _, w := range want {
		out = append(out, w)
		if w.ip == "127.0.0.1" {
			v6 := w
			v6.ip = "::1"
			out = append(out, v6)
		}
	}
	return out
}
