package verify

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/unhost/unhost/analysis"
)

// servicePort is a published TCP port of the stack, on both sides.
type servicePort struct {
	service           string
	port              uint32
	original, migrate string // loopback host:port
	httpPath          string // "" unless the port is known to speak HTTP
}

// httpPorts are the ports known to speak HTTP, by service and container
// port, with a path to GET: the --http checks, and the targets of http://
// references and healthchecks in the configuration.
func (r *runner) httpPorts(specs []httpSpec) map[string]string {
	out := map[string]string{}
	key := func(svc string, port int) string { return svc + ":" + strconv.Itoa(port) }
	for _, h := range specs {
		out[key(h.Service, h.Port)] = h.Path
	}
	hosts := knownHosts(r.prep.Original)
	for _, ref := range collectRefs(r.stack.Facts, r.stack.Outside, r.prep.Original, r.plan) {
		if ref.Scheme != "http" || ref.Variable != "" {
			continue
		}
		svc := ""
		if analysis.IsLoopback(ref.Host) {
			svc = ref.From
		} else if to, ok := hosts[ref.Host]; ok {
			svc = to
		}
		if svc == "" {
			continue
		}
		if _, ok := out[key(svc, ref.Port)]; !ok {
			out[key(svc, ref.Port)] = refPath(ref.Token)
		}
	}
	return out
}

// refPath is the path of a URL token, "/" when it has none.
func refPath(token string) string {
	if u, err := url.Parse(token); err == nil && strings.HasPrefix(u.Path, "/") {
		return u.Path
	}
	return "/"
}

// servicePorts lists the published TCP ports to compare, and notes those
// that cannot be.
func (b *bench) servicePorts() []servicePort {
	httpAt := b.r.httpPorts(b.r.benchSpecs)
	var out []servicePort
	for _, p := range b.r.report.Ports {
		if p.Protocol != "tcp" {
			continue
		}
		sp := servicePort{service: p.Service, port: p.Target}
		if path, ok := httpAt[p.Service+":"+strconv.Itoa(int(p.Target))]; ok {
			sp.httpPath = path
		}
		note := ""
		switch {
		case p.Test == "":
			note = "not published in the test stack"
		case p.HostIP != "" && !analysis.IsLoopback(p.HostIP) && p.HostIP != "0.0.0.0" && p.HostIP != "::":
			note = fmt.Sprintf("published on %s only: the bench sends loopback traffic only", p.HostIP)
		}
		if note != "" {
			b.r.report.Bench = append(b.r.report.Bench, BenchEntry{Kind: BenchService, Service: p.Service, Port: p.Target, Note: "not measured: " + note})
			continue
		}
		sp.migrate = net.JoinHostPort("127.0.0.1", p.Test)
		if p.Real != "" {
			sp.original = net.JoinHostPort("127.0.0.1", p.Real)
		}
		out = append(out, sp)
	}
	return out
}

// services measures each published TCP port of the migrated copy and the
// same port of the original, side by side, in chunks that alternate
// between them: a bare connect on every port, GET requests on ports known
// to speak HTTP only (a byte sent to Redis or memcached runs as a
// command). Requests to the original never exceed rate a second: its
// chunks are separated by the copy's, each chunk rate-limited.
func (b *bench) services(ctx context.Context, rate float64, end time.Time) {
	ports := b.servicePorts()
	if len(ports) == 0 {
		return
	}
	// The sample per port and side fits the time left.
	measures := 0
	for _, p := range ports {
		measures++
		if p.httpPath != "" {
			measures++
		}
	}
	left := time.Until(end) - 2*time.Second
	n := benchServiceSample
	if fit := int(left.Seconds() * rate / float64(2*measures)); fit < n {
		n = max(fit, benchChunk)
		b.env.Notes = append(b.env.Notes, fmt.Sprintf("%d samples per port and side, not %d: the time left in --bench-time at --bench-rate %.0f/s", n, benchServiceSample, rate))
	}
	for _, p := range ports {
		if ctx.Err() != nil {
			break
		}
		e := BenchEntry{Kind: BenchService, Service: p.service, Port: p.port}
		orig := &Figures{}
		origUp := false
		if p.original != "" {
			_, port, _ := net.SplitHostPort(p.original)
			if res, err := b.ask(ctx, b.host, ProbeTask{Kind: benchListeners, Addr: port}); err == nil && res.Detail != "none" {
				origUp = true
			}
		}
		var notes []string
		if !origUp {
			notes = append(notes, "the original does not listen on "+orDash(p.original)+" here: the migrated copy only")
		} else {
			b.env.ProductionMeasured = true
		}
		// Bare connects on every port.
		var cm, co []time.Duration
		err := b.alternate(ctx, n, origUp, func(side string, k int) error {
			addr := p.migrate
			if side == "original" {
				addr = p.original
			}
			res, err := b.ask(ctx, b.host, ProbeTask{Kind: benchConnectOnly, Addr: addr, N: k, Rate: rate})
			if err != nil {
				return err
			}
			if side == "original" {
				co = append(co, res.Bench.durations()...)
			} else {
				cm = append(cm, res.Bench.durations()...)
			}
			return nil
		})
		if err != nil {
			notes = append(notes, "connects cut short: "+err.Error())
		}
		e.ConnectP50us, e.ConnectP99us, e.ConnectN = percentiles(cm)
		orig.ConnectP50us, orig.ConnectP99us, orig.ConnectN = percentiles(co)
		if b.env.PublishedRoute == RouteUserlandProxy {
			notes = append(notes, "a bare connect to the copy's published port is accepted by docker-proxy itself: it measures the proxy's accept, not the service's")
		}
		if p.httpPath != "" {
			var rm, ro []time.Duration
			sm, so := map[int]int{}, map[int]int{}
			err := b.alternate(ctx, n, origUp, func(side string, k int) error {
				addr, status, samples := p.migrate, sm, &rm
				if side == "original" {
					addr, status, samples = p.original, so, &ro
				}
				res, err := b.ask(ctx, b.host, ProbeTask{Kind: benchHTTP, Addr: "http://" + addr + p.httpPath, N: k, Rate: rate})
				if err != nil {
					return err
				}
				*samples = append(*samples, res.Bench.durations()...)
				for code, c := range res.Bench.Status {
					status[code] += c
				}
				return nil
			})
			if err != nil {
				notes = append(notes, "requests cut short: "+err.Error())
			}
			e.RequestP50us, e.RequestP99us, e.RequestN = percentiles(rm)
			orig.RequestP50us, orig.RequestP99us, orig.RequestN = percentiles(ro)
			if len(sm) > 0 {
				e.Status = sm
			}
			if len(so) > 0 {
				orig.Status = so
			}
			e.Route = "GET " + p.httpPath
		} else {
			e.Route = "connect only: not known to speak HTTP, so no byte is sent"
		}
		if origUp {
			e.Original = orig
			e.Ratio = ratios(e.Figures, *orig)
		}
		e.Note = strings.Join(notes, "; ")
		b.r.report.Bench = append(b.r.report.Bench, e)
	}
}

func orDash(s string) string {
	if s == "" {
		return "(no fixed port)"
	}
	return s
}

// alternate runs n samples per side in chunks, the copy's and the
// original's in turn (the original's only when it runs).
func (b *bench) alternate(ctx context.Context, n int, withOriginal bool, run func(side string, k int) error) error {
	for done := 0; done < n; done += benchChunk {
		k := min(benchChunk, n-done)
		if err := run("migrated", k); err != nil {
			return err
		}
		if withOriginal {
			if err := run("original", k); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}
