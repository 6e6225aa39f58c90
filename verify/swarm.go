package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// Targets of Options.Target.
const (
	TargetAuto    = ""        // swarm when the files look like a stack (analysis.IsSwarm)
	TargetCompose = "compose" // docker compose v2
	TargetSwarm   = "swarm"   // docker stack deploy on a swarm manager
)

// LabelStack is the label docker stack deploy puts on everything of a stack.
const LabelStack = "com.docker.stack.namespace"

// NoIPVSReason explains checks skipped on a kernel without IPVS.
const NoIPVSReason = "this kernel has no IPVS: virtual IPs and the routing mesh cannot work here; use endpoint_mode dnsrr and mode: host to test on this machine"

// HasIPVS tells whether the kernel under procRoot ("/proc") has IPVS, which
// swarm's virtual IPs (endpoint_mode vip) and ingress routing mesh need.
// Without the ip_vs module neither /proc/net/ip_vs nor
// /proc/sys/net/ipv4/vs exists; nothing is loaded to find out.
func HasIPVS(procRoot string) bool {
	for _, p := range []string{"net/ip_vs", "sys/net/ipv4/vs"} {
		if _, err := os.Stat(filepath.Join(procRoot, p)); err == nil {
			return true
		}
	}
	return false
}

// swarmRun is the swarm part of a runner.
type swarmRun struct {
	ipvs        bool
	initialised bool // this run initialised the swarm and leaves it
	hadGWBridge bool // docker_gwbridge existed before the swarm was initialised
	services    map[string]swarm.Service
	failures    map[string]string // service -> why a task failed or was rejected
	cliVersion  string
}

// ensureSwarm checks that the engine is a swarm manager, or, with
// InitSwarm, initialises a single-node swarm on an engine in none.
func (r *runner) ensureSwarm(ctx context.Context) error {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("engine info: %w", err)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			return errors.New("this engine is a swarm worker: run verify on a swarm manager")
		}
		// A swarm another verify run initialised: the last run out leaves it.
		if node, _, err := r.cli.NodeInspectWithRaw(ctx, info.Swarm.NodeID); err == nil {
			if v, ok := node.Spec.Labels[LabelSwarm]; ok {
				r.swarm.initialised = r.opts.InitSwarm
				r.swarm.hadGWBridge = v == "gwbridge-existed"
			}
		}
		return nil
	case swarm.LocalNodeStateInactive:
	default:
		return fmt.Errorf("this engine's swarm state is %q: verify needs a swarm manager", info.Swarm.LocalNodeState)
	}
	if !r.opts.InitSwarm {
		return errors.New("the engine is not in a swarm: a stack is verified with docker stack deploy on a swarm manager (--init-swarm makes a single-node swarm for the run and leaves it afterwards)")
	}
	if _, err := r.cli.NetworkInspect(ctx, "docker_gwbridge", network.InspectOptions{}); err == nil {
		r.swarm.hadGWBridge = true
	}
	r.progress("initialising a single-node swarm")
	if _, err := r.cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return fmt.Errorf("swarm init: %w", err)
	}
	r.swarm.initialised = true
	// Say on the node that verify made this swarm, for the run that
	// leaves it last.
	mark := "gwbridge-created"
	if r.swarm.hadGWBridge {
		mark = "gwbridge-existed"
	}
	if info, err := r.cli.Info(ctx); err == nil {
		if node, _, err := r.cli.NodeInspectWithRaw(ctx, info.Swarm.NodeID); err == nil {
			spec := node.Spec
			if spec.Labels == nil {
				spec.Labels = map[string]string{}
			}
			spec.Labels[LabelSwarm] = mark
			if err := r.cli.NodeUpdate(ctx, node.ID, node.Version, spec); err != nil {
				r.progress("warning: label the swarm node: %v", err)
			}
		}
	}
	return nil
}

// LabelSwarm marks the node of a swarm that verify initialised (--init-swarm).
const LabelSwarm = "io.unhost.verify.swarm"

