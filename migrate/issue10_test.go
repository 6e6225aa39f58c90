package migrate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
)

// migrateFiles writes files (name -> text; the first in names order is
// loaded first) to a folder and migrates them with opts.
func migrateFiles(t *testing.T, names []string, files map[string]string, opts migrate.Options) (*migrate.Result, map[string]string, error) {
	t.Helper()
	c, err := writeAndLoad(t, names, files)
	if err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Migrate(c, opts)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = files[n]
	}
	for _, f := range res.Files {
		out[filepath.Base(f.Abs)] = string(f.New)
	}
	if err := migrate.Check(context.Background(), c, res); err != nil {
		t.Fatalf("the rewrite does not check: %v", err)
	}
	return res, out, nil
}

// writeAndLoad writes files to a new folder and loads names (in order) as
// the project's compose files; other files are there for them to use.
func writeAndLoad(t *testing.T, names []string, files map[string]string) (*load.Compose, error) {
	t.Helper()
	dir := t.TempDir()
	for n, text := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(dir, n))
	}
	return load.LoadCompose(context.Background(), load.ComposeOptions{Files: paths, WorkDir: dir})
}

func service(p *plan.Plan, name string) plan.ServicePlan {
	for _, s := range p.Services {
		if s.Name == name {
			return s
		}
	}
	return plan.ServicePlan{}
}

