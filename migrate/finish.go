package migrate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// finish fills the plan's service list, exposure table and runbook: after
// it the plan is complete, before any text is edited.
func (p *planner) finish() {
	pl := p.plan
	for _, n := range p.names {
		s := p.svcs[n]
		sp := plan.ServicePlan{Name: n, Action: s.action, Reason: s.reason, Evidence: s.evidence,
			Networks: s.networks, NetworkReason: s.netReason, Finding: s.finding} // hook(decide): Finding (gate.go)
		if s.action == plan.ActionMigrate && len(sp.Networks) == 0 {
			sp.Networks = []string{"default"}
		}
		for _, l := range s.listeners {
			lp := plan.ListenerPlan{Protocol: l.proto, Port: l.port, PortEnd: l.portEnd, Address: l.addr, AddressAssumed: l.assumed,
				Decision: l.decision, Reason: l.why, Evidence: redactEvidence(l.evidence), Via: l.via}
			if s.action != plan.ActionMigrate {
				lp.Decision, lp.Reason = plan.DecisionUnchanged, "stays on the host network"
			}
			if l.decision == plan.DecisionPublish {
				lp.Publish = portSpec{ip: l.publishIP, port: l.port, portEnd: l.portEnd, proto: l.proto}.short()
			}
			if l.rewriteBind {
				lp.Reason += "; its bind address " + l.bind.BindText + " is rewritten to listen on all of the container's interfaces"
			}
			if l.blocker != "" {
				lp.Reason += "; BLOCKER: " + l.blocker
			}
			sp.Listeners = append(sp.Listeners, lp)
			if s.action == plan.ActionMigrate || s.action == plan.ActionKeepHost || s.action == plan.ActionNotSelected {
				pl.Exposure = append(pl.Exposure, exposureRow(n, l, s.action == plan.ActionMigrate))
			}
		}
		if s.action == plan.ActionMigrate && len(s.listeners) == 0 {
			p.warn(fmt.Sprintf("%s: no listening port is known from its configuration; nothing is published for it (detect on the running stack, or --publish %s:PORT)", n, n))
		}
		pl.Services = append(pl.Services, sp)
	}
	for n, l := range p.published() {
		if p.swarm() {
			p.warn(fmt.Sprintf("%s: port %s is published on every node address: ports published by Docker bypass host firewalls such as UFW and firewalld (--publish-mode host and the nodes' firewalls narrow it)", n, portLabel(l)))
			continue
		}
		if l.publishIP == "" || analysis.IsBindAll(l.publishIP) {
			p.warn(fmt.Sprintf("%s: port %s is published on all interfaces: ports published by Docker bypass host firewalls such as UFW and firewalld (use --publish-address to bind them to one address)", n, portLabel(l)))
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
	if !strings.HasPrefix(pl.ImageMetadata, "available") {
		p.warn("image metadata " + pl.ImageMetadata + ": listeners are judged from the compose files alone; ports that only the image declares are not seen (run where the images are, or use detect)")
	}
	migrated := []string{}
	for _, n := range p.names {
		if p.svcs[n].action == plan.ActionMigrate {
			migrated = append(migrated, n)
		}
	}
	// hook(decide): client addresses change only in the cases that apply
	// (runbook.go)
	for _, w := range natWarnings(p.publishedPorts(), p.opts.LoopbackIPv6) {
		p.warn(w)
	}
	if p.clashed {
		migrated = nil // hook(decide): nothing is written (clash.go)
	}
	pl.Runbook = p.runbook(migrated)
	if p.swarm() {
		pl.PublishMode, pl.EndpointMode = p.opts.PublishMode, p.opts.EndpointMode
		pl.IgnoredBySwarm = p.ignoredBySwarm()
	}
}

func sortSteps(s []plan.Step) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Service != s[j].Service {
			return s[i].Service < s[j].Service
		}
		return s[i].Where < s[j].Where
	})
}

