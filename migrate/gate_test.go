package migrate

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
)

func strp(s string) *string { return &s }

func TestGate(t *testing.T) {
	nd := []need{{why: "it runs privileged", ev: []analysis.Evidence{{Kind: "privileged"}}}}
	cases := []struct {
		name    string
		in      gateInput
		keep    bool
		finding string
		usage   bool
		forced  bool
	}{
		{"known, no need: moves", gateInput{Name: "a", Listeners: 1}, false, "", false, false},
		{"unknown: kept", gateInput{Name: "a"}, true, FindingListenersUnknown, false, false},
		{"observed listening on nothing (a client): moves", gateInput{Name: "a", Observed: true}, false, "", false, false},
		{"unknown but --publish: moves", gateInput{Name: "a", Published: []int{80}}, false, "", false, false},
		{"need: kept", gateInput{Name: "a", Listeners: 2, Needs: nd}, true, FindingNeedsHost, false, false},
		{"need and --force with evidence: moves", gateInput{Name: "a", Listeners: 2, Needs: nd, Forced: true}, false, "", false, true},
		{"--force without evidence: usage error", gateInput{Name: "a", Needs: nd, Forced: true}, false, "", true, false},
		{"--force with --publish: moves", gateInput{Name: "a", Needs: nd, Forced: true, Published: []int{1194}}, false, "", false, true},
		{"env file missing: kept", gateInput{Name: "a", Listeners: 1, MissingEnv: []string{"/x/stack.env"}}, true, FindingListenersUnknown, false, false},
		{"env file missing, --publish: moves", gateInput{Name: "a", Listeners: 1, MissingEnv: []string{"/x/stack.env"}, Published: []int{80}}, false, "", false, false},
		{"weak only: kept, says the mount", gateInput{Name: "a", Weak: []string{"3000/tcp"}, ConfigMounts: []string{"/etc/grafana/grafana.ini"}}, true, FindingListenersUnknown, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := gate(tc.in)
			if g.Keep != tc.keep || g.Finding != tc.finding || (g.Usage != "") != tc.usage || (g.Forced != "") != tc.forced {
				t.Fatalf("gate = %+v", g)
			}
			if g.Keep && !strings.Contains(g.Reason, "--publish a:PORT") {
				t.Errorf("the reason does not say how to move it: %s", g.Reason)
			}
			if len(tc.in.Weak) > 0 && !strings.Contains(g.Reason, "/etc/grafana/grafana.ini") {
				t.Errorf("the reason does not name the mounted configuration: %s", g.Reason)
			}
		})
	}
}