// leaveSwarm leaves the swarm this run initialised, and removes the
// docker_gwbridge network that swarm created.
func (r *runner) leaveSwarm(ctx context.Context) {
	if !r.swarm.initialised {
		return
	}
	// Another run may have deployed its stack on the swarm this run made:
	// leaving would take it down. The last one out leaves.
	svcs, err := r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelRun))})
	if err != nil {
		r.progress("warning: not leaving the swarm this run initialised: list services: %v", err)
		return
	}
	if len(svcs) > 0 {
		r.progress("not leaving the swarm this run initialised: %d service(s) of other verify runs remain (docker swarm leave --force once they are gone)", len(svcs))
		return
	}
	r.progress("leaving the swarm this run initialised")
	if err := r.cli.SwarmLeave(ctx, true); err != nil {
		r.progress("warning: swarm leave: %v", err)
		return
	}
	r.swarm.initialised = false
	if !r.swarm.hadGWBridge {
		if err := r.cli.NetworkRemove(ctx, "docker_gwbridge"); err != nil && !cerrdefs.IsNotFound(err) {
			r.progress("warning: remove docker_gwbridge: %v", err)
		}
	}
}

// runSwarm deploys the prepared project as a stack and checks it.
func (r *runner) runSwarm(ctx context.Context, p *types.Project, specs []httpSpec, probeBin, version string) (*Report, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, errors.New("no docker CLI on PATH: a stack is deployed with docker stack deploy")
	}
	var vout bytes.Buffer
	if err := r.docker.Run(ctx, &vout, &vout, "version", "--format", "{{.Client.Version}}"); err == nil {
		r.swarm.cliVersion = strings.TrimSpace(vout.String())
	}
	r.swarm.ipvs = HasIPVS("/proc")
	tmp, err := os.MkdirTemp("", "unhost-verify-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	file, err := writeStack(r.prep.Project, version, tmp)
	if err != nil {
		return nil, err
	}
	internal, preHeld := r.beginReport(&Report{Project: r.name, Compose: strings.TrimSpace("docker stack deploy " + r.swarm.cliVersion), Swarm: true})

	if len(r.prep.Project.Services) == 0 {
		// Nothing to deploy: no swarm is needed to say so.
		r.refChecks(map[string][]task{})
		return r.report, nil
	}
	if err := r.ensureSwarm(ctx); err != nil {
		return nil, err
	}
	// From here on the engine may hold objects of this run.
	r.teardownStack = r.removeSwarmStack
	if r.opts.Keep {
		r.report.KeptHint = fmt.Sprintf("--keep: the test stack is still up as %s; remove it with: docker stack rm %s (the next unhost verify, or unhost verify --cleanup, removes it too: its lease ends with this process)", r.name, r.name)
		if r.swarm.initialised {
			r.report.KeptHint += "; then leave the swarm verify initialised: docker swarm leave --force"
		}
	}

	<-r.leaseHeld
	if r.leaseErr != nil {
		return nil, r.leaseErr
	}
	if r.holdErr != nil {
		return nil, r.holdErr
	}
	r.progress("deploying stack %s", r.name)
	upCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	var out bytes.Buffer
	upErr := r.docker.Run(upCtx, &out, &out, "stack", "deploy", "--resolve-image", "never", "-c", file, r.name)
	if upErr != nil {
		upErr = fmt.Errorf("docker stack deploy: %w: %s", upErr, lastLines(out.String(), 3))
	} else {
		upErr = r.waitServices(upCtx)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("verify interrupted: %w", ctx.Err())
	}
	if err := r.probeImage(); err != nil {
		return nil, err
	}
	if err := r.collectTasks(ctx); err != nil {
		return nil, err
	}
	if upErr != nil {
		r.swarmFailed(upErr)
		return r.report, nil
	}
	for _, name := range sortedKeys(r.swarm.services) {
		if f := r.swarm.failures[name]; f != "" {
			r.report.add(Check{Name: CheckStack, Service: name, Status: Fail, Reason: "task " + f})
			continue
		}
		r.report.add(Check{Name: CheckStack, Service: name, Status: Pass, Reason: "every replica running"})
	}
	r.progress("stack is up; checking")

	tasks := map[string][]task{}
	r.swarmPortChecks(tasks)
	r.refChecks(tasks)
	r.httpChecks(tasks, specs)
	r.runProbes(ctx, tasks, r.start)
	r.swarmInternalChecks(ctx, internal, preHeld)
	if err := r.watch(ctx); err != nil {
		return nil, err
	}
	r.noteTaskFailures(ctx)
	r.healthChecks(ctx)
	r.benchSpecs = specs
	r.runBench(ctx)
	return r.report, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// stackFilter selects the objects of this run's stack.
func (r *runner) stackFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelStack+"="+r.name))
}

