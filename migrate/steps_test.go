package migrate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// Table tests of migrate's steps, one step at a time, on small inline
// projects. The CLI goldens (testdata/migrate) test them together.

// hostDB is a database on the host network; dbAndAPI adds an API that
// reaches it on localhost. Tests add services after them.
const hostDB = `services:
  db:
    image: postgres:16
    network_mode: host
    environment: {PGPORT: "5432"}
`

const dbAndAPI = hostDB + `  api:
    image: example/api
    network_mode: host
    environment: {DB: "postgres://u@localhost:5432/app"}
    expose: ["8000"]
`

// step is how far stepsFor runs the planner.
type step int

const (
	stepEvidence step = iota + 1
	stepReferences
	stepPublication
	stepNetworks
)

// stepsFor loads compose (one file) and runs the planner's steps up to
// and including last.
func stepsFor(t *testing.T, compose string, opts Options, last step) *planner {
	t.Helper()
	return stepsWith(t, map[string]string{"compose.yaml": compose}, opts, last)
}

// stepsWith is stepsFor with more files beside compose.yaml (env files).
func stepsWith(t *testing.T, files map[string]string, opts Options, last step) *planner {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "compose.yaml")
	opts.WorkDir = dir
	c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{path}, WorkDir: dir, ProjectName: "steps"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlanner(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.evidence(); err != nil {
		t.Fatal(err)
	}
	if last >= stepReferences {
		p.references()
	}
	if last >= stepPublication {
		if err := p.publication(); err != nil {
			t.Fatal(err)
		}
	}
	if last >= stepNetworks {
		if err := p.networks(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestStepEvidence(t *testing.T) {
	cases := []struct {
		name, svc string
		opts      Options
		want      plan.Action
		reason    string // a part of the reason
	}{
		{"plain", "  s: {image: example/app, network_mode: host, expose: [\"8080\"]}\n", Options{}, plan.ActionMigrate, "nothing in its configuration needs it"},
		{"mdns", "  s: {image: example/app, network_mode: host, expose: [\"5353/udp\"]}\n", Options{}, plan.ActionKeepHost, "mDNS"},
		{"tun", "  s: {image: example/vpn, network_mode: host, devices: [\"/dev/net/tun\"]}\n", Options{}, plan.ActionKeepHost, "/dev/net/tun"},
		{"net admin, no listener", "  s: {image: example/fw, network_mode: host, cap_add: [NET_ADMIN]}\n", Options{}, plan.ActionKeepHost, "adds NET_ADMIN"},
		{"net admin with a listener", "  s: {image: example/app, network_mode: host, cap_add: [NET_ADMIN], expose: [\"80\"]}\n", Options{}, plan.ActionKeepHost, "NET_ADMIN"},
		{"known image", "  s: {image: \"ghcr.io/home-assistant/home-assistant:stable\", network_mode: host}\n", Options{}, plan.ActionKeepHost, "mDNS/SSDP"},
		{"port range", "  s: {image: example/rtp, network_mode: host, expose: [\"10000-10200/udp\"]}\n", Options{}, plan.ActionKeepHost, "range of 201 ports"},
		{"forced", "  s: {image: example/vpn, network_mode: host, devices: [\"/dev/net/tun\"], expose: [\"1194\"]}\n", Options{Force: map[string]bool{"s": true}}, plan.ActionMigrate, "--force"},
		{"not selected", "  s: {image: example/app, network_mode: host}\n", Options{Selected: map[string]bool{}}, plan.ActionNotSelected, "--profile"},
		{"bridge", "  s: {image: example/app, ports: [\"80:80\"]}\n", Options{}, plan.ActionUnchanged, ""},
		{"follower", "  s: {image: example/app, network_mode: \"service:t\"}\n  t: {image: example/vpn, network_mode: host, expose: [\"80\"]}\n", Options{}, plan.ActionFollow, "shares the network namespace of t"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := stepsFor(t, "services:\n"+tc.svc, tc.opts, stepEvidence)
			s := p.svcs[tc.svc[2:strings.Index(tc.svc, ":")]]
			if s.action != tc.want || !strings.Contains(s.reason, tc.reason) {
				t.Errorf("action %s (%s), want %s with %q", s.action, s.reason, tc.want, tc.reason)
			}
		})
	}
}

// TestStepEvidenceListeners: where listeners come from, and how a
// follower's become its owner's.
func TestStepEvidenceListeners(t *testing.T) {
	p := stepsFor(t, `services:
  app:
    image: example/app
    network_mode: host
    command: ["--listen", "127.0.0.1:9000"]
    expose: ["8080"]
  side:
    image: example/side
    network_mode: "service:app"
    environment: {METRICS_PORT: "9100"}
`, Options{}, stepEvidence)
	got := map[int]string{}
	for _, l := range p.svcs["app"].listeners {
		got[l.port] = l.addr + " via=" + l.via
	}
	want := map[int]string{8080: "0.0.0.0 via=", 9000: "127.0.0.1 via=", 9100: "0.0.0.0 via=side"}
	for port, w := range want {
		if got[port] != w {
			t.Errorf("port %d: %q, want %q (all: %v)", port, got[port], w, got)
		}
	}
	if len(p.svcs["side"].listeners) != 0 {
		t.Error("a follower's listeners belong to the service it follows")
	}
}

func TestStepReferences(t *testing.T) {
	const stack = hostDB + `  api:
    image: example/api
    network_mode: host
    environment:
      DB: postgres://u@localhost:5432/app
      HOST_SVC: http://localhost:9999
      BROKER: ${BROKER_HOST:-localhost}
      ADVERTISED_LISTENERS: PLAINTEXT://localhost:9092
    healthcheck: {test: ["CMD", "curl", "-f", "http://localhost:8000/health"]}
    expose: ["8000"]
  web:
    image: example/web
    ports: ["8080:80"]
    environment: {API: "http://host.docker.internal:8000"}
`
	p := stepsFor(t, stack, Options{}, stepReferences)
	byBefore := map[string]plan.Reference{}
	for _, r := range p.plan.References {
		byBefore[r.From+" "+r.Before] = r
	}
	cases := []struct {
		key    string
		kind   plan.RefKind
		action string
		to     string
		after  string
	}{
		{"api localhost:5432", plan.RefService, refActionRewrite, "db", "db:5432"},
		{"api localhost:9999", plan.RefHostService, refActionRewrite, "host", "host.docker.internal:9999"},
		{"api localhost:9092", plan.RefAdvertised, refActionManual, "", ""},
		{"web host.docker.internal:8000", plan.RefService, refActionRewrite, "api", "api:8000"},
	}
	for _, tc := range cases {
		r, ok := byBefore[tc.key]
		if !ok {
			t.Errorf("%s: no reference (have %v)", tc.key, keys(byBefore))
			continue
		}
		if r.Kind != tc.kind || r.Action != tc.action || r.To != tc.to || r.After != tc.after {
			t.Errorf("%s: %s %s to %q after %q, want %s %s to %q after %q", tc.key, r.Kind, r.Action, r.To, r.After, tc.kind, tc.action, tc.to, tc.after)
		}
	}
	// the healthcheck names api's own port: nothing to plan
	if _, ok := byBefore["api localhost:8000"]; ok {
		t.Error("a healthcheck of the service's own port became a reference")
	}
	// a rewrite by service name makes web a client of the migration
	if s := p.svcs["web"]; s.action != plan.ActionRefsOnly {
		t.Errorf("web: %s, want %s", s.action, plan.ActionRefsOnly)
	}
	if !p.svcs["api"].hostRefs {
		t.Error("api reaches a host service: it needs host.docker.internal")
	}
	if l := p.svcs["db"].find("tcp", 5432); l == nil || !l.usedBy["api"] {
		t.Error("db's 5432 is used by api")
	}
}

// TestClassifyRef: the case of each reference, decided without changing
// anything.
func TestClassifyRef(t *testing.T) {
	cases := []struct {
		name  string
		stack string
		opts  Options
		from  string
		want  refCase
	}{
		{"service", "  a: {image: x, network_mode: host, expose: [\"7000\"], environment: {U: \"localhost:6000\"}}\n  b: {image: y, network_mode: host, expose: [\"6000\"]}\n", Options{}, "a", refService},
		{"host service", "  a: {image: x, network_mode: host, environment: {U: \"localhost:6000\"}}\n", Options{}, "a", refHostGateway},
		{"host service, swarm", "  a: {image: x, network_mode: host, environment: {U: \"localhost:6000\"}}\n", Options{Target: plan.TargetSwarm}, "a", refHostSwarm},
		{"already the gateway", "  a: {image: x, environment: {U: \"host.docker.internal:6000\"}}\n  b: {image: y, network_mode: host}\n", Options{}, "a", refHostAlready},
		{"own port", "  a: {image: x, network_mode: host, expose: [\"6000\"], environment: {U: \"localhost:6000\"}}\n", Options{}, "a", refIgnored},
		{"two listen there", "  a: {image: x, network_mode: host, environment: {U: \"localhost:6000\"}}\n  b: {image: y, network_mode: host, expose: [\"6000\"]}\n  c: {image: y, network_mode: host, expose: [\"6000\"]}\n", Options{}, "a", refAmbiguousPort},
		{"kept on host", "  a: {image: x, network_mode: host, expose: [\"7000\"], environment: {U: \"localhost:6000\"}}\n  b: {image: y, network_mode: host, expose: [\"6000\"], devices: [\"/dev/net/tun\"]}\n", Options{}, "a", refKeptHost},
		{"kept on host, swarm", "  a: {image: x, network_mode: host, expose: [\"7000\"], environment: {U: \"localhost:6000\"}}\n  b: {image: y, network_mode: host, expose: [\"6000\"], devices: [\"/dev/net/tun\"]}\n", Options{Target: plan.TargetSwarm}, "a", refKeptSwarm},
		{"client stays", "  a: {image: x, network_mode: host, devices: [\"/dev/net/tun\"], environment: {U: \"localhost:6000\"}}\n  b: {image: y, network_mode: host, expose: [\"6000\"]}\n", Options{}, "a", refClientStays},
		{"a host variable's default port", "  a: {image: x, network_mode: host, environment: {REDIS_HOST: \"localhost\"}}\n", Options{}, "a", refHostGateway},
		{"advertised", "  a: {image: x, network_mode: host, environment: {KAFKA_ADVERTISED_LISTENERS: \"PLAINTEXT://localhost:9092\"}}\n", Options{}, "a", refAdvertised},
		// the evidence step already counts a healthcheck's port as the
		// service's own listener
		{"healthcheck, unknown port", "  a: {image: x, network_mode: host, healthcheck: {test: [\"CMD\", \"wget\", \"http://localhost:7000\"]}}\n", Options{}, "a", refIgnored},
		{"published port of a bridge service", "  a: {image: x, network_mode: host, expose: [\"7000\"], environment: {U: \"localhost:8080\"}}\n  b: {image: y, ports: [\"8080:80\"]}\n", Options{}, "a", refService},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := stepsFor(t, "services:\n"+tc.stack, tc.opts, stepEvidence)
			p.indexOwners()
			s := p.svcs[tc.from]
			var got []refCase
			for i := range s.facts.Refs {
				if v := p.classifyRef(s, &s.facts.Refs[i]); v.c != refIgnored || len(s.facts.Refs) == 1 {
					got = append(got, v.c)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("cases %v, want [%v] (refs %+v)", got, tc.want, s.facts.Refs)
			}
			if p.plan.References != nil || p.rewrites != nil {
				t.Error("classifyRef changed the plan")
			}
		})
	}
}

func keys(m map[string]plan.Reference) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStepOutside: addresses in files unhost does not edit (env files,
// the project's .env) become manual steps with their file and line.
func TestStepOutside(t *testing.T) {
	p := stepsWith(t, map[string]string{
		"compose.yaml": hostDB + "  api:\n    image: example/api\n    network_mode: host\n    expose: [\"8000\"]\n    env_file: [api.env]\n",
		"api.env":      "# the database\nDB=postgres://u@localhost:5432/app\nCACHE=localhost:6379\n",
		".env":         "DB_URL=localhost:5432\n",
	}, Options{}, stepReferences)
	want := map[string]string{ // where -> what the step says
		"api.env:2": "change localhost:5432 to db:5432",
		"api.env:3": "if localhost:6379 is a service on the host, change it to host.docker.internal:6379",
		".env:1":    "where a migrated service takes localhost:5432 from .env, change it to db:5432",
	}
	got := map[string]string{}
	for _, st := range p.plan.ManualSteps {
		where := st.Where
		if i := strings.LastIndex(where, ":"); i > 0 {
			where = where[:i] // drop the column
		}
		got[filepath.Base(where)] = st.What
	}
	for where, w := range want {
		if !strings.Contains(got[where], w) {
			t.Errorf("%s: %q, want %q (all: %v)", where, got[where], w, got)
		}
	}
	for _, r := range p.plan.References {
		if r.Kind == plan.RefOutside && r.Action != refActionManual {
			t.Errorf("%s: an outside reference is %s, want manual", r.Where, r.Action)
		}
	}
	if l := p.svcs["db"].find("tcp", 5432); l == nil || !l.usedBy["api"] {
		t.Error("api uses db's 5432 through its env file")
	}
}

func TestStepPublication(t *testing.T) {
	const stack = dbAndAPI + `  admin:
    image: example/admin
    network_mode: host
    command: ["--listen", "127.0.0.1:9000"]
  edge:
    image: example/edge
    network_mode: host
    ports: ["10.0.0.5:8443:8443"]
`
	cases := []struct {
		name     string
		opts     Options
		svc      string
		port     int
		decision plan.Decision
		ip       string
		why      string
	}{
		// the files alone cannot rule out outside clients: published on
		// loopback, narrowed (an inventory can leave it unpublished)
		{"used inside only", Options{}, "db", 5432, plan.DecisionPublish, "127.0.0.1", "used inside the stack (by api)"},
		{"not used", Options{}, "api", 8000, plan.DecisionPublish, "", "not used by other services"},
		{"loopback bind", Options{}, "admin", 9000, plan.DecisionPublish, "127.0.0.1", ""},
		{"ignored ports: entry", Options{}, "edge", 8443, plan.DecisionPublish, "10.0.0.5", "as its ports: entry asked"},
		{"--publish all", Options{Policy: PolicyAll}, "db", 5432, plan.DecisionPublish, "", "--publish all"},
		{"--publish none", Options{Policy: PolicyNone}, "api", 8000, plan.DecisionInternal, "", "--publish none"},
		{"--publish SERVICE:PORT", Options{Publish: []PortRef{{Service: "db", Port: 5432, Protocol: "tcp"}}}, "db", 5432, plan.DecisionPublish, "", "named with --publish"},
		{"--publish-address", Options{PublishAddress: "192.168.1.2"}, "api", 8000, plan.DecisionPublish, "192.168.1.2", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := stepsFor(t, stack, tc.opts, stepPublication)
			l := p.svcs[tc.svc].find("tcp", tc.port)
			if l == nil {
				t.Fatalf("%s has no listener on %d", tc.svc, tc.port)
			}
			if l.decision != tc.decision || l.publishIP != tc.ip || !strings.Contains(l.why, tc.why) {
				t.Errorf("%s on %q (%s), want %s on %q with %q", l.decision, l.publishIP, l.why, tc.decision, tc.ip, tc.why)
			}
		})
	}
	p := stepsFor(t, stack, Options{}, stepPublication)
	if l := p.svcs["admin"].find("tcp", 9000); !l.rewriteBind || len(p.binds) != 1 {
		t.Error("admin's literal loopback bind is to be rewritten")
	}
}

// TestStepPublicationSwarmNarrow: swarm publishes on every node address,
// so a loopback listener is left unpublished, with a manual step.
func TestStepPublicationSwarmNarrow(t *testing.T) {
	p := stepsFor(t, "services:\n  a: {image: x, network_mode: host, command: [\"--listen\", \"127.0.0.1:9000\"]}\n", Options{Target: plan.TargetSwarm}, stepPublication)
	l := p.svcs["a"].find("tcp", 9000)
	if l.decision != plan.DecisionInternal || len(p.plan.ManualSteps) != 1 {
		t.Errorf("swarm cannot publish on loopback only: %s, %d manual steps", l.decision, len(p.plan.ManualSteps))
	}
}

func TestStepNetworks(t *testing.T) {
	const stack = dbAndAPI + `  worker:
    image: example/worker
    network_mode: host
    environment: {DB: "postgres://u@localhost:5432/app", FEED: "https://example.com/feed"}
  cache:
    image: redis:7
    command: ["redis-server"]
    environment: {X: "http://host.docker.internal:5432"}
`
	p := stepsFor(t, stack, Options{}, stepNetworks)
	// each stays on the default network only (no networks: written), for
	// its reason
	why := map[string]string{
		"db":  "publishes ports", // on loopback: the files alone cannot rule out outside clients
		"api": "publishes ports",
	}
	for svc, w := range why {
		if s := p.svcs[svc]; len(s.networks) != 0 || !strings.Contains(s.netReason, w) {
			t.Errorf("%s: networks %v (%s), want the default network for %q", svc, s.networks, s.netReason, w)
		}
	}
	// worker's listeners are unknown: it stays on the host network
	if s := p.svcs["worker"]; s.action != plan.ActionKeepHost || s.finding != FindingListenersUnknown {
		t.Errorf("worker: %s (%s), want kept: listeners unknown", s.action, s.finding)
	}
}

func TestStepNetworksInternal(t *testing.T) {
	// an internal network only with evidence that nothing outside is
	// needed: db is not published (--publish none) and was seen making no
	// connection out of the stack
	p := stepsFor(t, dbAndAPI+`networks:
  internal: {}
`, Options{Publish: []PortRef{{Service: "api", Port: 8000, Protocol: "tcp"}}, Policy: PolicyNone, NoOutbound: map[string]bool{"db": true}}, stepNetworks)
	if got := strings.Join(p.svcs["db"].networks, ","); got != "unhost_internal" {
		t.Errorf("db: %s, want unhost_internal (the file defines internal)", got)
	}
	if got := strings.Join(p.svcs["api"].networks, ","); got != "default,unhost_internal" {
		t.Errorf("api: %s, want default,unhost_internal", got)
	}
	if len(p.plan.Networks) != 1 || !p.plan.Networks[0].Internal || strings.Join(p.plan.Networks[0].Services, ",") != "api,db" {
		t.Errorf("networks %+v", p.plan.Networks)
	}
}

func TestStepPins(t *testing.T) {
	cases := []struct {
		name  string
		stack string
		pins  string
	}{
		{"anchor shared with a kept service", "x-h: &h {network_mode: host}\nservices:\n  a: {<<: *h, image: x, expose: [\"80\"]}\n  b: {<<: *h, image: y, devices: [\"/dev/net/tun\"]}\n", "b"},
		{"kept service says it itself", "x-h: &h {network_mode: host}\nservices:\n  a: {<<: *h, image: x, expose: [\"80\"]}\n  b: {<<: *h, image: y, network_mode: host, devices: [\"/dev/net/tun\"]}\n", ""},
		{"nothing shared", "services:\n  a: {image: x, network_mode: host, expose: [\"80\"]}\n  b: {image: y, network_mode: host, devices: [\"/dev/net/tun\"]}\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := stepsFor(t, tc.stack, Options{}, stepNetworks)
			var got []string
			for _, pn := range p.pins {
				got = append(got, pn.service)
			}
			if strings.Join(got, ",") != tc.pins {
				t.Errorf("pins %v, want %q", got, tc.pins)
			}
		})
	}
}

