package verify

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBenchRatios(t *testing.T) {
	host := Figures{RTTP50us: 20, RTTP99us: 40, ConnectP50us: 50, ConnectP99us: 100, ThroughputMbit: 10000}
	got := ratios(Figures{RTTP50us: 60, RTTP99us: 40, ConnectP50us: 125, ThroughputMbit: 2500}, host)
	want := map[string]float64{"rtt_p50": 3, "rtt_p99": 1, "connect_p50": 2.5, "throughput": 0.25}
	if len(got) != len(want) {
		t.Fatalf("ratios %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	if r := ratios(Figures{}, host); r != nil {
		t.Errorf("no measures, no ratios: %v", r)
	}
}

func TestBenchPercentilesPoolRounds(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	// Two rounds pooled: the percentiles are those of all samples.
	p50, p99, n := percentiles(append(d[50:], d[:50]...))
	if p50 != 50 || p99 != 99 || n != 100 {
		t.Errorf("p50 %v p99 %v n %d, want 50 99 100", p50, p99, n)
	}
	if _, _, n := percentiles(nil); n != 0 {
		t.Errorf("no samples: n %d", n)
	}
}

// causes names the dominating path and its remedy, and a full conntrack
// table; a path that does not stand out names nothing.
func TestBenchCauses(t *testing.T) {
	base := func(published, bridge, gw float64) []BenchEntry {
		return []BenchEntry{
			{Kind: BenchBaseline, Path: PathHostLoopback, Figures: Figures{RTTN: 1}},
			{Kind: BenchBaseline, Path: PathPublished, Ratio: map[string]float64{"rtt_p50": published}},
			{Kind: BenchBaseline, Path: PathBridge, Ratio: map[string]float64{"rtt_p50": bridge}},
			{Kind: BenchBaseline, Path: PathHostGateway, Ratio: map[string]float64{"rtt_p50": gw}},
		}
	}
	tests := []struct {
		name    string
		entries []BenchEntry
		route   string
		info    hostInfo
		want    []string
	}{
		{"userland proxy", base(4, 1.6, 1.7), RouteUserlandProxy, hostInfo{}, []string{`"userland-proxy": false`}},
		{"dnat", base(4, 1.6, 1.7), RouteDNAT, hostInfo{}, []string{"iptables DNAT, with hairpin NAT"}},
		{"host gateway", base(1.5, 1.4, 3), RouteUserlandProxy, hostInfo{}, []string{"the host gateway dominates"}},
		{"nothing stands out", base(1.8, 1.6, 1.7), RouteUserlandProxy, hostInfo{}, nil},
		{"all fast", base(1.2, 1.0, 1.1), RouteUserlandProxy, hostInfo{}, nil},
		{"conntrack", base(1.2, 1.0, 1.1), RouteUserlandProxy, hostInfo{ConntrackCount: 900, ConntrackMax: 1000}, []string{"conntrack table 90% full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &bench{r: &runner{report: &Report{Bench: tt.entries}}, env: &BenchEnv{PublishedRoute: tt.route}, info: tt.info}
			b.causes()
			if len(b.env.Causes) != len(tt.want) {
				t.Fatalf("causes %q, want %d", b.env.Causes, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(b.env.Causes[i], w) {
					t.Errorf("cause %q lacks %q", b.env.Causes[i], w)
				}
			}
		})
	}
}

func TestBenchReportText(t *testing.T) {
	r := &Report{Project: "p", Status: Pass,
		BenchEnv: &BenchEnv{Cores: 2, LoadAvg: "0.5 0.4 0.3", Rounds: 5, SingleRun: true, Seconds: 30, Budget: 60,
			PublishedRoute: RouteUserlandProxy, RateLimit: 50, ProductionMeasured: true, Causes: []string{"the cause"}},
		Bench: []BenchEntry{
			{Kind: BenchBaseline, Path: PathHostLoopback, Route: "host network, 127.0.0.1", Figures: Figures{RTTP50us: 20, RTTP99us: 40, RTTN: 10000, ConnectP50us: 50, ConnectP99us: 90, ConnectN: 1000, ThroughputMbit: 20000}},
			{Kind: BenchBaseline, Path: PathPublished, Route: "userland-proxy: docker-proxy listens", Figures: Figures{RTTP50us: 80, RTTP99us: 160, RTTN: 10000, ConnectP50us: 250, ConnectP99us: 1500, ConnectN: 1000, ThroughputMbit: 4000},
				Ratio: map[string]float64{"rtt_p50": 4, "rtt_p99": 4, "connect_p50": 5, "connect_p99": 16.67, "throughput": 0.2}},
			{Kind: BenchBaseline, Path: PathIngress, Note: "not measured: no IPVS"},
			{Kind: BenchService, Service: "api", Port: 8080, Route: "GET /healthz",
				Figures:  Figures{ConnectP50us: 200, ConnectP99us: 400, ConnectN: 200, RequestP50us: 300, RequestP99us: 600, RequestN: 200, Status: map[int]int{200: 200}},
				Original: &Figures{ConnectP50us: 50, ConnectP99us: 100, ConnectN: 200, RequestP50us: 100, RequestP99us: 200, RequestN: 200, Status: map[int]int{200: 200}},
				Ratio:    map[string]float64{"connect_p50": 4, "connect_p99": 4, "request_p50": 3, "request_p99": 3}},
			{Kind: BenchService, Service: "cache", Port: 6379, Note: "not measured: published on 10.0.0.5 only"},
		}}
	var b bytes.Buffer
	if err := r.writeBenchText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"numbers from a single run (5 interleaved rounds after a warm-up); 2 cores; load average 0.5 0.4 0.3",
		"published ports via userland-proxy",
		"the running original (production) was measured, at most 50 requests a second",
		"80µs (4.0×)", "1.50ms (16.7×)", "4000 Mbit/s (0.2×)",
		"ingress", "not measured: no IPVS",
		"GET /healthz", "100µs / 200µs", "300µs / 600µs", "3.00 / 3.00", "answers: original 200×200, migrated 200×200",
		"not measured: published on 10.0.0.5 only",
		"where the time goes: the cause",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bench text lacks %q:\n%s", want, out)
		}
	}
	r.BenchEnv = &BenchEnv{NotRun: "checks failed"}
	b.Reset()
	if err := r.writeBenchText(&b); err != nil || !strings.Contains(b.String(), "not run: checks failed") {
		t.Errorf("not run: %v %q", err, b.String())
	}
}