// serviceName is the stack's service name without the stack prefix.
func (r *runner) serviceName(s swarm.Service) string {
	if s.Spec.Labels[LabelStack] != r.name {
		return ""
	}
	return strings.TrimPrefix(s.Spec.Name, r.name+"_")
}

// waitServices waits until every service of the stack has its replicas
// running, or a task failed or was rejected (swarm would retry it: the
// stack is not going to come up as it is).
func (r *runner) waitServices(ctx context.Context) error {
	want := len(r.prep.Project.Services)
	var readySince time.Time
	for {
		list, err := r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: r.stackFilter(), Status: true})
		if err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		ready := 0
		for _, s := range list {
			if st := s.ServiceStatus; st != nil && st.DesiredTasks > 0 && st.RunningTasks >= st.DesiredTasks {
				ready++
			}
		}
		if f, err := r.taskFailures(ctx); err == nil && len(f) > 0 {
			return errors.New("a task failed")
		}
		// A task that dies at start is "running" for an instant: every
		// replica must be seen running for a second before it counts.
		if len(list) >= want && ready == len(list) {
			if readySince.IsZero() {
				readySince = time.Now()
			} else if time.Since(readySince) >= time.Second {
				return nil
			}
		} else {
			readySince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every replica running within %s", r.opts.Timeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// taskFailures finds, per service, the latest task of the stack that
// failed, was rejected or ended with an error.
func (r *runner) taskFailures(ctx context.Context) (map[string]string, error) {
	ts, err := r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: r.stackFilter()})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	names := map[string]string{}
	svcs, err := r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: r.stackFilter()})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range svcs {
		names[s.ID] = r.serviceName(s)
	}
	out := map[string]string{}
	latest := map[string]time.Time{}
	for _, t := range ts {
		svc := names[t.ServiceID]
		if svc == "" {
			continue
		}
		bad := t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected ||
			t.Status.Err != "" && t.Status.State != swarm.TaskStateRunning
		if !bad || t.Status.Timestamp.Before(latest[svc]) {
			continue
		}
		latest[svc] = t.Status.Timestamp
		why := string(t.Status.State)
		if t.Status.Err != "" {
			why += ": " + t.Status.Err
		}
		if cs := t.Status.ContainerStatus; cs != nil && cs.ExitCode != 0 {
			why += fmt.Sprintf(" (exit code %d)", cs.ExitCode)
		}
		out[svc] = why
	}
	return out, nil
}

// collectTasks finds each service and the container of its first running
// task (lowest slot).
func (r *runner) collectTasks(ctx context.Context) error {
	r.containers = map[string]container.InspectResponse{}
	r.swarm.services = map[string]swarm.Service{}
	svcs, err := r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: r.stackFilter()})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	byID := map[string]string{}
	for _, s := range svcs {
		name := r.serviceName(s)
		if name == "" {
			continue
		}
		r.swarm.services[name] = s
		byID[s.ID] = name
	}
	ts, err := r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: r.stackFilter()})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Slot != ts[j].Slot {
			return ts[i].Slot < ts[j].Slot
		}
		return ts[i].ID < ts[j].ID
	})
	for _, t := range ts {
		svc := byID[t.ServiceID]
		cs := t.Status.ContainerStatus
		if svc == "" || t.Status.State != swarm.TaskStateRunning || cs == nil || cs.ContainerID == "" {
			continue
		}
		if _, ok := r.containers[svc]; ok {
			continue
		}
		in, err := r.cli.ContainerInspect(ctx, cs.ContainerID)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("inspect task of %s: %w", svc, err)
		}
		r.containers[svc] = in
	}
	r.swarm.failures, err = r.taskFailures(ctx)
	return err
}

