package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/unhost/unhost/verify/netbench"
)

// Bench entry kinds and the network paths a migration changes.
const (
	BenchBaseline = "baseline"
	BenchService  = "service"

	PathHostLoopback = "host-loopback"  // host network, 127.0.0.1: what host mode gives
	PathPublished    = "published-port" // host to a bridge container's published port
	PathBridge       = "bridge"         // container to container on one bridge network
	PathHostGateway  = "host-gateway"   // container to a host-network listener via host-gateway
	PathOverlay      = "overlay"        // swarm: container to container on an overlay network
	PathIngress      = "ingress"        // swarm: the routing mesh

	// RouteLoopback is the host-loopback path's route: client and server
	// are two processes, as host-mode services are.
	RouteLoopback      = "host network, 127.0.0.1, between two probe containers"
	RouteUserlandProxy = "userland-proxy"
	RouteDNAT          = "iptables-dnat"
)

// Defaults of --bench-time and --bench-rate.
const (
	DefaultBenchTime = 60 * time.Second
	DefaultBenchRate = 50.0
)

// Sizes of the measurement: rounds interleave the paths, each round takes
// one chunk of every measure of every path, after one untimed warm-up
// round. 5 rounds x 2,000 round trips = 10,000 per path.
const (
	benchRounds        = 5
	benchRTTPerRound   = 2000
	benchConnPerRound  = 200
	benchTPPerRound    = 300 * time.Millisecond
	benchMessageSize   = 64
	benchServiceSample = 200 // requests (or connects) per port and side
	benchChunk         = 20  // service samples alternate original/migrated in chunks
	benchEchoPort      = 7000
)

// Figures are the measures of one path or one side of a service port.
type Figures struct {
	RTTP50us       float64 `json:"rtt_p50_us,omitempty"`
	RTTP99us       float64 `json:"rtt_p99_us,omitempty"`
	RTTN           int     `json:"rtt_samples,omitempty"`
	ConnectP50us   float64 `json:"connect_p50_us,omitempty"`
	ConnectP99us   float64 `json:"connect_p99_us,omitempty"`
	ConnectN       int     `json:"connect_samples,omitempty"`
	ThroughputMbit float64 `json:"throughput_mbit_s,omitempty"`
	RequestP50us   float64 `json:"request_p50_us,omitempty"`
	RequestP99us   float64 `json:"request_p99_us,omitempty"`
	RequestN       int     `json:"request_samples,omitempty"`
	// Status counts the HTTP answers by status code.
	Status map[int]int `json:"status,omitempty"`
}

// BenchEntry is one measurement: a path baseline, or a published port of
// the stack measured on the migrated copy and on the original.
type BenchEntry struct {
	Kind    string `json:"kind"`
	Path    string `json:"path,omitempty"`
	Route   string `json:"route,omitempty"`
	Service string `json:"service,omitempty"`
	Port    uint32 `json:"port,omitempty"`
	// Figures of the path, or of the migrated copy's port.
	Figures
	// Original is the same port of the running original (service entries).
	Original *Figures `json:"original,omitempty"`
	// Ratio of each measure to host loopback (baselines), or of the
	// migrated copy to the original (services): rtt_p50, connect_p99,
	// throughput, request_p50, ...
	Ratio map[string]float64 `json:"ratio_to_host,omitempty"`
	Note  string             `json:"note,omitempty"`
}

// BenchEnv says how and where the bench ran, and what it found.
type BenchEnv struct {
	Cores     int     `json:"cores"`
	LoadAvg   string  `json:"loadavg,omitempty"`
	Rounds    int     `json:"rounds"`
	SingleRun bool    `json:"single_run"`
	Seconds   float64 `json:"seconds"`
	Budget    float64 `json:"budget_s"`
	// PublishedRoute is how this engine carries host traffic to a
	// published port: userland-proxy or iptables-dnat.
	PublishedRoute string `json:"published_route,omitempty"`
	// RateLimit bounds the requests per second to the original.
	RateLimit          float64  `json:"rate_limit_per_s"`
	ProductionMeasured bool     `json:"production_measured"`
	Causes             []string `json:"causes,omitempty"`
	Notes              []string `json:"notes,omitempty"`
	// NotRun says why the bench did not run, when it did not.
	NotRun string `json:"not_run,omitempty"`
}