// TestIssue10 runs the minimal files of issue 10's numbered failures
// through Migrate.
func TestIssue10(t *testing.T) {
	type want struct {
		action   map[string]plan.Action
		finding  map[string]string
		contains []string // in the rewritten compose.yaml
		lacks    []string
		reason   map[string]string // substring of the service's reason
		notPort  map[string]int    // a port the service must not have
		blocker  string            // substring of a blocker
	}
	cases := []struct {
		name  string
		files []string
		text  map[string]string
		opts  migrate.Options
		want  want
	}{
		// the issue's example is scrypted, which the image table now knows
		// to need the host network (HomeKit mDNS): an image unhost knows
		// nothing of stands in for "no known listener"
		{name: "1 no known listener stays with a finding", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  nvr:\n    image: ghcr.io/example/nvr\n    network_mode: host\n"},
			want: want{action: map[string]plan.Action{"nvr": plan.ActionKeepHost}, finding: map[string]string{"nvr": migrate.FindingListenersUnknown},
				reason: map[string]string{"nvr": "--publish nvr:PORT"}, contains: []string{"network_mode: host"}}},
		{name: "1 and 2: scrypted needs the host network (image table)", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  nvr:\n    image: ghcr.io/koush/scrypted\n    network_mode: host\n"},
			want: want{action: map[string]plan.Action{"nvr": plan.ActionKeepHost}, finding: map[string]string{"nvr": migrate.FindingNeedsHost},
				reason: map[string]string{"nvr": "mDNS"}, contains: []string{"network_mode: host"}}},
		{name: "1 --publish is evidence", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  nvr:\n    image: ghcr.io/example/nvr\n    network_mode: host\n"},
			opts: migrate.Options{Publish: []migrate.PortRef{{Service: "nvr", Port: 10443, Protocol: "tcp"}}},
			want: want{action: map[string]plan.Action{"nvr": plan.ActionMigrate}, contains: []string{`"10443:10443"`}, lacks: []string{"network_mode"}}},
		{name: "2 host metrics agent (host /proc, pid: host)", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  node-exporter:\n    image: prom/node-exporter\n    network_mode: host\n    pid: host\n    volumes: [\"/proc:/host/proc:ro\"]\n    command: [\"--web.listen-address=:9100\"]\n"},
			want: want{action: map[string]plan.Action{"node-exporter": plan.ActionKeepHost}, finding: map[string]string{"node-exporter": migrate.FindingNeedsHost},
				reason: map[string]string{"node-exporter": "pid: host"}, lacks: []string{"9100:9100"}}},
		{name: "2 TURN relay range on the command line", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  coturn:\n    image: coturn/coturn\n    network_mode: host\n    command: [\"--listening-port=3478\", \"--min-port=49160\", \"--max-port=49200\"]\n  kms:\n    image: kurento/kurento-media-server\n    network_mode: host\n    environment:\n      KMS_MIN_PORT: 40000\n      KMS_MAX_PORT: 57000\n      PORT: 8888\n"},
			want: want{action: map[string]plan.Action{"kms": plan.ActionKeepHost}, reason: map[string]string{"kms": "40000-57000"}}},
		{name: "2 mDNS through D-Bus/Avahi, interfaces, DDS", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  samba:\n    image: x/samba\n    network_mode: host\n    expose: [\"445\"]\n    volumes: [\"/var/run/dbus:/var/run/dbus\"]\n  wyl:\n    image: x/wyl\n    network_mode: host\n    environment: {IFACES: \"enp4s0 wlan0\", PORT: \"8840\"}\n  ros:\n    image: x/ros\n    network_mode: host\n    environment: {ROS_DOMAIN_ID: \"3\", PORT: \"9090\"}\n"},
			want: want{action: map[string]plan.Action{"samba": plan.ActionKeepHost, "wyl": plan.ActionKeepHost, "ros": plan.ActionKeepHost},
				reason: map[string]string{"samba": "D-Bus", "wyl": "enp4s0", "ros": "DDS"}}},
		{name: "3 privileged", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  dae:\n    image: daeuniverse/dae\n    network_mode: host\n    privileged: true\n    expose: [\"2023\"]\n"},
			want: want{action: map[string]plan.Action{"dae": plan.ActionKeepHost}, finding: map[string]string{"dae": migrate.FindingNeedsHost}, reason: map[string]string{"dae": "privileged"}}},
		{name: "5 loopback bind without a port stays loopback", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  mongodb:\n    image: mongo\n    network_mode: host\n    command: [\"mongod\", \"--bind_ip\", \"127.0.0.1\"]\n  app:\n    image: x/app\n    network_mode: host\n    expose: [\"8080\"]\n    environment: {MONGO_URI: \"mongodb://127.0.0.1:27017\"}\n"},
			want: want{action: map[string]plan.Action{"mongodb": plan.ActionMigrate}, contains: []string{`"127.0.0.1:27017:27017"`, `"0.0.0.0"`}, lacks: []string{`"27017:27017"`}}},
		{name: "6 a localhost reference picks the sibling by the variable's name", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  zookeeper:\n    image: bitnami/zookeeper\n    network_mode: host\n  kafka:\n    image: bitnami/kafka\n    network_mode: host\n    depends_on: [zookeeper]\n    environment: {KAFKA_ZOOKEEPER_CONNECT: \"127.0.0.1:2181\"}\n"},
			want: want{action: map[string]plan.Action{"zookeeper": plan.ActionMigrate, "kafka": plan.ActionMigrate}, contains: []string{"zookeeper:2181"}, lacks: []string{"host.docker.internal"}}},
		{name: "6 several siblings fit: a blocker, never the host gateway", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  a:\n    image: x/a\n    network_mode: host\n  b:\n    image: x/b\n    network_mode: host\n  app:\n    image: x/app\n    network_mode: host\n    expose: [\"80\"]\n    depends_on: [a, b]\n    environment: {UPSTREAM: \"127.0.0.1:7000\"}\n"},
			want: want{action: map[string]plan.Action{"app": plan.ActionMigrate, "a": plan.ActionKeepHost}, lacks: []string{"host.docker.internal"}, blocker: "a, b could each be it"}},
		{name: "7 a bind to a host name is a blocker", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  iotdb:\n    image: x/iotdb\n    network_mode: host\n    environment: {RPC_LISTEN: \"iotdb-1:6667\"}\n"},
			want: want{action: map[string]plan.Action{"iotdb": plan.ActionKeepHost}, blocker: "binds iotdb-1:6667", contains: []string{"network_mode: host"}}},
		{name: "8 a port named by one service and bound by another is the other's", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  web:\n    image: x/web\n    network_mode: host\n    expose: [\"3000\"]\n    environment: {NEXT_PUBLIC_API_URL: \"http://localhost:8080\"}\n  api:\n    image: x/api\n    network_mode: host\n    command: [\"--listen\", \"0.0.0.0:8080\"]\n"},
			want: want{action: map[string]plan.Action{"web": plan.ActionMigrate, "api": plan.ActionMigrate}, contains: []string{`"3000:3000"`, `"8080:8080"`}, notPort: map[string]int{"web": 8080}}},
		{name: "13 port lines written one by one stay one by one", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    network_mode: host\n    ports:\n      - \"8000:8000\"\n      - \"8001:8001\"   # admin\n"},
			want: want{action: map[string]plan.Action{"app": plan.ActionMigrate}, contains: []string{"- \"8000:8000\" " + migrate.SameReachMarker + "\n      " + migrate.SameReachMarker + "\n      - \"8001:8001\"   # admin"}, lacks: []string{"8000-8001"}}},
		{name: "13 loopback published on [::1] too where the engine has IPv6", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    network_mode: host\n    command: [\"--listen\", \"127.0.0.1:8080\"]\n"},
			opts: migrate.Options{LoopbackIPv6: true},
			want: want{action: map[string]plan.Action{"app": plan.ActionMigrate}, contains: []string{`"127.0.0.1:8080:8080"`, `"[::1]:8080:8080"`}}},
		{name: "9 a service joins the networks of what it depends on", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  mgr:\n    image: x/mgr\n    network_mode: host\n    expose: [\"7000\"]\n    depends_on: [mysql]\n  mysql:\n    image: mysql\n    networks: [backend]\nnetworks:\n  backend: {}\n"},
			want: want{action: map[string]plan.Action{"mgr": plan.ActionMigrate}, contains: []string{"- backend"}, lacks: []string{"internal: true"}}},
		{name: "10 followers' listeners are published on the service they follow", files: []string{"compose.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  orders:\n    image: x/orders\n    network_mode: host\n    expose: [\"18501\"]\n  sidecar:\n    image: x/sidecar\n    network_mode: \"service:orders\"\n    expose: [\"18502\"]\n"},
			want: want{action: map[string]plan.Action{"orders": plan.ActionMigrate, "sidecar": plan.ActionFollow}, contains: []string{`"18501:18501"`, `"18502:18502"`}}},
		{name: "11 !reset in an override becomes !override with the ports", files: []string{"compose.yaml", "compose.host.yaml"},
			text: map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    ports: [\"18800:18800\"]\n",
				"compose.host.yaml": "services:\n  app:\n    network_mode: host\n    ports: !reset []\n    expose: [\"18800\"]\n"},
			want: want{action: map[string]plan.Action{"app": plan.ActionMigrate}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, out, err := migrateFiles(t, tc.files, tc.text, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for n, a := range tc.want.action {
				if got := service(res.Plan, n).Action; got != a {
					t.Errorf("%s: action %s, want %s (%s)", n, got, a, service(res.Plan, n).Reason)
				}
			}
			for n, f := range tc.want.finding {
				if got := service(res.Plan, n).Finding; got != f {
					t.Errorf("%s: finding %q, want %q", n, got, f)
				}
			}
			for n, r := range tc.want.reason {
				if got := service(res.Plan, n).Reason; !strings.Contains(got, r) {
					t.Errorf("%s: reason %q does not say %q", n, got, r)
				}
			}
			if tc.want.blocker != "" {
				found := false
				for _, b := range res.Plan.Blockers {
					found = found || strings.Contains(b.What, tc.want.blocker)
				}
				if !found {
					t.Errorf("no blocker says %q: %+v", tc.want.blocker, res.Plan.Blockers)
				}
			}
			for n, port := range tc.want.notPort {
				for _, l := range service(res.Plan, n).Listeners {
					if l.Port == port {
						t.Errorf("%s has port %d (%s)", n, port, l.Reason)
					}
				}
			}
			text := out[tc.files[0]]
			for _, s := range tc.want.contains {
				if !strings.Contains(text, s) {
					t.Errorf("rewritten file lacks %q:\n%s", s, text)
				}
			}
			for _, s := range tc.want.lacks {
				if strings.Contains(text, s) {
					t.Errorf("rewritten file has %q:\n%s", s, text)
				}
			}
			// the output is a fixed point
			again, _, err := migrateFiles(t, tc.files, out, tc.opts)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			for _, f := range again.Files {
				t.Errorf("second run changes %s:\n%s", f.Path, migrate.UnifiedDiff(f.Path, f.Old, f.New))
			}
		})
	}
}