// swarmFailed reports, per service, why the stack did not come up.
func (r *runner) swarmFailed(err error) {
	found := false
	for _, svc := range sortedKeys(r.prep.Project.Services) {
		s, deployed := r.swarm.services[svc]
		_, running := r.containers[svc]
		switch {
		case r.swarm.failures[svc] != "":
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Fail, Reason: "task " + r.swarm.failures[svc]})
			found = true
		case !deployed:
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Fail, Reason: "no service was created"})
			found = true
		case !running || s.ServiceStatus != nil && s.ServiceStatus.RunningTasks < s.ServiceStatus.DesiredTasks:
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Fail, Reason: "not every replica is running (tasks pending: no node satisfies its placement, or it is still starting)"})
			found = true
		default:
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Pass, Reason: "every replica running"})
		}
	}
	if !found {
		r.report.add(Check{Name: CheckStack, Service: "*", Status: Fail, Reason: err.Error()})
	}
}

// noteTaskFailures re-reads the tasks for the health check: a task that
// failed after the stack came up was replaced by swarm (a restart).
func (r *runner) noteTaskFailures(ctx context.Context) {
	if f, err := r.taskFailures(ctx); err == nil {
		r.swarm.failures = f
	}
}

// endpointPorts are the ports the service's endpoint publishes, by
// "PORT/proto" of the target, as "published (mode)".
func endpointPorts(s swarm.Service) map[string][]string {
	out := map[string][]string{}
	add := func(ports []swarm.PortConfig) {
		for _, p := range ports {
			key := fmt.Sprintf("%d/%s", p.TargetPort, protoOr(string(p.Protocol)))
			v := fmt.Sprintf("%d (%s)", p.PublishedPort, p.PublishMode)
			if !contains(out[key], v) {
				out[key] = append(out[key], v)
			}
		}
	}
	if s.Spec.EndpointSpec != nil {
		add(s.Spec.EndpointSpec.Ports)
	}
	add(s.Endpoint.Ports)
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// swarmPortChecks: a host-mode port is in the task container's port table,
// something listens behind it inside the task's namespace and the host
// port accepts; an ingress port is in the service's endpoint and listened
// on inside — or skipped on a kernel without IPVS.
func (r *runner) swarmPortChecks(tasks map[string][]task) {
	for _, m := range r.prep.Ports {
		c, ok := r.containers[m.Service]
		if !ok {
			continue
		}
		m := m
		svc := m.Service
		target := fmt.Sprintf("%d/%s %s", m.Target, m.Protocol, m.Mode)
		if m.Real != "" {
			target = fmt.Sprintf("%s -> %d/%s %s (test %s)", m.Real, m.Target, m.Protocol, m.Mode, m.Test)
		}
		check := Check{Name: CheckPort, Service: svc, Target: target}
		var where string
		switch m.Mode {
		case "ingress":
			if !r.swarm.ipvs {
				check.Status, check.Reason = Skip, fmt.Sprintf("%s publishes %d/%s through the ingress routing mesh: %s", svc, m.Target, m.Protocol, NoIPVSReason)
				r.report.add(check)
				continue
			}
			pub := endpointPorts(r.swarm.services[svc])[fmt.Sprintf("%d/%s", m.Target, m.Protocol)]
			if m.Test != "" && !contains(pub, m.Test+" (ingress)") || len(pub) == 0 {
				check.Status, check.Reason = Fail, fmt.Sprintf("%d/%s is not in %s's endpoint (published: %s)", m.Target, m.Protocol, svc, orNone(pub))
				r.report.add(check)
				continue
			}
			where = "published on port " + strings.Join(pub, ",") + " of every node through the routing mesh"
		default:
			var hostPorts []string
			for _, b := range c.NetworkSettings.Ports[containerPort(m.Target, m.Protocol)] {
				if !contains(hostPorts, b.HostPort) {
					hostPorts = append(hostPorts, b.HostPort)
				}
			}
			sort.Strings(hostPorts)
			if len(hostPorts) == 0 || m.Test != "" && !contains(hostPorts, m.Test) {
				check.Status, check.Reason = Fail, fmt.Sprintf("%d/%s is not in the port table of %s's task (published: %s)", m.Target, m.Protocol, svc, orNone(hostPorts))
				r.report.add(check)
				continue
			}
			where = "published on host port " + strings.Join(hostPorts, ",")
			if m.Test == "" {
				m.Test = hostPorts[0]
			}
		}
		t := task{ProbeTask: ProbeTask{Kind: "listening", Addr: fmt.Sprintf("%d/%s", m.Target, m.Protocol)}, wait: r.opts.Timeout}
		t.report = func(res ProbeResult) {
			check := check
			if !res.OK {
				check.Status, check.Reason = Fail, fmt.Sprintf("%s, but inside %s's task namespace: %s", where, svc, res.Detail)
				r.report.add(check)
				return
			}
			check.Status, check.Reason = Pass, fmt.Sprintf("%s; %s inside %s's task namespace", where, res.Detail, svc)
			if m.Mode == "host" && m.Protocol == "tcp" {
				// Something listens behind it: a connect through the
				// host port now says that the port really leads there.
				addr := net.JoinHostPort("127.0.0.1", m.Test)
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					check.Status, check.Reason = Fail, fmt.Sprintf("%s and %s inside %s's task namespace, but %s does not accept on the host: %v", where, res.Detail, svc, addr, dialReason(err))
				} else {
					c.Close()
					check.Reason += "; " + addr + " accepts on the host"
				}
			}
			r.report.add(check)
		}
		tasks[svc] = append(tasks[svc], t)
	}
}