func TestHostNeeds(t *testing.T) {
	bind := func(src string) types.ServiceVolumeConfig {
		return types.ServiceVolumeConfig{Type: types.VolumeTypeBind, Source: src, Target: "/x"}
	}
	env := func(kv ...string) types.MappingWithEquals {
		m := types.MappingWithEquals{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = strp(kv[i+1])
		}
		return m
	}
	cases := []struct {
		name string
		set  func(s *types.ServiceConfig)
		want string // substring of a need; "" for none
	}{
		// privileged, pid: host, network capabilities and /dev/net/tun are
		// the analysis's host needs (analysis/hostneeds_test.go)
		{"plain", func(s *types.ServiceConfig) { s.Image = "nginx"; s.Environment = env("PORT", "8080") }, ""},
		{"ipc host", func(s *types.ServiceConfig) { s.Ipc = "host" }, "ipc: host"},
		{"host /proc", func(s *types.ServiceConfig) { s.Volumes = []types.ServiceVolumeConfig{bind("/proc")} }, "/proc"},
		{"host /proc/", func(s *types.ServiceConfig) { s.Volumes = []types.ServiceVolumeConfig{bind("/proc/")} }, "/proc"},
		{"a data folder is not host state", func(s *types.ServiceConfig) { s.Volumes = []types.ServiceVolumeConfig{bind("/srv/data")} }, ""},
		{"dbus", func(s *types.ServiceConfig) { s.Volumes = []types.ServiceVolumeConfig{bind("/var/run/dbus")} }, "D-Bus"},
		{"avahi socket", func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{bind("/run/avahi-daemon/socket")}
		}, "Avahi"},
		{"interfaces", func(s *types.ServiceConfig) { s.Environment = env("IFACES", "enp4s0 wlxf4ec3892dd51") }, "enp4s0"},
		{"an address is not an interface", func(s *types.ServiceConfig) { s.Environment = env("LISTEN_INTERFACE", "0.0.0.0") }, ""},
		{"discovery port", func(s *types.ServiceConfig) { s.Environment = env("PORT_DISCOVERY", "29810") }, "discovery"},
		{"a discovery URL is not a discovery port", func(s *types.ServiceConfig) { s.Environment = env("DISCOVERY_URL", "http://consul:8500") }, ""},
		{"DDS", func(s *types.ServiceConfig) { s.Environment = env("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") }, "DDS"},
		{"media range", func(s *types.ServiceConfig) { s.Environment = env("KMS_MIN_PORT", "40000", "KMS_MAX_PORT", "57000") }, "40000-57000"},
		{"small range", func(s *types.ServiceConfig) { s.Environment = env("RTP_MIN_PORT", "10000", "RTP_MAX_PORT", "10010") }, ""},
		{"TURN flags", func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"--min-port=49152", "--max-port=65535"} }, "49152-65535"},
		{"TURN flags, separate", func(s *types.ServiceConfig) {
			s.Command = types.ShellCommand{"--min-port", "49152", "--max-port", "65535"}
		}, "49152-65535"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var whys []string
			var sc types.ServiceConfig
			tc.set(&sc)
			for _, n := range hostNeeds(sc) {
				whys = append(whys, n.why)
				if len(n.ev) == 0 {
					t.Errorf("need without evidence: %s", n.why)
				}
			}
			got := strings.Join(whys, "\n")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("needs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommandBinds(t *testing.T) {
	cases := []struct {
		command string // YAML value of command:
		want    string // BindText, "" for none
	}{
		{`["mongod", "--bind_ip", "127.0.0.1"]`, "127.0.0.1"},
		{`mongod --bind_ip=127.0.0.1 --port 27018`, "127.0.0.1"},
		{`["postgres", "-c", "listen_addresses=localhost", "-c", "port=5433"]`, "localhost"},
		{`streamlit run app.py --server.address 127.0.0.1 --server.port 8501`, "127.0.0.1"},
		{`["app", "--bind", "0.0.0.0"]`, ""},
		{`["app", "--bind", "127.0.0.1:8080"]`, ""}, // with a port: the analysis reads it
		{`["app", "--upstream", "127.0.0.1"]`, ""},
		{`["app", "--host", "::1"]`, "::1"},
	}
	for _, tc := range cases {
		t.Run(tc.command, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte("command: "+tc.command+"\n"), &doc); err != nil {
				t.Fatal(err)
			}
			f := &load.SourceFile{Path: "compose.yaml"}
			got := commandBinds([]load.NodeRef{{File: f, Node: doc.Content[0]}})
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("binds = %+v, want none", got)
			case tc.want != "" && (len(got) != 1 || got[0].BindText != tc.want || !analysis.IsLoopback(got[0].Address)):
				t.Fatalf("binds = %+v, want %q", got, tc.want)
			case tc.want != "" && !strings.Contains(got[0].Node.Value, tc.want):
				t.Fatalf("the bind's node %q does not hold %q", got[0].Node.Value, tc.want)
			}
		})
	}
}

func TestListenURLPorts(t *testing.T) {
	var s types.ServiceConfig
	s.Environment = types.MappingWithEquals{
		"KAFKA_LISTENERS":            strp("INSIDE://:9092,OUTSIDE://:9093"),
		"KAFKA_ADVERTISED_LISTENERS": strp("INSIDE://:19092"),
		"OTHER":                      strp("x://:7000"),
	}
	var got []int
	for _, l := range listenURLPorts(s) {
		got = append(got, l.Port)
	}
	if len(got) != 2 || got[0] != 9092 || got[1] != 9093 {
		t.Fatalf("ports = %v, want [9092 9093]", got)
	}
}

func TestPickSibling(t *testing.T) {
	zk := siblingCandidate{Name: "zk", Image: "bitnami/zookeeper:3.9"}
	db := siblingCandidate{Name: "db", Image: "x/db"}
	dep := func(c siblingCandidate) siblingCandidate { c.DependedOn = true; return c }
	doc := func(c siblingCandidate) siblingCandidate { c.Documented = true; return c }
	cases := []struct {
		name  string
		field string
		cands []siblingCandidate
		pick  string
		amb   int
	}{
		{"by image name in the variable", "environment.KAFKA_ZOOKEEPER_CONNECT", []siblingCandidate{zk, dep(db)}, "zk", 0},
		{"by service name", "environment.DB_ADDR", []siblingCandidate{zk, db}, "db", 0},
		{"by documented port", "command", []siblingCandidate{doc(zk), db}, "zk", 0},
		{"by depends_on alone", "environment.UPSTREAM", []siblingCandidate{zk, dep(db)}, "db", 0},
		{"two depends_on: ambiguous", "environment.UPSTREAM", []siblingCandidate{dep(zk), dep(db)}, "", 2},
		{"nothing fits: a host service", "environment.UPSTREAM", []siblingCandidate{zk, db}, "", 0},
		{"a substring is not a name", "environment.DBX_URL", []siblingCandidate{db}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pick, amb := pickSibling(tc.field, tc.cands)
			if pick != tc.pick || len(amb) != tc.amb {
				t.Fatalf("pick %q, ambiguous %v; want %q and %d", pick, amb, tc.pick, tc.amb)
			}
		})
	}
}

