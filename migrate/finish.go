package migrate

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/unhost/unhost/detect"
)

// finish fills the plan's service list, exposure table and runbook.
func (p *planner) finish(res *Result) {
	pl := p.plan
	for _, n := range p.names {
		s := p.svcs[n]
		sp := ServicePlan{Name: n, Action: s.action, Reason: s.reason, Evidence: s.evidence,
			Networks: s.networks, NetworkReason: s.netReason}
		if s.action == ActionMigrate && len(sp.Networks) == 0 {
			sp.Networks = []string{"default"}
		}
		for _, l := range s.listeners {
			lp := ListenerPlan{Protocol: l.proto, Port: l.port, PortEnd: l.portEnd, Address: l.addr, AddressAssumed: l.assumed,
				Decision: l.decision, Reason: l.why, Evidence: redactEvidence(l.evidence), Via: l.via}
			if s.action != ActionMigrate {
				lp.Decision, lp.Reason = DecisionUnchanged, "stays on the host network"
			}
			if l.decision == DecisionPublish {
				lp.Publish = portSpec{ip: l.publishIP, port: l.port, portEnd: l.portEnd, proto: l.proto}.short()
			}
			if l.rewriteBind {
				lp.Reason += "; its bind address " + l.bind.BindText + " is rewritten to listen on all of the container's interfaces"
			}
			if l.blocker != "" {
				lp.Reason += "; BLOCKER: " + l.blocker
			}
			sp.Listeners = append(sp.Listeners, lp)
			if s.action == ActionMigrate || s.action == ActionKeepHost || s.action == ActionNotSelected {
				pl.Exposure = append(pl.Exposure, exposureRow(n, l, s.action == ActionMigrate))
			}
		}
		if s.action == ActionMigrate && len(s.listeners) == 0 {
			p.warn(fmt.Sprintf("%s: no listening port is known from its configuration; nothing is published for it (detect on the running stack, or --publish %s:PORT)", n, n))
		}
		pl.Services = append(pl.Services, sp)
	}
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != ActionMigrate {
			continue
		}
		for _, l := range s.listeners {
			if l.decision == DecisionPublish && (l.publishIP == "" || detect.IsBindAll(l.publishIP)) {
				p.warn(fmt.Sprintf("%s: port %s is published on all interfaces: ports published by Docker bypass host firewalls such as UFW and firewalld (use --publish-address to bind them to one address)", n, portLabel(l)))
			}
		}
	}
	sort.SliceStable(pl.References, func(i, j int) bool {
		a, b := pl.References[i], pl.References[j]
		if a.From != b.From {
			return a.From < b.From
		}
		return a.Where < b.Where
	})
	for i := range pl.References {
		r := &pl.References[i]
		r.Before, r.After = Redact(r.Before), Redact(r.After)
	}
	for i := range pl.ManualSteps {
		pl.ManualSteps[i].What = Redact(pl.ManualSteps[i].What)
	}
	for i := range pl.Blockers {
		pl.Blockers[i].What = Redact(pl.Blockers[i].What)
	}
	sortSteps(pl.ManualSteps)
	sortSteps(pl.Blockers)
	// env files and .env: references there are out of reach
	for _, ef := range p.c.MissingEnvFiles {
		p.warn("env file " + ef + " is missing: references in it could not be checked")
	}
	pl.Changed = len(res.Files) > 0
	if !strings.HasPrefix(pl.ImageMetadata, "available") {
		p.warn("image metadata " + pl.ImageMetadata + ": listeners are judged from the compose files alone; ports that only the image declares are not seen (run where the images are, or use detect)")
	}
	migrated := []string{}
	for _, n := range p.names {
		if p.svcs[n].action == ActionMigrate {
			migrated = append(migrated, n)
		}
	}
	if len(migrated) > 0 {
		p.warn("services behind published ports see the Docker gateway's address instead of their clients' (NAT): allow-lists, fail2ban and logs that rely on client IPs change")
	}
	pl.Runbook = p.runbook(migrated)
}

