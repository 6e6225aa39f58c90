package verify

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// httpSpec is SERVICE:PORT/PATH=STATUS.
type httpSpec struct {
	Service string
	Port    int
	Path    string
	Status  int
	Raw     string
}

// CheckHTTPSpec validates one SERVICE:PORT/PATH=STATUS (for flag errors).
func CheckHTTPSpec(spec string) error {
	_, err := parseHTTPSpecs([]string{spec})
	return err
}

func parseHTTPSpecs(list []string) ([]httpSpec, error) {
	var out []httpSpec
	for _, raw := range list {
		bad := fmt.Errorf("bad http check %q: want SERVICE:PORT/PATH=STATUS", raw)
		addr, status, ok := strings.Cut(raw, "=")
		if !ok {
			status = "200"
		}
		svc, rest, ok := strings.Cut(addr, ":")
		if !ok || svc == "" {
			return nil, bad
		}
		portStr, path, _ := strings.Cut(rest, "/")
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 {
			return nil, bad
		}
		code, err := strconv.Atoi(status)
		if err != nil || code < 100 || code > 599 {
			return nil, bad
		}
		out = append(out, httpSpec{Service: svc, Port: port, Path: "/" + path, Status: code, Raw: raw})
	}
	return out, nil
}

func (r *runner) httpChecks(tasks map[string][]task, specs []httpSpec) {
	for _, h := range specs {
		h := h
		check := Check{Name: CheckHTTP, Service: h.Service, Target: fmt.Sprintf("%d%s=%d", h.Port, h.Path, h.Status)}
		if _, ok := r.containers[h.Service]; !ok {
			check.Status, check.Reason = Fail, fmt.Sprintf("%s has no running container", h.Service)
			if _, ok := r.prep.Original[h.Service]; !ok {
				check.Reason = fmt.Sprintf("no service %s in the stack", h.Service)
			}
			for _, s := range r.prep.Skipped {
				if s.Service == h.Service {
					check.Status, check.Reason = Skip, s.Service+" is skipped"
				}
			}
			r.report.add(check)
			continue
		}
		url := fmt.Sprintf("http://127.0.0.1:%d%s", h.Port, h.Path)
		t := task{ProbeTask: ProbeTask{Kind: "http", Addr: url, Want: h.Status}, wait: r.opts.RefWait}
		t.report = func(res ProbeResult) {
			check := check
			check.Status = Pass
			if !res.OK {
				check.Status = Fail
			}
			check.Reason = fmt.Sprintf("GET %s inside %s's network namespace: %s", url, h.Service, res.Detail)
			r.report.add(check)
		}
		tasks[h.Service] = append(tasks[h.Service], t)
	}
}

// probedServices are the services that checks will likely probe inside:
// those with published ports or HTTP checks, and those holding a
// reference to a loopback address or to the stack. A probe container
// costs the engine about as much as one of the stack's, so none is
// started ahead for the others; a service missed here gets its probe when
// its checks run.
func (r *runner) probedServices(specs []httpSpec) map[string]bool {
	out := map[string]bool{}
	for _, m := range r.prep.Ports {
		out[m.Service] = true
	}
	for _, h := range specs {
		out[h.Service] = true
	}
	hosts := knownHosts(r.prep.Original)
	for _, ref := range collectRefs(r.stack.Facts, r.stack.Outside, r.prep.Original, r.plan) {
		host := strings.Trim(ref.Host, "[]")
		if _, inStack := hosts[host]; ref.Port > 0 && ref.Variable == "" && (inStack || analysis.IsLoopback(host)) {
			out[ref.From] = true
		}
	}
	return out
}