func redactEvidence(ev []analysis.Evidence) []analysis.Evidence {
	out := make([]analysis.Evidence, len(ev))
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
	case analysis.IsBindAll(addr):
		return plan.ReachAll
	case analysis.IsLoopback(addr):
		return plan.ReachLoopback
	}
	return "address " + addr
}

func exposureRow(svc string, l *listener, migrated bool) plan.Exposure {
	before := reachOf(l.addr)
	if l.assumed {
		before += " (assumed)"
	}
	row := plan.Exposure{Service: svc, Protocol: l.proto, Port: strings.TrimSuffix(portLabel(l), "/"+l.proto), Before: before}
	switch {
	case !migrated:
		row.After = before + " (host network kept)"
	case l.decision == plan.DecisionPublish:
		ip := l.publishIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		row.After = reachOf(ip) + " (published)"
		if l.blocker != "" {
			row.After = plan.ReachNone + " (blocker: bound to loopback)"
		}
	default:
		row.After = plan.ReachInternal
		if l.blocker != "" {
			row.After = plan.ReachNone + " (blocker: bound to loopback)"
		}
	}
	return row
}

// swarmIgnored are service keys that docker stack deploy ignores.
var swarmIgnored = map[string]string{
	"build":         "stack deploy does not build images: build and push them first",
	"cgroup_parent": "", "container_name": "swarm names tasks itself",
	"depends_on": "swarm starts services in any order: make clients retry", "devices": "",
	"external_links": "", "links": "", "network_mode": "", "restart": "use deploy.restart_policy",
	"security_opt": "", "userns_mode": "", "privileged": "", "extra_hosts": "host-gateway is not supported by swarm services on Engine 20.10",
}

// ignoredBySwarm lists the keys of the services that stack deploy ignores.
func (p *planner) ignoredBySwarm() []plan.Step {
	var out []plan.Step
	for _, n := range p.names {
		for _, nr := range p.serviceNodes(n) {
			m := nr.Node
			if ports := load.MapValue(m, "ports"); ports != nil {
				for _, it := range ports.Content {
					ip := ""
					if _, v := load.MapEntry(it, "host_ip"); v != nil {
						ip = v.Value
					} else if pcs, err := analysis.ParsePortItem(it); err == nil && len(pcs) > 0 {
						ip = pcs[0].HostIP
					}
					if ip != "" && !analysis.IsBindAll(ip) {
						out = append(out, plan.Step{Service: n, Where: nr.File.PosOf(it).String(),
							What: "ports: host address " + ip + " is ignored by docker stack deploy: the port is open on every node address"})
					}
				}
			}
			for i := 0; i+1 < len(m.Content); i += 2 {
				k := m.Content[i]
				why, ok := swarmIgnored[k.Value]
				if !ok {
					continue
				}
				if why == "" {
					why = "ignored by docker stack deploy"
				}
				out = append(out, plan.Step{Service: n, Where: nr.File.PosOf(k).String(), What: k.Value + ": " + why})
			}
		}
	}
	sortSteps(out)
	return slices.Compact(out)
}

func (p *planner) runbook(migrated []string) plan.Runbook {
	if p.swarm() {
		return p.swarmRunbook(migrated)
	}
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
	rb := plan.Runbook{}
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
	p.improveRunbook(&rb) // hook(decide): check first, smoke test, rollback, narrowed (runbook.go)
	return rb
}