// refSkip says why a reference cannot be checked on this machine: a
// service reached by its virtual IP needs IPVS.
func (r *runner) refSkip(ref Ref) string {
	if r.swarm == nil || r.swarm.ipvs {
		return ""
	}
	svc := hostService(r.prep.Original, ref.Host)
	if svc == "" {
		return ""
	}
	s, ok := r.swarm.services[svc]
	if !ok {
		return ""
	}
	mode := swarm.ResolutionModeVIP
	if s.Spec.EndpointSpec != nil && s.Spec.EndpointSpec.Mode != "" {
		mode = s.Spec.EndpointSpec.Mode
	}
	if mode != swarm.ResolutionModeVIP {
		return ""
	}
	return fmt.Sprintf("%s is reached by its virtual IP (endpoint_mode vip): %s", svc, NoIPVSReason)
}

// hostService is the service that a host name of the stack names: a
// service name or a network alias (swarm ignores hostname and links).
func hostService(services map[string]types.ServiceConfig, host string) string {
	host = strings.ToLower(host)
	for _, name := range sortedKeys(services) {
		if strings.ToLower(name) == host {
			return name
		}
	}
	for _, name := range sortedKeys(services) {
		for _, n := range services[name].Networks {
			if n == nil {
				continue
			}
			for _, a := range n.Aliases {
				if strings.ToLower(a) == host {
					return name
				}
			}
		}
	}
	return ""
}

// swarmInternalChecks: a stack-internal port is not published by its
// service's endpoint (spec or actual), then the checks of compose verify.
func (r *runner) swarmInternalChecks(ctx context.Context, ports []internalPort, preHeld map[int]bool) {
	var rest []internalPort
	for _, ip := range ports {
		target := fmt.Sprintf("%d/%s", ip.Port, ip.Proto)
		s, ok := r.swarm.services[ip.Service]
		if ok {
			if pub := endpointPorts(s)[target]; len(pub) > 0 {
				r.report.add(Check{Name: CheckInternal, Service: ip.Service, Target: target, Status: Fail,
					Reason: fmt.Sprintf("%s is meant to stay inside the stack but %s's endpoint publishes it on %s", target, ip.Service, strings.Join(pub, ", "))})
				continue
			}
		}
		rest = append(rest, ip)
	}
	r.internalChecks(ctx, rest, preHeld)
}