// startSessionsDuringUp starts a probe in the namespace of the first
// container of each service in probed as soon as that container runs,
// while compose is still waiting for the stack, so that probe start-up
// overlaps compose's wait.
func (r *runner) startSessionsDuringUp(ctx context.Context, probed map[string]bool, imageReady, upDone <-chan struct{}) {
	select {
	case <-imageReady:
	case <-upDone:
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	f := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+r.name), filters.Arg("status", "running"))
	for {
		cs, err := r.cli.ContainerList(ctx, container.ListOptions{Filters: f})
		if err == nil {
			for _, c := range cs {
				if c.Labels["com.docker.compose.container-number"] != "1" || !probed[c.Labels["com.docker.compose.service"]] {
					continue
				}
				r.mu.Lock()
				_, ok := r.sessions[c.ID]
				if !ok {
					if r.sessions == nil {
						r.sessions = map[string]*session{}
					}
					r.sessions[c.ID] = nil // starting
				}
				r.mu.Unlock()
				if ok {
					continue
				}
				wg.Add(1)
				go func(id string) {
					defer wg.Done()
					// A failed start leaves no session; runProbes retries.
					defer recoverTo(func(e error) { r.progress("warning: probe start: %v", e) })
					r.startSession(ctx, id)
				}(c.ID)
			}
		}
		select {
		case <-upDone:
			return
		case <-ctx.Done():
			return
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// startSession starts a probe for container id and records it; a failure
// leaves no session, and runProbes tries again.
func (r *runner) startSession(ctx context.Context, id string) {
	s, err := startSession(ctx, r.cli, r.image, id, r.labels, func(pid string) {
		r.mu.Lock()
		r.probes = append(r.probes, pid)
		r.mu.Unlock()
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		delete(r.sessions, id)
		return
	}
	if r.sessions == nil {
		r.sessions = map[string]*session{}
	}
	r.sessions[id] = s
}

// runProbes sends each service's tasks to the probe in its namespace, all
// services at once, starting probes that are not running yet.
func (r *runner) runProbes(ctx context.Context, tasks map[string][]task, start time.Time) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for svc, list := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A panic here must not lose this service's checks: it is a
			// failed check of its own, and the teardown still runs.
			defer recoverTo(func(e error) {
				mu.Lock()
				defer mu.Unlock()
				r.report.add(Check{Name: CheckProbe, Service: svc, Status: Fail, Reason: e.Error()})
			})
			var pts []ProbeTask
			for _, t := range list {
				pt := t.ProbeTask
				pt.WaitMS = int(t.wait / time.Millisecond)
				pts = append(pts, pt)
			}
			// Listening may take the rest of --timeout: the stack must be
			// up and listening within it.
			deadline := r.opts.Timeout - time.Since(start)
			if deadline < 5*time.Second {
				deadline = 5 * time.Second
			}
			id := r.containers[svc].ID
			r.mu.Lock()
			s := r.sessions[id]
			r.mu.Unlock()
			var results []ProbeResult
			var err error
			if s == nil {
				r.startSession(ctx, id)
				r.mu.Lock()
				s = r.sessions[id]
				r.mu.Unlock()
			}
			if s == nil {
				err = fmt.Errorf("probe container did not start in %s's namespace", svc)
			} else {
				results, err = s.run(ctx, deadline, pts)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, t := range list {
				if err != nil || i >= len(results) {
					// The check could not run: skipped, with the reason,
					// never a pass (nor a failure of the service).
					n := len(r.report.Checks)
					t.report(ProbeResult{Task: t.ProbeTask, Detail: fmt.Sprintf("the probe could not run in %s's namespace: %v", svc, err)})
					for j := n; j < len(r.report.Checks); j++ {
						if c := &r.report.Checks[j]; c.Status == Fail || c.Status == Pass {
							c.Status = Skip
						}
					}
					continue
				}
				t.report(results[i])
			}
		}()
	}
	wg.Wait()
}

// internalPort is a port meant to stay inside the stack.
type internalPort struct {
	Service string
	Port    int
	Proto   string
}

// internalPorts are the ports meant to stay inside the stack: the plan's
// stack-internal listeners (ranges of at most 100 ports), and each
// service's expose list minus its published ports.
func (r *runner) internalPorts() []internalPort {
	var out []internalPort
	seen := map[string]bool{}
	add := func(p internalPort) {
		key := fmt.Sprintf("%s\x00%d\x00%s", p.Service, p.Port, p.Proto)
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	if r.plan != nil {
		for _, s := range r.plan.Services {
			if _, ok := r.prep.Project.Services[s.Name]; !ok {
				continue
			}
			for _, l := range s.Listeners {
				if l.Decision != plan.DecisionInternal || l.Port < 1 {
					continue
				}
				end := max(l.Port, l.PortEnd)
				if end-l.Port > 100 {
					end = l.Port
				}
				for q := l.Port; q <= end; q++ {
					add(internalPort{Service: s.Name, Port: q, Proto: protoOr(strings.ToLower(l.Protocol))})
				}
			}
		}
	}
	for name, s := range r.prep.Project.Services {
		published := map[string]bool{}
		for _, p := range s.Ports {
			published[fmt.Sprintf("%d/%s", p.Target, protoOr(p.Protocol))] = true
		}
		for _, e := range s.Expose {
			port, proto := exposePort(e)
			if port == 0 || published[fmt.Sprintf("%d/%s", port, proto)] {
				continue
			}
			add(internalPort{Service: name, Port: port, Proto: proto})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Port < out[j].Port
	})
	return out
}

func protoOr(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// internalChecks: a stack-internal port is not in Docker's port table and
// does not answer on host loopback, unless something outside the test
// stack (e.g. the running deployment) already held that port before it.
func (r *runner) internalChecks(ctx context.Context, ports []internalPort, preHeld map[int]bool) {
	for _, ip := range ports {
		target := fmt.Sprintf("%d/%s", ip.Port, ip.Proto)
		check := Check{Name: CheckInternal, Service: ip.Service, Target: target}
		c, ok := r.containers[ip.Service]
		if !ok {
			check.Status, check.Reason = Skip, fmt.Sprintf("%s has no running container", ip.Service)
			r.report.add(check)
			continue
		}
		var hostPorts []string
		for _, b := range c.NetworkSettings.Ports[containerPort(uint32(ip.Port), ip.Proto)] {
			hostPorts = append(hostPorts, net.JoinHostPort(b.HostIP, b.HostPort))
		}
		switch {
		case len(hostPorts) > 0:
			check.Status, check.Reason = Fail, fmt.Sprintf("%s is meant to stay inside the stack but Docker publishes it on %s", target, strings.Join(hostPorts, ", "))
		case ip.Proto != "tcp":
			check.Status, check.Reason = Pass, "not in Docker's port table"
		case preHeld[ip.Port]:
			check.Status, check.Reason = Skip, fmt.Sprintf("not in Docker's port table, but whether 127.0.0.1:%d answers on the host cannot be checked: a process outside the test stack (the running deployment?) already held it before the test stack started", ip.Port)
		case hostLoopbackAccepts(ip.Port):
			check.Status, check.Reason = Fail, fmt.Sprintf("%s is meant to stay inside the stack but 127.0.0.1:%d accepts connections on the host since the test stack started", target, ip.Port)
		default:
			check.Status, check.Reason = Pass, fmt.Sprintf("not in Docker's port table; 127.0.0.1:%d refuses on the host", ip.Port)
		}
		r.report.add(check)
	}
}

func hostLoopbackAccepts(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
