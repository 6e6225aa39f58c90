package migrate

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// What the operator sees in the runbook (issue 10, "What the operator
// sees"): check the new files before stopping anything, a real smoke test
// after the cutover, a rollback that removes the networks the migration
// created and names the actual backups, the ports that become narrower,
// and the client-address warning only where it is true.

// pubPort is one port a migrated service publishes, for the runbook.
type pubPort struct {
	Service string
	Proto   string
	Port    int
	IP      string // "" for all interfaces
	Before  string // bind address before ("0.0.0.0" when assumed)
}

// smokeTests returns commands that fail when a published TCP port does
// not accept connections from the host (at most max of them).
func smokeTests(ports []pubPort, max int) []string {
	var out []string
	for _, p := range ports {
		if p.Proto != "tcp" || len(out) == max {
			continue
		}
		ip := p.IP
		switch {
		case ip == "" || analysis.IsBindAll(ip):
			ip = "127.0.0.1"
		case strings.Contains(ip, ":"):
			ip = "[" + strings.Trim(ip, "[]") + "]"
		}
		out = append(out, fmt.Sprintf("timeout 5 bash -c '</dev/tcp/%s/%d' && echo '%s %d/tcp answers'   # smoke test: %s", ip, p.Port, p.Service, p.Port, p.Service))
	}
	return out
}

// narrowed lists the ports that were reachable more widely before: a
// listener on all interfaces published on loopback only (or not at all).
func narrowed(ports []pubPort) []string {
	var out []string
	for _, p := range ports {
		if analysis.IsBindAll(p.Before) && p.IP != "" && analysis.IsLoopback(p.IP) {
			out = append(out, fmt.Sprintf("%s port %d/%s was reachable on all interfaces and is published on %s only: other machines no longer reach it (--publish %s:%d keeps it as before)", p.Service, p.Port, p.Proto, p.IP, p.Service, p.Port))
		}
	}
	return out
}

// natWarnings says where clients' addresses change, and which case applies
// (moby/moby#15086). With the default iptables DNAT, remote IPv4 clients
// of a published port keep their address; connections that go through
// Docker's userland proxy show the bridge gateway's address instead: those
// from the host itself (to loopback or to the host's own address), and
// IPv6 clients where ip6tables is off.
func natWarnings(ports []pubPort, ipv6 bool) []string {
	var loop, all []string
	for _, p := range ports {
		label := fmt.Sprintf("%s %d/%s", p.Service, p.Port, p.Proto)
		if p.IP != "" && analysis.IsLoopback(p.IP) {
			loop = append(loop, label)
		} else {
			all = append(all, label)
		}
	}
	var out []string
	if len(loop) > 0 {
		out = append(out, "clients on the host connect to "+strings.Join(loop, ", ")+" through Docker's userland proxy: the service sees the bridge gateway's address instead of 127.0.0.1 (allow-lists and logs that trust loopback change)")
		if !ipv6 {
			out = append(out, "ports published on 127.0.0.1 only are missed by host clients that resolve localhost to ::1 first (Node 17 and later, some curl builds): use 127.0.0.1 in their URLs, or also publish [::1]:PORT where the engine has IPv6 ("+strings.Join(loop, ", ")+")")
		}
	}
	if len(all) > 0 {
		out = append(out, "remote IPv4 clients of "+strings.Join(all, ", ")+" keep their address (iptables DNAT); connections from the host itself (hairpin) and IPv6 clients without ip6tables go through the userland proxy and show the bridge gateway's address")
	}
	return out
}

// newNetworks returns the engine names of the networks the migration
// brings into use: those it defines, and the project's default network
// when no service used it before.
func newNetworks(project string, defined []string, defaultNew bool) []string {
	var out []string
	if defaultNew {
		out = append(out, project+"_default")
	}
	for _, n := range defined {
		out = append(out, project+"_"+n)
	}
	sort.Strings(out)
	return out
}

// restoreLine names the backups of the files the migration rewrites.
func restoreLine(files []string) string {
	var b []string
	for _, f := range files {
		b = append(b, "cp "+f+".unhost-backup "+f)
	}
	return "restore the files from the backups `migrate --write` printed (" + strings.Join(b, "; ") +
		"; the name is .unhost-backup.N when an older, different backup was there), or git checkout the previous version"
}