func TestRefPath(t *testing.T) {
	for token, want := range map[string]string{
		"http://api:8080/healthz?x=1": "/healthz",
		"http://api:8080":             "/",
		"api:8080":                    "/",
		"%zz":                         "/",
	} {
		if got := refPath(token); got != want {
			t.Errorf("refPath(%q) = %q, want %q", token, got, want)
		}
	}
}

// The ingress path's service is one task of the probe image serving the
// echo protocol, published in ingress mode, and labelled with the run and
// its stack so that the teardown and the sweep of dead runs remove it.
func TestIngressSpec(t *testing.T) {
	r := &runner{name: "unhost-verify-abc", image: "unhost-verify-probe:abc", labels: map[string]string{LabelRun: "abc", LabelPID: "1"}}
	s := r.ingressSpec()
	if s.Labels[LabelRun] != "abc" || s.Labels[LabelStack] != r.name || s.TaskTemplate.ContainerSpec.Labels[LabelStack] != r.name {
		t.Errorf("labels %v / %v", s.Labels, s.TaskTemplate.ContainerSpec.Labels)
	}
	if _, ok := r.labels[LabelStack]; ok {
		t.Error("the run's own labels were changed")
	}
	if c := s.TaskTemplate.ContainerSpec; c.Image != r.image || strings.Join(c.Args, " ") != "probe echo :7000" {
		t.Errorf("container %s %v", c.Image, c.Args)
	}
	if p := s.EndpointSpec.Ports; len(p) != 1 || p[0].TargetPort != benchEchoPort || p[0].PublishMode != "ingress" || p[0].PublishedPort != 0 {
		t.Errorf("ports %+v: want the echo port, ingress mode, a port swarm picks", p)
	}
	if s.Mode.Replicated == nil || *s.Mode.Replicated.Replicas != 1 {
		t.Errorf("mode %+v: want one replica", s.Mode)
	}
}

// A report read back for the pull-request body (--bench-report) is input:
// whatever it holds, decoding and printing it must not panic.
func FuzzReportRows(f *testing.F) {
	if b, err := os.ReadFile("../testdata/verify/bench/report.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"project":"p","status":"pass","bench_env":{"not_run":"x"}}`))
	f.Add([]byte(`{"project":"p","status":"pass","bench_env":{},"bench":[{"kind":"service","ratio_to_host":null,"original":null,"request_samples":3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeReport(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		r.BenchPathRows()
		r.BenchServiceRows()
		if r.BenchEnv != nil {
			r.BenchEnv.Method()
		}
		if err := r.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}

// The bench runs only after the checks pass: a failed exposure row counts
// as a failure, as it does for the run's status.
func TestBenchNotAfterFailure(t *testing.T) {
	for _, tt := range []struct {
		name string
		rep  Report
		want bool
	}{
		{"all pass", Report{Checks: []Check{{Name: CheckPort, Service: "api", Status: Pass}}, Exposure: []ExposureRow{{Service: "api", Status: Pass}}}, false},
		{"skips only", Report{Checks: []Check{{Name: CheckRef, Service: "api", Status: Skip}}}, false},
		{"failed check", Report{Checks: []Check{{Name: CheckRef, Service: "api", Status: Fail}}}, true},
		{"wider exposure", Report{Exposure: []ExposureRow{{Service: "db", Port: 5432, Protocol: "tcp", Status: Fail}}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := tt.rep
			if got := rep.firstFailure() != ""; got != tt.want {
				t.Errorf("firstFailure %q, want a failure: %v", rep.firstFailure(), tt.want)
			}
			if tt.want {
				// No engine is asked: the bench stops before anything.
				r := &runner{opts: Options{Bench: true}, report: &rep}
				r.runBench(t.Context())
				if rep.BenchEnv == nil || !strings.Contains(rep.BenchEnv.NotRun, "failed") {
					t.Errorf("bench ran after a failure: %+v", rep.BenchEnv)
				}
			}
			rep.finish(time.Now())
			if (rep.Status == Fail) != tt.want {
				t.Errorf("status %s, want failed %v", rep.Status, tt.want)
			}
		})
	}
}