// Check reloads the project with the rewritten files and confirms that it
// is valid Compose (compose-go's parse, interpolation, schema and semantic
// validation, merge and normalisation), and then what compose-go's
// consistency check would say of what a rewrite changes: every network a
// service joins is defined, and none has both network_mode and networks.
// Then that no migrated service is left on the host network, and that
// services kept there still are.
func Check(ctx context.Context, c *load.Compose, res *Result) error {
	if len(res.Files) == 0 {
		return nil
	}
	contents := map[string][]byte{}
	for _, f := range res.Files {
		contents[f.Abs] = f.New
	}
	model, err := c.Reload(ctx, contents)
	if err != nil {
		return fmt.Errorf("the rewritten files do not load: %w", err)
	}
	services, _ := model["services"].(map[string]any)
	networks, _ := model["networks"].(map[string]any)
	hostKeys := analysis.HostNetworkKeys(c)
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc, _ := services[name].(map[string]any)
		mode, _ := svc["network_mode"].(string)
		nets := serviceNetworks(svc)
		if mode != "" && len(nets) > 0 {
			return fmt.Errorf("service %s declares both network_mode and networks", name)
		}
		for _, n := range nets {
			if _, ok := networks[n]; !ok && n != "default" {
				return fmt.Errorf("service %s joins network %s, which is not defined", name, n)
			}
		}
		if err := checkPorts(svc["ports"]); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
	}
	for _, sp := range res.Plan.Services {
		raw, ok := services[sp.Name]
		if !ok {
			if _, disabled := c.Project.DisabledServices[sp.Name]; disabled {
				continue
			}
			return fmt.Errorf("service %s is missing from the rewritten files", sp.Name)
		}
		svc, _ := raw.(map[string]any)
		mode, _ := svc["network_mode"].(string)
		var sc types.ServiceConfig // (its network fields are promoted: no literal)
		sc.NetworkMode, sc.Networks = mode, map[string]*types.ServiceNetworkConfig{}
		for _, n := range serviceNetworks(svc) {
			sc.Networks[n] = nil
		}
		onHost := analysis.OnHostNetwork(sc, hostKeys)
		switch sp.Action {
		case plan.ActionMigrate:
			if onHost {
				return fmt.Errorf("service %s is still on the host network after rewriting", sp.Name)
			}
		case plan.ActionKeepHost, plan.ActionNotSelected:
			if !onHost {
				return fmt.Errorf("service %s left the host network although it is kept there", sp.Name)
			}
		}
	}
	return nil
}

// serviceNetworks lists the networks a service of a compose model joins
// (networks: as a list or a mapping).
func serviceNetworks(svc map[string]any) []string {
	var out []string
	switch n := svc["networks"].(type) {
	case []any:
		for _, x := range n {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case map[string]any:
		for k := range n {
			out = append(out, k)
		}
	}
	return out
}
func (p *planner) swarmRunbook(migrated []string) plan.Runbook {
	stack := p.c.Project.Name
	var files []string
	for _, f := range p.plan.Files[:min(len(p.plan.Files), len(p.c.Project.ComposeFiles))] {
		files = append(files, "-c "+f)
	}
	deploy := "docker stack deploy " + strings.Join(files, " ") + " " + stack
	rb := plan.Runbook{}
	if len(migrated) == 0 {
		rb.Downtime = "none: nothing is migrated"
		return rb
	}
	rb.Stop = []string{"docker stack rm " + stack + "   # frees the host ports the old tasks hold; wait until its tasks are gone"}
	rb.Start = []string{
		"docker stack config " + strings.Join(files, " ") + " > /dev/null   # check the rewritten files (Docker 25+), or deploy to a test swarm",
		deploy,
		"docker stack services " + stack,
	}
	rb.Downtime = fmt.Sprintf("the time to remove the stack and start %d migrated service(s) (%s) with their replicas: usually under a minute", len(migrated), strings.Join(migrated, ", "))
	rb.Rollback = []string{
		"restore the files from their *.unhost-backup copies (or git checkout the previous version)",
		"docker stack rm " + stack,
		strings.Replace(deploy, "docker stack deploy", "docker stack deploy", 1),
	}
	rb.Notes = []string{
		"a rolling update in place does not work here: tasks on the host network hold their ports until they stop",
		"run `unhost verify --swarm` on a test swarm first",
	}
	return rb
}

// checkPorts parses a service's ports as compose-go does when it binds the
// model (the schema takes any string).
func checkPorts(v any) error {
	list, _ := v.([]any)
	for _, item := range list {
		switch p := item.(type) {
		case string:
			if _, err := types.ParsePortConfig(p); err != nil {
				return fmt.Errorf("ports: %q: %w", p, err)
			}
		case map[string]any:
			if _, ok := p["target"]; !ok {
				return fmt.Errorf("ports: an entry without target")
			}
		}
	}
	return nil
}