// TestIssue10Reset checks item 11 on the merged result: the base file's
// port survives the override's reset.
func TestIssue10Reset(t *testing.T) {
	files := map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    ports: [\"18800:18800\"]\n",
		"compose.host.yaml": "services:\n  app:\n    network_mode: host\n    ports: !reset []\n    expose: [\"18800\"]\n"}
	names := []string{"compose.yaml", "compose.host.yaml"}
	_, out, err := migrateFiles(t, names, files, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := writeAndLoad(t, names, out)
	if err != nil {
		t.Fatalf("migrated files do not load: %v\n%s", err, out["compose.host.yaml"])
	}
	s := c.Project.Services["app"]
	if s.NetworkMode == "host" || len(s.Ports) != 1 || s.Ports[0].Target != 18800 {
		t.Fatalf("merged app: network_mode %q, ports %+v, want 18800 published\n%s", s.NetworkMode, s.Ports, out["compose.host.yaml"])
	}
}

// TestForceNeedsEvidence: --force SERVICE moves a service with no known
// listener only with --publish SERVICE:PORT or evidence.
func TestForceNeedsEvidence(t *testing.T) {
	text := map[string]string{"compose.yaml": "services:\n  vpn:\n    image: x/vpn\n    network_mode: host\n    cap_add: [NET_ADMIN]\n"}
	_, _, err := migrateFiles(t, []string{"compose.yaml"}, text, migrate.Options{Force: map[string]bool{"vpn": true}})
	var ue *migrate.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--publish vpn:PORT") {
		t.Fatalf("--force without evidence: %v, want a usage error naming --publish vpn:PORT", err)
	}
	res, out, err := migrateFiles(t, []string{"compose.yaml"}, text, migrate.Options{Force: map[string]bool{"vpn": true},
		Publish: []migrate.PortRef{{Service: "vpn", Port: 1194, Protocol: "udp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if service(res.Plan, "vpn").Action != plan.ActionMigrate || !strings.Contains(out["compose.yaml"], "1194:1194/udp") {
		t.Fatalf("--force with --publish: %s\n%s", service(res.Plan, "vpn").Action, out["compose.yaml"])
	}
	// without --force, the capability keeps it, and says how to move it
	res, _, err = migrateFiles(t, []string{"compose.yaml"}, text, migrate.Options{Publish: []migrate.PortRef{{Service: "vpn", Port: 1194, Protocol: "udp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if s := service(res.Plan, "vpn"); s.Action != plan.ActionKeepHost || !strings.Contains(s.Reason, "--force vpn") {
		t.Fatalf("NET_ADMIN without --force: %s: %s", s.Action, s.Reason)
	}
}

// TestIssue10Clash: two services that would hold one host port after the
// migration are a blocker, and nothing is written (item 8).
func TestIssue10Clash(t *testing.T) {
	text := map[string]string{"compose.yaml": "services:\n  otbr:\n    image: x/otbr\n    network_mode: host\n    environment: {OTBR_WEB_PORT: \"8080\"}\n  setup:\n    image: x/setup\n    network_mode: host\n    environment: {WEB_PORT: \"8080\"}\n"}
	res, _, err := migrateFiles(t, []string{"compose.yaml"}, text, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 0 || res.Plan.Changed {
		t.Errorf("a file with a port clash was written")
	}
	found := false
	for _, b := range res.Plan.Blockers {
		found = found || strings.Contains(b.What, "host port 8080/tcp")
	}
	if !found {
		t.Errorf("no blocker names the clash: %+v", res.Plan.Blockers)
	}
}

// TestIssue10Smaller covers item 13: network_mode through a variable is a
// blocker naming it; a bind-mounted configuration file of a migrated
// service that names a loopback address becomes a manual step with its
// file and line.
func TestIssue10Smaller(t *testing.T) {
	res, _, err := migrateFiles(t, []string{"compose.yaml"}, map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    network_mode: ${NETMODE:-host}\n    expose: [\"80\"]\n"}, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := service(res.Plan, "app"); s.Action != plan.ActionKeepHost || len(res.Plan.Blockers) != 1 || !strings.Contains(res.Plan.Blockers[0].What, "variable NETMODE") || res.Plan.Blockers[0].Where != "compose.yaml:4:19" {
		t.Errorf("network_mode through a variable: %s, blockers %+v", s.Action, res.Plan.Blockers)
	}
	c, err := writeAndLoad(t, []string{"compose.yaml"}, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: x/app\n    network_mode: host\n    expose: [\"80\"]\n    volumes: [\"./app.conf:/etc/app.conf\"]\n  db:\n    image: postgres\n    network_mode: host\n",
		"app.conf":     "# app\ndb_host = 127.0.0.1:5432\n"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = migrate.Migrate(c, migrate.Options{WorkDir: c.Project.WorkingDir})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range res.Plan.ManualSteps {
		found = found || m.Service == "app" && strings.HasSuffix(m.Where, "app.conf:2:11") && strings.Contains(m.What, "db:5432")
	}
	if !found {
		t.Errorf("no manual step for app.conf:2: %+v", res.Plan.ManualSteps)
	}
}

// TestIssue10ObservedBind: an observed loopback listener whose
// ADDRESS:PORT is written in the service's own environment is bound there:
// rewritten, published on loopback, no blocker (item 12).
func TestIssue10ObservedBind(t *testing.T) {
	inv := &detect.Inventory{Version: detect.InventoryVersion, Project: "p", Services: []detect.ServiceObservation{{Service: "app", NetworkMode: "host",
		Listeners: []detect.Listener{{Protocol: "tcp", Address: "0.0.0.0", Port: 19000}, {Protocol: "tcp", Address: "127.0.0.1", Port: 19001}}}}}
	res, out, err := migrateFiles(t, []string{"compose.yaml"}, map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    network_mode: host\n    environment:\n      - LISTEN=tcp:19000,tcp:127.0.0.1:19001\n"}, migrate.Options{Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	text := out["compose.yaml"]
	if len(res.Plan.Blockers) != 0 || !strings.Contains(text, "LISTEN=tcp:19000,tcp:0.0.0.0:19001") || !strings.Contains(text, `"127.0.0.1:19001:19001"`) {
		t.Fatalf("blockers %+v\n%s", res.Plan.Blockers, text)
	}
}

// TestIssue10FollowerObserved: a follower's listener seen at runtime (the
// VPN-sidecar pattern) is published on the service it follows (item 10).
func TestIssue10FollowerObserved(t *testing.T) {
	inv := &detect.Inventory{Version: detect.InventoryVersion, Project: "p", Services: []detect.ServiceObservation{
		{Service: "orders", NetworkMode: "host", Listeners: []detect.Listener{{Protocol: "tcp", Address: "0.0.0.0", Port: 18501}}},
		{Service: "sidecar", NetworkMode: "service:orders", Listeners: []detect.Listener{{Protocol: "tcp", Address: "0.0.0.0", Port: 18502}}},
	}}
	res, out, err := migrateFiles(t, []string{"compose.yaml"}, map[string]string{"compose.yaml": "services:\n  orders:\n    image: x/orders\n    network_mode: host\n  sidecar:\n    image: x/sidecar\n    network_mode: \"service:orders\"\n"}, migrate.Options{Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	if service(res.Plan, "orders").Action != plan.ActionMigrate || !strings.Contains(out["compose.yaml"], `"18502:18502"`) {
		t.Fatalf("orders %s:\n%s", service(res.Plan, "orders").Action, out["compose.yaml"])
	}
}

// TestIssue10Internal: a service goes on an internal network (no route
// out) only when an observation found it making no connection outside the
// stack; without that evidence it keeps the default network (item 9).
func TestIssue10Internal(t *testing.T) {
	inv := &detect.Inventory{Version: detect.InventoryVersion, Project: "p", Services: []detect.ServiceObservation{
		{Service: "app", NetworkMode: "host", Listeners: []detect.Listener{{Protocol: "tcp", Address: "0.0.0.0", Port: 8000}},
			OutsideClients: []detect.OutsideClient{{Port: 8000, Protocol: "tcp", Peers: []string{"public"}}}},
		{Service: "db", NetworkMode: "host", Listeners: []detect.Listener{{Protocol: "tcp", Address: "0.0.0.0", Port: 5432}}},
	}, Edges: []detect.Edge{{From: "app", To: "db", Port: 5432, Protocol: "tcp", Via: "loopback"}}}
	files := map[string]string{"compose.yaml": "services:\n  app:\n    image: x/app\n    network_mode: host\n    environment: {DATABASE_URL: \"postgres://localhost:5432/app\"}\n  db:\n    image: postgres\n    network_mode: host\n"}
	for _, tc := range []struct {
		noOutbound map[string]bool
		internal   bool
	}{{nil, false}, {map[string]bool{"db": true}, true}} {
		res, out, err := migrateFiles(t, []string{"compose.yaml"}, files, migrate.Options{Inventory: inv, NoOutbound: tc.noOutbound})
		if err != nil {
			t.Fatal(err)
		}
		db := service(res.Plan, "db")
		if got := strings.Contains(out["compose.yaml"], "internal: true"); got != tc.internal || db.Action != plan.ActionMigrate {
			t.Errorf("NoOutbound %v: internal network %v, want %v (db %s: %s)\n%s", tc.noOutbound, got, tc.internal, db.Action, db.NetworkReason, out["compose.yaml"])
		}
	}
}