func sortSteps(s []Step) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Service != s[j].Service {
			return s[i].Service < s[j].Service
		}
		return s[i].Where < s[j].Where
	})
}

func redactEvidence(ev []detect.Evidence) []detect.Evidence {
	out := make([]detect.Evidence, len(ev))
	for i, e := range ev {
		e.Detail = Redact(e.Detail)
		out[i] = e
	}
	return out
}

func portLabel(l *listener) string {
	s := strconv.Itoa(l.port)
	if l.portEnd > l.port {
		s += "-" + strconv.Itoa(l.portEnd)
	}
	return s + "/" + l.proto
}

func reachOf(addr string) string {
	switch {
	case detect.IsBindAll(addr):
		return ReachAll
	case detect.IsLoopback(addr):
		return ReachLoopback
	}
	return "address " + addr
}

func exposureRow(svc string, l *listener, migrated bool) Exposure {
	before := reachOf(l.addr)
	if l.assumed {
		before += " (assumed)"
	}
	row := Exposure{Service: svc, Protocol: l.proto, Port: strings.TrimSuffix(portLabel(l), "/"+l.proto), Before: before}
	switch {
	case !migrated:
		row.After = before + " (host network kept)"
	case l.decision == DecisionPublish:
		ip := l.publishIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		row.After = reachOf(ip) + " (published)"
		if l.blocker != "" {
			row.After = ReachNone + " (blocker: bound to loopback)"
		}
	default:
		row.After = ReachInternal
		if l.blocker != "" {
			row.After = ReachNone + " (blocker: bound to loopback)"
		}
	}
	return row
}

func (p *planner) runbook(migrated []string) Runbook {
	cmd := p.opts.ComposeCommand
	if cmd == "" {
		cmd = "docker compose"
		for _, f := range p.plan.Files[:min(len(p.plan.Files), len(p.c.Project.ComposeFiles))] {
			cmd += " -f " + f
		}
		if p.c.Project.Name != "" {
			cmd += " -p " + p.c.Project.Name
		}
	}
	rb := Runbook{}
	if len(migrated) == 0 {
		rb.Downtime = "none: nothing is migrated"
		return rb
	}
	rb.Stop = []string{cmd + " stop " + strings.Join(migrated, " ")}
	rb.Start = []string{
		cmd + " config -q   # check the rewritten files",
		cmd + " up -d --remove-orphans",
		cmd + " ps",
	}
	rb.Downtime = fmt.Sprintf("the time to stop and recreate %d service(s) (%s): usually seconds, plus their start-up time; images are not rebuilt", len(migrated), strings.Join(migrated, ", "))
	rb.Rollback = []string{
		"restore the files from their *.unhost-backup copies (or git checkout the previous version)",
		cmd + " up -d --remove-orphans --force-recreate",
	}
	rb.Notes = []string{
		"stop the old services before starting the new ones: a host-network service still running holds its host ports, and the published ports cannot bind",
		"run `unhost verify` on the new files before the cutover",
	}
	return rb
}

// Check reloads the project with the rewritten files and confirms that it
// is valid Compose, that no migrated service is left on the host network,
// and that services kept there still are.
func Check(ctx context.Context, c *detect.Compose, res *Result) error {
	if len(res.Files) == 0 {
		return nil
	}
	contents := map[string][]byte{}
	for _, f := range res.Files {
		contents[f.Abs] = f.New
	}
	p, err := c.Reload(ctx, contents)
	if err != nil {
		return fmt.Errorf("the rewritten files do not load: %w", err)
	}
	all := p.AllServices()
	for _, sp := range res.Plan.Services {
		s, ok := all[sp.Name]
		if !ok {
			return fmt.Errorf("service %s is missing from the rewritten files", sp.Name)
		}
		switch sp.Action {
		case ActionMigrate:
			if s.NetworkMode == "host" {
				return fmt.Errorf("service %s is still on the host network after rewriting", sp.Name)
			}
		case ActionKeepHost, ActionNotSelected:
			if s.NetworkMode != "host" {
				return fmt.Errorf("service %s left the host network although it is kept there", sp.Name)
			}
		}
	}
	return nil
}