// benchPath is one baseline path: a client agent and the echo server it
// measures.
type benchPath struct {
	name, route string
	client      *session
	addr        string
	rtt, conn   []time.Duration
	tp          []float64
	err         error
}

type bench struct {
	r         *runner
	env       *BenchEnv
	host      *session // on the host's network
	agents    []string // containers to remove
	nets      []string // networks to remove
	swarmSvcs []string // swarm services to remove (the ingress path)
	sessions  []*session
	info      hostInfo
	scale     float64 // < 1 when --bench-time is shorter than the default
}

// runBench measures the cost of leaving host mode (--bench), after the
// checks passed: path baselines between throwaway probe containers, then
// the stack's published ports on the migrated copy and on the original.
func (r *runner) runBench(ctx context.Context) {
	if !r.opts.Bench {
		return
	}
	budget := r.opts.BenchTime
	if budget <= 0 {
		budget = DefaultBenchTime
	}
	rate := r.opts.BenchRate
	if rate <= 0 {
		rate = DefaultBenchRate
	}
	env := &BenchEnv{Rounds: benchRounds, SingleRun: true, Budget: budget.Seconds(), RateLimit: rate}
	r.report.BenchEnv = env
	if why := r.report.firstFailure(); why != "" {
		env.NotRun = "the bench runs only after verify's checks pass: " + why
		return
	}
	start := time.Now()
	defer func() { env.Seconds = time.Since(start).Seconds() }()
	if info, err := r.cli.Info(ctx); err == nil {
		env.Cores = info.NCPU
	}
	b := &bench{r: r, env: env, scale: min(1, budget.Seconds()/DefaultBenchTime.Seconds())}
	bctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	defer b.close(ctx)
	r.progress("bench: starting throwaway probes (budget %s)", budget)
	paths, err := b.setup(bctx)
	if err != nil {
		env.NotRun = "bench could not start: " + err.Error()
		return
	}
	r.progress("bench: %d paths, %d interleaved rounds", len(paths), benchRounds)
	b.baselines(bctx, paths)
	r.progress("bench: service ports")
	b.services(bctx, rate, start.Add(budget))
	b.causes()
	if bctx.Err() != nil && ctx.Err() == nil {
		env.Notes = append(env.Notes, fmt.Sprintf("cut short at --bench-time %s: what was measured by then is reported", budget))
	}
	if b.scale < 1 {
		env.Notes = append(env.Notes, fmt.Sprintf("--bench-time %s is below %s: fewer samples than the default (p99 of fewer than 10,000 round trips)", budget, DefaultBenchTime))
	}
}

// ask runs one task in s and returns its result; a failed task is an error.
func (b *bench) ask(ctx context.Context, s *session, t ProbeTask) (ProbeResult, error) {
	deadline := time.Minute
	if d, ok := ctx.Deadline(); ok {
		deadline = max(time.Until(d), time.Second)
	}
	res, err := s.run(ctx, deadline, []ProbeTask{t})
	if err != nil {
		return ProbeResult{}, err
	}
	if len(res) != 1 {
		return ProbeResult{}, fmt.Errorf("probe answered %d results for one task", len(res))
	}
	if !res[0].OK {
		return res[0], fmt.Errorf("%s %s: %s", t.Kind, t.Addr, res[0].Detail)
	}
	return res[0], nil
}