// TestStepEdits: the edits carry out the plan and change none of it;
// what they cannot do comes back as failures.
func TestStepEdits(t *testing.T) {
	// the address is written with an escape, so it is not in the text
	// literally: the rewrite must fail, as an edit failure
	p := stepsFor(t, "services:\n  db: {image: postgres, network_mode: host, environment: {PGPORT: \"5432\"}}\n  api: {image: x, network_mode: host, expose: [\"80\"], environment: {DB: \"local\\x68ost:5432\"}}\n", Options{}, stepNetworks)
	p.finish()
	before := len(p.plan.ManualSteps) + len(p.plan.Blockers) + len(p.plan.Warnings)
	files, failures, err := p.buildEdits()
	if err != nil {
		t.Fatal(err)
	}
	if after := len(p.plan.ManualSteps) + len(p.plan.Blockers) + len(p.plan.Warnings); after != before {
		t.Errorf("buildEdits changed the plan: %d entries, then %d", before, after)
	}
	if len(files) != 1 || len(failures) != 1 || failures[0].blocker || !strings.Contains(failures[0].step.What, "by hand") {
		t.Fatalf("files %d, failures %+v", len(files), failures)
	}
	p.recordEditFailures(failures)
	found := false
	for _, s := range p.plan.ManualSteps {
		found = found || strings.Contains(s.What, "rewrite the addresses in environment.DB by hand")
	}
	if !found {
		t.Errorf("the failure is not a manual step of the plan: %+v", p.plan.ManualSteps)
	}
}

// TestDescribeRef: every case that is recorded has its words: a kind, an
// action and a reason, and a manual step where the action is manual.
func TestDescribeRef(t *testing.T) {
	p := stepsFor(t, "services:\n  a: {image: x, network_mode: host, deploy: {replicas: 2}}\n", Options{}, stepEvidence)
	r := &analysis.AddressRef{Field: "environment.U", Host: "localhost", Port: 6000, Token: "localhost:6000", PortFrom: "U_PORT", Variable: "P"}
	for c := refAdvertised; c <= refAmbiguousPort; c++ {
		if c == refOwnHealthcheck {
			continue // adds a listener, records no reference
		}
		w := p.describeRef(p.svcs["a"], r, refVerdict{c: c, to: "a", target: 6001, after: "a:6001", owners: []owner{{"a", 6000}, {"b", 6000}}})
		if w.kind == "" || w.action == "" || w.reason == "" || (w.action == refActionManual) != (w.step != "") {
			t.Errorf("case %d: %+v", c, w)
		}
	}
}