// removeSwarmStack removes the stack (docker stack rm) and waits until
// its task containers and networks are gone; Run's teardown removes the
// probes, volumes and everything else labelled with the run, then leaves
// a swarm this run initialised.
func (r *runner) removeSwarmStack(ctx context.Context) {
	r.progress("removing stack %s", r.name)
	var out bytes.Buffer
	if err := r.docker.Run(ctx, &out, &out, "stack", "rm", r.name); err != nil {
		r.progress("warning: docker stack rm: %v: %s", err, lastLines(out.String(), 3))
	}
	if err := removeStack(ctx, r.cli, r.name); err != nil {
		r.progress("warning: %v", err)
	}
}

// removeStack removes what is left of stack name: services, then (once
// their task containers are gone) containers, networks, secrets and
// configs with its namespace label. It waits for the containers: a
// network with endpoints cannot be removed.
func removeStack(ctx context.Context, c *client.Client, name string) error {
	f := filters.NewArgs(filters.Arg("label", LabelStack+"="+name))
	var errs []error
	if svcs, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err == nil {
		for _, s := range svcs {
			if err := c.ServiceRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove service %s: %w", s.Spec.Name, err))
			}
		}
	}
	// Swarm stops and removes the task containers of removed services
	// itself; those still there after a while are removed by force.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list task containers: %w", err))
			break
		}
		if len(cs) == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for _, ct := range cs {
				if err := c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("remove task container %.12s: %w", ct.ID, err))
				}
			}
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Networks: retried while swarm releases the endpoints.
	for deadline := time.Now().Add(30 * time.Second); ; {
		ns, err := c.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			errs = append(errs, fmt.Errorf("list networks: %w", err))
			break
		}
		var last error
		for _, n := range ns {
			if err := c.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				last = fmt.Errorf("remove network %s: %w", n.Name, err)
			}
		}
		if len(ns) == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if last != nil {
				errs = append(errs, last)
			}
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if secs, err := c.SecretList(ctx, swarm.SecretListOptions{Filters: f}); err == nil {
		for _, s := range secs {
			if err := c.SecretRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove secret %s: %w", s.Spec.Name, err))
			}
		}
	}
	if cfgs, err := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: f}); err == nil {
		for _, s := range cfgs {
			if err := c.ConfigRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove config %s: %w", s.Spec.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove stack %s: %w", name, errors.Join(errs...))
	}
	return nil
}

// isManager tells whether the engine can list services.
func isManager(ctx context.Context, c *client.Client) bool {
	info, err := c.Info(ctx)
	return err == nil && info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && info.Swarm.ControlAvailable
}

// cleanupStacks removes the stacks of earlier verify runs (services
// labelled with a run id) whose owner is gone, or only onlyRun's.
func cleanupStacks(ctx context.Context, c *client.Client, onlyRun string, stale func(map[string]string) bool) ([]Leftover, error) {
	if !isManager(ctx, c) {
		return nil, nil
	}
	f := filters.NewArgs()
	if onlyRun != "" {
		f.Add("label", LabelRun+"="+onlyRun)
	} else {
		f.Add("label", LabelRun)
	}
	svcs, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	stacks := map[string]bool{}
	for _, s := range svcs {
		if ns := s.Spec.Labels[LabelStack]; ns != "" && strings.HasPrefix(ns, "unhost-verify-") && stale(s.Spec.Labels) {
			stacks[ns] = true
		}
	}
	var removed []Leftover
	var errs []error
	for _, ns := range sortedKeys(stacks) {
		if err := removeStack(ctx, c, ns); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, Leftover{"stack", ns})
	}
	return removed, errors.Join(errs...)
}