// NameBackups puts the backups that were actually written (file -> backup
// path) into the plan's rollback, for callers that write the files.
func NameBackups(pl *plan.Plan, backups map[string]string) {
	if len(backups) == 0 {
		return
	}
	files := make([]string, 0, len(backups))
	for f := range backups {
		files = append(files, f)
	}
	sort.Strings(files)
	var b []string
	for _, f := range files {
		b = append(b, "cp "+backups[f]+" "+f)
	}
	for i, l := range pl.Runbook.Rollback {
		if strings.HasPrefix(l, "restore the files from") {
			pl.Runbook.Rollback[i] = "restore the files from their backups: " + strings.Join(b, "; ")
		}
	}
}

// improveRunbook applies the above to the compose runbook (hook at the end
// of planner.runbook, bridge target).
func (p *planner) improveRunbook(rb *plan.Runbook) {
	ports := p.publishedPorts()
	// check the rewritten files before stopping production
	var start []string
	for _, l := range rb.Start {
		if strings.Contains(l, " config -q") {
			rb.Stop = append([]string{l}, rb.Stop...)
			continue
		}
		if strings.HasSuffix(l, " up -d --remove-orphans") {
			l += " --wait   # waits until every service is running, and healthy where it has a healthcheck"
		}
		start = append(start, l)
	}
	rb.Start = append(start, smokeTests(ports, 8)...)
	var files []string
	for _, f := range p.plan.Files {
		files = append(files, filepath.ToSlash(f))
	}
	var defined []string
	for _, n := range p.plan.Networks {
		defined = append(defined, n.Name)
	}
	var rollback []string
	for _, l := range rb.Rollback {
		if strings.HasPrefix(l, "restore the files from") {
			l = restoreLine(files)
		}
		rollback = append(rollback, l)
	}
	if nets := newNetworks(p.c.Project.Name, defined, p.defaultNetworkNew()); len(nets) > 0 {
		rollback = append(rollback, "docker network rm "+strings.Join(nets, " ")+"   # the networks the migration created; compose leaves them behind")
	}
	rb.Rollback = rollback
	rb.Notes = append(rb.Notes, narrowed(ports)...)
	rb.Notes = append(rb.Notes, p.unpublishedNotes()...)
	rb.Notes = append(rb.Notes, "after the cutover, `unhost verify --in-place` (with --http SERVICE:PORT/PATH=STATUS for the checks you rely on) runs the same checks against the new stack")
}

// defaultNetworkNew reports whether no service used the project's default
// network before the migration (every service was on the host network or
// on networks of its own).
func (p *planner) defaultNetworkNew() bool {
	for _, s := range p.all {
		if s.NetworkMode != "" {
			continue
		}
		if len(s.Networks) == 0 {
			return false
		}
		if _, ok := s.Networks["default"]; ok {
			return false
		}
	}
	return true
}

// eachPublished calls f for every listener a migrated service publishes,
// in service order.
func (p *planner) eachPublished(f func(name string, l *listener)) {
	for _, n := range p.names {
		if s := p.svcs[n]; s.action == plan.ActionMigrate {
			for _, l := range s.listeners {
				if l.decision == plan.DecisionPublish {
					f(n, l)
				}
			}
		}
	}
}

// publishedPorts lists what migrated services publish, sorted.
func (p *planner) publishedPorts() []pubPort {
	var out []pubPort
	p.eachPublished(func(n string, l *listener) {
		before := l.addr
		if before == "" {
			before = "0.0.0.0"
		}
		out = append(out, pubPort{Service: n, Proto: l.proto, Port: l.port, IP: l.publishIP, Before: before})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// restoreEdited names, in the rollback, only the files the edits changed:
// the plan is complete before any text is edited, so until then it names
// every file of the project.
func restoreEdited(pl *plan.Plan, files []FileResult) {
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.ToSlash(f.Path))
	}
	if len(paths) == 0 {
		return
	}
	for i, l := range pl.Runbook.Rollback {
		if strings.HasPrefix(l, "restore the files from") {
			pl.Runbook.Rollback[i] = restoreLine(paths)
		}
	}
}

// unpublishedNotes lists the ports that stop being reachable from the host
// at all: listeners of migrated services that are not published.
func (p *planner) unpublishedNotes() []string {
	var out []string
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		for _, l := range s.listeners {
			if l.decision == plan.DecisionInternal && l.blocker == "" {
				out = append(out, fmt.Sprintf("%s port %s is no longer reachable from the host or other machines: only services of the stack reach it, by name (--publish %s:%d publishes it)", n, portLabel(l), n, l.port))
			}
		}
	}
	return out
}