// setup starts the throwaway agents and their echo servers, and names the
// route of each path.
func (b *bench) setup(ctx context.Context) ([]*benchPath, error) {
	r := b.r
	netName := r.name + "-bench"
	if _, err := r.cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge", Labels: r.labels}); err != nil {
		return nil, fmt.Errorf("create bench network: %w", err)
	}
	b.nets = append(b.nets, netName)
	echoPort := nat.Port(strconv.Itoa(benchEchoPort) + "/tcp")
	var (
		wg                 sync.WaitGroup
		srv, cli, loopSrv  *session
		hostErr, srvErr    error
		cliErr, overlayErr error
		oSrv, oCli         *session
		mu                 sync.Mutex
	)
	start := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverTo(func(e error) { mu.Lock(); hostErr = errors.Join(hostErr, e); mu.Unlock() })
			f()
		}()
	}
	// agent starts a throwaway probe; its container and session are
	// recorded for the teardown.
	agent := func(hc *container.HostConfig, cfg func(*container.Config)) (*session, error) {
		s, err := startAgent(ctx, r.cli, r.image, r.labels, hc, cfg, func(id string) {
			mu.Lock()
			defer mu.Unlock()
			r.mu.Lock()
			r.probes = append(r.probes, id)
			r.mu.Unlock()
			b.agents = append(b.agents, id)
		})
		if s != nil {
			mu.Lock()
			b.sessions = append(b.sessions, s)
			mu.Unlock()
		}
		return s, err
	}
	start(func() {
		var err error
		b.host, err = agent(&container.HostConfig{NetworkMode: "host"}, nil)
		mu.Lock()
		hostErr = errors.Join(hostErr, err)
		mu.Unlock()
	})
	// The loopback echo server runs in a host-network agent of its own:
	// in the client's process, a round trip is a hand-off between two
	// goroutines, cheaper than between two processes, which host-mode
	// services are (a quarter to a third off the round trip, measured
	// against a plain ping-pong: BENCHMARKS.md).
	start(func() {
		var err error
		loopSrv, err = agent(&container.HostConfig{NetworkMode: "host"}, nil)
		mu.Lock()
		hostErr = errors.Join(hostErr, err)
		mu.Unlock()
	})
	start(func() {
		srv, srvErr = agent(&container.HostConfig{
			NetworkMode:  container.NetworkMode(netName),
			PortBindings: nat.PortMap{echoPort: {{HostIP: "127.0.0.1"}}},
		}, func(c *container.Config) { c.ExposedPorts = nat.PortSet{echoPort: {}} })
	})
	start(func() {
		cli, cliErr = agent(&container.HostConfig{
			NetworkMode: container.NetworkMode(netName),
			ExtraHosts:  []string{"host.docker.internal:host-gateway"},
		}, nil)
	})
	overlayName := ""
	if r.swarm != nil {
		overlayName = r.name + "-bench-overlay"
		start(func() {
			if _, err := r.cli.NetworkCreate(ctx, overlayName, network.CreateOptions{Driver: "overlay", Attachable: true, Labels: r.labels}); err != nil {
				overlayErr = fmt.Errorf("create overlay network: %w", err)
				return
			}
			mu.Lock()
			b.nets = append(b.nets, overlayName)
			mu.Unlock()
			var err1, err2 error
			oSrv, err1 = agent(&container.HostConfig{NetworkMode: container.NetworkMode(overlayName)}, nil)
			oCli, err2 = agent(&container.HostConfig{NetworkMode: container.NetworkMode(overlayName)}, nil)
			overlayErr = errors.Join(err1, err2)
		})
	}
	wg.Wait()
	if err := errors.Join(hostErr, srvErr, cliErr); err != nil {
		return nil, err
	}

	// What the host's namespace says about the machine.
	if res, err := b.ask(ctx, b.host, ProbeTask{Kind: benchHostInfo}); err == nil {
		_ = json.Unmarshal([]byte(res.Detail), &b.info)
		b.env.LoadAvg = b.info.LoadAvg
	}

	// Echo servers: on the host's loopback (in another process than the
	// client), in the bridge container.
	res, err := b.ask(ctx, loopSrv, ProbeTask{Kind: benchEchoListen, Addr: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	loop := &benchPath{name: PathHostLoopback, route: RouteLoopback, client: b.host, addr: res.Detail}
	srvIn, ep, err := b.echoServer(ctx, srv, netName)
	if err != nil {
		return nil, err
	}
	hostPort := ""
	if bs := srvIn.NetworkSettings.Ports[echoPort]; len(bs) > 0 {
		hostPort = bs[0].HostPort
	}
	if hostPort == "" {
		return nil, errors.New("the bench server's port was not published")
	}
	srvIP := ep.IPAddress
	subnet := fmt.Sprintf("%s/%d", ep.IPAddress, ep.IPPrefixLen)
	if _, n, err := net.ParseCIDR(subnet); err == nil {
		subnet = n.String()
	}

	// The published port's route: a listener in the host's namespace on
	// that port is docker-proxy (userland-proxy on); none is iptables DNAT.
	published := &benchPath{name: PathPublished, client: b.host, addr: net.JoinHostPort("127.0.0.1", hostPort)}
	res, err = b.ask(ctx, b.host, ProbeTask{Kind: benchListeners, Addr: hostPort})
	if err != nil {
		return nil, err
	}
	if res.Detail != "none" {
		b.env.PublishedRoute = RouteUserlandProxy
		published.route = fmt.Sprintf("%s: docker-proxy listens on %s in the host's namespace", RouteUserlandProxy, res.Detail)
	} else {
		b.env.PublishedRoute = RouteDNAT
		published.route = fmt.Sprintf("%s: nothing listens on %s in the host's namespace, the kernel's NAT forwards it", RouteDNAT, hostPort)
	}

	bridge := &benchPath{name: PathBridge, client: cli, addr: net.JoinHostPort(srvIP, strconv.Itoa(benchEchoPort)),
		route: fmt.Sprintf("bridge network %s (%s), to %s", netName, subnet, srvIP)}

	// host-gateway: the client resolves it as any service would; the echo
	// server listens on that address only, in the host's namespace.
	paths := []*benchPath{loop, published, bridge}
	gwRes, err := b.ask(ctx, cli, ProbeTask{Kind: benchResolve, Addr: "host.docker.internal"})
	if err == nil {
		var lres ProbeResult
		if lres, err = b.ask(ctx, b.host, ProbeTask{Kind: benchEchoListen, Addr: net.JoinHostPort(gwRes.Detail, "0")}); err == nil {
			_, port, _ := net.SplitHostPort(lres.Detail)
			paths = append(paths, &benchPath{name: PathHostGateway, client: cli, addr: net.JoinHostPort("host.docker.internal", port),
				route: fmt.Sprintf("host.docker.internal:host-gateway = %s, a listener in the host's namespace", gwRes.Detail)})
		}
	}
	if err != nil {
		b.notMeasured(PathHostGateway, err.Error())
	}

	if r.swarm != nil {
		paths = append(paths, b.overlayPath(ctx, overlayName, oSrv, oCli, overlayErr)...)
		if !b.info.IPVS {
			b.notMeasured(PathIngress, "this kernel has no IPVS, which swarm's routing mesh needs")
		} else if p, err := b.ingressPath(ctx); err != nil {
			b.notMeasured(PathIngress, err.Error())
		} else {
			paths = append(paths, p)
		}
	}
	return paths, nil
}

func (b *bench) overlayPath(ctx context.Context, netName string, srv, cli *session, startErr error) []*benchPath {
	if startErr != nil {
		b.notMeasured(PathOverlay, startErr.Error())
		return nil
	}
	_, ep, err := b.echoServer(ctx, srv, netName)
	if err != nil {
		b.notMeasured(PathOverlay, err.Error())
		return nil
	}
	return []*benchPath{{name: PathOverlay, client: cli, addr: net.JoinHostPort(ep.IPAddress, strconv.Itoa(benchEchoPort)),
		route: fmt.Sprintf("overlay network %s, to %s", netName, ep.IPAddress)}}
}

// echoServer starts the echo server on benchEchoPort in the agent s and
// returns its container and its endpoint on network netName.
func (b *bench) echoServer(ctx context.Context, s *session, netName string) (container.InspectResponse, *network.EndpointSettings, error) {
	if _, err := b.ask(ctx, s, ProbeTask{Kind: benchEchoListen, Addr: ":" + strconv.Itoa(benchEchoPort)}); err != nil {
		return container.InspectResponse{}, nil, err
	}
	in, err := b.r.cli.ContainerInspect(ctx, s.id)
	if err != nil {
		return in, nil, fmt.Errorf("inspect the bench's echo server: %w", err)
	}
	ep := in.NetworkSettings.Networks[netName]
	if ep == nil || ep.IPAddress == "" {
		return in, nil, fmt.Errorf("the bench's echo server has no address on %s", netName)
	}
	return in, ep, nil
}

// notMeasured reports a baseline path that could not be measured, and why.
func (b *bench) notMeasured(path, why string) {
	b.r.report.Bench = append(b.r.report.Bench, BenchEntry{Kind: BenchBaseline, Path: path, Note: "not measured: " + why})
}

func (b *bench) scaled(n int) int { return max(1, int(float64(n)*b.scale)) }

// baselines runs one untimed warm-up round, then benchRounds rounds in
// which every path takes its turn (the order rotating), so that drift of
// the machine's load hits every path alike.
func (b *bench) baselines(ctx context.Context, paths []*benchPath) {
	one := func(p *benchPath, rtt, conn int, tp time.Duration, keep bool) {
		if p.err != nil || ctx.Err() != nil {
			return
		}
		res, err := b.ask(ctx, p.client, ProbeTask{Kind: benchRTT, Addr: p.addr, N: rtt, Size: benchMessageSize, Warmup: 50})
		if err == nil && keep {
			p.rtt = append(p.rtt, res.Bench.durations()...)
		}
		if err == nil {
			res, err = b.ask(ctx, p.client, ProbeTask{Kind: benchConnect, Addr: p.addr, N: conn})
			if err == nil && keep {
				p.conn = append(p.conn, res.Bench.durations()...)
			}
		}
		if err == nil {
			res, err = b.ask(ctx, p.client, ProbeTask{Kind: benchThroughput, Addr: p.addr, DurationMS: int(tp / time.Millisecond)})
			if err == nil && keep {
				p.tp = append(p.tp, res.Bench.Mbit)
			}
		}
		if err != nil && ctx.Err() == nil {
			p.err = err
		}
	}
	for _, p := range paths {
		one(p, b.scaled(benchRTTPerRound)/4, b.scaled(benchConnPerRound)/4, benchTPPerRound/3, false)
	}
	for round := range benchRounds {
		for i := range paths {
			one(paths[(i+round)%len(paths)], b.scaled(benchRTTPerRound), b.scaled(benchConnPerRound), benchTPPerRound, true)
		}
	}
	var host *Figures
	for _, p := range paths {
		e := BenchEntry{Kind: BenchBaseline, Path: p.name, Route: p.route}
		e.RTTP50us, e.RTTP99us, e.RTTN = percentiles(p.rtt)
		e.ConnectP50us, e.ConnectP99us, e.ConnectN = percentiles(p.conn)
		e.ThroughputMbit = median(p.tp)
		if p.err != nil {
			e.Note = "cut short: " + p.err.Error()
		}
		if p.name == PathHostLoopback {
			f := e.Figures
			host = &f
		}
		b.r.report.Bench = append(b.r.report.Bench, e)
	}
	if host == nil {
		return
	}
	for i := range b.r.report.Bench {
		e := &b.r.report.Bench[i]
		if e.Kind == BenchBaseline && e.RTTN > 0 {
			e.Ratio = ratios(e.Figures, *host)
		}
	}
}

// percentiles pools samples and gives p50 and p99 in microseconds.
func percentiles(d []time.Duration) (p50, p99 float64, n int) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	st := netbench.Summarize(d)
	return us(st.P50), us(st.P99), st.N
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// ratios divides each measure of f by the same measure of base.
func ratios(f, base Figures) map[string]float64 {
	out := map[string]float64{}
	put := func(key string, a, b float64) {
		if a > 0 && b > 0 {
			out[key] = float64(int(a/b*100+0.5)) / 100
		}
	}
	put("rtt_p50", f.RTTP50us, base.RTTP50us)
	put("rtt_p99", f.RTTP99us, base.RTTP99us)
	put("connect_p50", f.ConnectP50us, base.ConnectP50us)
	put("connect_p99", f.ConnectP99us, base.ConnectP99us)
	put("throughput", f.ThroughputMbit, base.ThroughputMbit)
	put("request_p50", f.RequestP50us, base.RequestP50us)
	put("request_p99", f.RequestP99us, base.RequestP99us)
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s *BenchSample) durations() []time.Duration {
	if s == nil {
		return nil
	}
	out := make([]time.Duration, len(s.SamplesNS))
	for i, n := range s.SamplesNS {
		out[i] = time.Duration(n)
	}
	return out
}

// causes names where the time goes when one path dominates, with the
// usual remedy. unhost never changes the engine's settings itself.
func (b *bench) causes() {
	var worst *BenchEntry
	second := 0.0
	for i := range b.r.report.Bench {
		e := &b.r.report.Bench[i]
		if e.Kind != BenchBaseline || e.Path == PathHostLoopback || e.Ratio["rtt_p50"] == 0 {
			continue
		}
		switch {
		case worst == nil || e.Ratio["rtt_p50"] > worst.Ratio["rtt_p50"]:
			if worst != nil {
				second = worst.Ratio["rtt_p50"]
			}
			worst = e
		case e.Ratio["rtt_p50"] > second:
			second = e.Ratio["rtt_p50"]
		}
	}
	env := b.env
	if worst != nil && worst.Ratio["rtt_p50"] >= 1.5 && worst.Ratio["rtt_p50"] >= 1.3*second {
		r := worst.Ratio["rtt_p50"]
		switch {
		case worst.Path == PathPublished && env.PublishedRoute == RouteUserlandProxy:
			env.Causes = append(env.Causes, fmt.Sprintf("published ports dominate (round trip %.1f× host loopback): localhost traffic to a published port goes through the userland proxy (docker-proxy), which copies every byte in user space. Remedy: \"userland-proxy\": false in /etc/docker/daemon.json, then restart the engine (published ports then go through iptables DNAT; unhost does not change the engine's settings)", r))
		case worst.Path == PathPublished:
			env.Causes = append(env.Causes, fmt.Sprintf("published ports dominate (round trip %.1f× host loopback): they go through iptables DNAT, with hairpin NAT for loopback and a conntrack entry per connection. Remedy: clients that are containers reach the service by name on a shared network instead of through the published port", r))
		case worst.Path == PathHostGateway:
			env.Causes = append(env.Causes, fmt.Sprintf("the host gateway dominates (round trip %.1f× host loopback): containers reach services left on the host network through the bridge's gateway and conntrack. Remedy: move those services off the host network too, onto the stack's network", r))
		default:
			env.Causes = append(env.Causes, fmt.Sprintf("the %s path dominates (round trip %.1f× host loopback): veth pairs, the bridge and conntrack on every packet", worst.Path, r))
		}
	}
	if b.info.ConntrackMax > 0 && float64(b.info.ConntrackCount) >= 0.5*float64(b.info.ConntrackMax) {
		env.Causes = append(env.Causes, fmt.Sprintf("conntrack table %d%% full (%d of %d): new connections through NAT slow down, and are dropped when it is full. Remedy: raise net.netfilter.nf_conntrack_max, or shorten its timeouts", 100*b.info.ConntrackCount/b.info.ConntrackMax, b.info.ConntrackCount, b.info.ConntrackMax))
	}
}

// close stops the agents and removes their containers and networks; the
// run's teardown removes by label whatever this leaves.
func (b *bench) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, s := range b.sessions {
		s.close()
	}
	for _, id := range b.swarmSvcs {
		if err := b.r.cli.ServiceRemove(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
			b.r.progress("warning: remove the bench's ingress service: %v", err)
		}
	}
	for _, id := range b.agents {
		_ = b.r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	}
	for _, n := range b.nets {
		_ = b.r.cli.NetworkRemove(ctx, n)
	}
}