func TestClashes(t *testing.T) {
	got := clashes([]portClaim{{"a", "tcp", 80, 0}, {"b", "tcp", 80, 0}, {"c", "udp", 80, 0}, {"d", "tcp", 8000, 8010}, {"e", "tcp", 8005, 0}})
	if len(got) != 2 || strings.Join(got["80/tcp"], ",") != "a,b" || strings.Join(got["8005/tcp"], ",") != "d,e" {
		t.Fatalf("clashes = %v", got)
	}
}

func TestLivePortSeqs(t *testing.T) {
	n := func(tag string) load.NodeRef {
		return load.NodeRef{Node: &yaml.Node{Kind: yaml.SequenceNode, Tag: tag}}
	}
	seqs := []load.NodeRef{n("!!seq"), n("!reset"), n("!!seq")}
	if got := livePortSeqs(seqs); len(got) != 2 || got[0].Node.Tag != "!reset" {
		t.Fatalf("live = %+v", got)
	}
	if got := livePortSeqs(seqs[:1]); len(got) != 1 {
		t.Fatalf("no reset: live = %+v", got)
	}
}

func TestRunbookParts(t *testing.T) {
	ports := []pubPort{
		{Service: "api", Proto: "tcp", Port: 3000, IP: "127.0.0.1", Before: "0.0.0.0"},
		{Service: "cache", Proto: "tcp", Port: 6379, IP: "127.0.0.1", Before: "127.0.0.1"},
		{Service: "web", Proto: "tcp", Port: 8080, Before: "0.0.0.0"},
		{Service: "dns", Proto: "udp", Port: 53, Before: "0.0.0.0"},
	}
	n := narrowed(ports)
	if len(n) != 1 || !strings.HasPrefix(n[0], "api port 3000/tcp") {
		t.Errorf("narrowed = %q, want api only (cache was loopback before)", n)
	}
	if st := smokeTests(ports, 8); len(st) != 3 || !strings.Contains(st[2], "/dev/tcp/127.0.0.1/8080") {
		t.Errorf("smoke tests = %q, want the 3 TCP ports", st)
	}
	w := strings.Join(natWarnings(ports, false), "\n")
	if !strings.Contains(w, "api 3000/tcp, cache 6379/tcp through Docker's userland proxy") || !strings.Contains(w, "remote IPv4 clients of web 8080/tcp, dns 53/udp keep their address") {
		t.Errorf("NAT warnings do not say which case applies:\n%s", w)
	}
	if strings.Contains(strings.Join(natWarnings(ports, true), "\n"), "::1 first") {
		t.Errorf("the ::1 note where [::1] is published too")
	}
	if natWarnings(nil, false) != nil {
		t.Errorf("a NAT warning with nothing published")
	}
	if got := newNetworks("shop", []string{"internal"}, true); strings.Join(got, " ") != "shop_default shop_internal" {
		t.Errorf("new networks = %v", got)
	}
	if got := missingNetworks([]string{"default"}, [][]string{{"backend", "default"}, {"backend"}}); strings.Join(got, " ") != "backend" {
		t.Errorf("missing networks = %v", got)
	}
}

// FuzzCommandBinds: whatever the command, every bind found is a loopback
// address held in the scalar it names (the rewriter replaces it there).
func FuzzCommandBinds(f *testing.F) {
	for _, s := range []string{`["mongod", "--bind_ip", "127.0.0.1"]`, `postgres -c listen_addresses=localhost`, `--host=[::1]`, `["--bind"]`, `-c`, `"--bind_ip=127.0.0.1,::1"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte("command: "+command+"\n"), &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return
		}
		f := &load.SourceFile{Path: "compose.yaml"}
		for _, b := range commandBinds([]load.NodeRef{{File: f, Node: doc.Content[0]}}) {
			if !analysis.IsLoopback(b.Address) || !strings.Contains(b.Node.Value, b.BindText) {
				t.Fatalf("bind %q (%q) not in %q", b.BindText, b.Address, b.Node.Value)
			}
		}
	})
}
