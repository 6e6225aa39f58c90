package analysis

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/unhost/unhost/load"
)

// analyzeYAML loads one compose file and analyses it without an engine.
func analyzeYAML(t *testing.T, src string) (*load.Compose, *Facts) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{p}, WorkDir: dir, ProjectName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return c, Analyze(c, nil)
}

// refText renders refs as "role host:port (token)" lines, sorted.
func refText(refs []AddressRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, fmt.Sprintf("%s %s %s:%d token=%s", r.Field, r.Role, r.Host, r.Port, r.Token))
	}
	sort.Strings(out)
	return out
}

// listenerText renders listeners as "proto/port@address scope" lines.
func listenerText(ls []StaticListener) []string {
	var out []string
	for _, l := range ls {
		s := fmt.Sprintf("%s/%d@%s %s", l.Protocol, l.Port, l.Address, l.Scope)
		if l.Node != nil {
			s += " bind=" + l.BindText
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// expectLines checks that got has every line of want and none of not.
func expectLines(t *testing.T, what string, got, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("missing %s %q; got:\n  %s", what, w, strings.Join(got, "\n  "))
		}
	}
	for _, b := range not {
		if contains(got, b) {
			t.Errorf("unexpected %s %q; got:\n  %s", what, b, strings.Join(got, "\n  "))
		}
	}
}

// TestReferenceForms: every form the one reference finder reads, in
// environment (map and list), command, entrypoint and healthcheck.
func TestReferenceForms(t *testing.T) {
	tests := []struct {
		name    string
		service string // the service's YAML body, indented by 4
		refs    []string
		noRefs  []string // refs that must not be found
	}{
		{"scheme host port list", `    environment:
      UPSTREAMS: tcp:localhost:15432,tcp:cache:16379,tcp:telemetry:18125`,
			[]string{"environment.UPSTREAMS connect localhost:15432 token=localhost:15432",
				"environment.UPSTREAMS connect cache:16379 token=cache:16379",
				"environment.UPSTREAMS connect telemetry:18125 token=telemetry:18125"}, nil},
		{"scheme IP port (item 12)", `    environment:
      - LISTEN=tcp:19000,tcp:127.0.0.1:19001`,
			[]string{"environment.LISTEN listen 127.0.0.1:19001 token=127.0.0.1:19001", "environment.LISTEN listen :19000 token=19000"},
			[]string{"environment.LISTEN connect tcp:127 token=tcp:127"}},
		{"scheme IPv6 port", `    environment:
      DNS: udp:[::1]:53`,
			[]string{"environment.DNS connect ::1:53 token=[::1]:53"}, nil},
		{"URL", `    environment:
      DB_URL: postgres://user:secret@localhost:5433/app`,
			[]string{"environment.DB_URL connect localhost:5433 token=localhost:5433"}, nil},
		{"URL default port", `    environment:
      API: http://127.0.0.1/v1`,
			[]string{"environment.API connect 127.0.0.1:80 token=127.0.0.1"}, nil},
		{"host port", `    environment:
      - CACHE=localhost:6379`,
			[]string{"environment.CACHE connect localhost:6379 token=localhost:6379"}, nil},
		{"space separated list", `    environment:
      PEERS: "localhost:7001 localhost:7002"`,
			[]string{"environment.PEERS connect localhost:7001 token=localhost:7001", "environment.PEERS connect localhost:7002 token=localhost:7002"}, nil},
		{"command string", `    command: worker --upstream localhost:9000`,
			[]string{"command connect localhost:9000 token=localhost:9000"}, nil},
		{"command list", `    command: ["worker", "--listen", "127.0.0.1:9001"]`,
			[]string{"command listen 127.0.0.1:9001 token=127.0.0.1:9001"}, nil},
		{"entrypoint", `    entrypoint: /bin/proxy -connect=localhost:9002`,
			[]string{"entrypoint connect localhost:9002 token=localhost:9002"}, nil},
		{"healthcheck", `    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:9100/health"]`,
			[]string{"healthcheck.test connect localhost:9100 token=localhost:9100"}, nil},
		{"host and port variables", `    environment:
      DB_HOST: localhost
      DB_PORT: "5433"`,
			[]string{"environment.DB_HOST connect localhost:5433 token=localhost"}, nil},
		{"runserver is a bind (item 4)", `    command: python manage.py runserver 127.0.0.1:8000`,
			[]string{"command listen 127.0.0.1:8000 token=127.0.0.1:8000"}, []string{"command connect 127.0.0.1:8000 token=127.0.0.1:8000"}},
		{"runserver in sh -c (item 4)", `    command: sh -c "python manage.py migrate && python manage.py runserver 127.0.0.1:8000"`,
			[]string{"command listen 127.0.0.1:8000 token=127.0.0.1:8000"}, nil},
		{"runserver list (item 4)", `    command: ["python", "manage.py", "runserver", "127.0.0.1:8000"]`,
			[]string{"command listen 127.0.0.1:8000 token=127.0.0.1:8000"}, nil},
		{"gunicorn -b (item 4)", `    command: gunicorn -b 127.0.0.1:8001 app:app`,
			[]string{"command listen 127.0.0.1:8001 token=127.0.0.1:8001"}, nil},
		{"OLLAMA_HOST (item 4)", `    environment:
      OLLAMA_HOST: 127.0.0.1:11434`,
			[]string{"environment.OLLAMA_HOST listen 127.0.0.1:11434 token=127.0.0.1:11434"}, nil},
		{"NEXT_PUBLIC_API_URL (item 8)", `    environment:
      NEXT_PUBLIC_API_URL: http://localhost:8080`,
			[]string{"environment.NEXT_PUBLIC_API_URL advertise localhost:8080 token=localhost:8080"}, nil},
		{"-ip advertised, -ip.bind binds (item 13)", `    command: weed master -ip=localhost:9333 -ip.bind=127.0.0.1:9334`,
			[]string{"command advertise localhost:9333 token=localhost:9333", "command listen 127.0.0.1:9334 token=127.0.0.1:9334"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := analyzeYAML(t, "services:\n  app:\n    image: example/app:1\n    network_mode: host\n"+tt.service+"\n")
			expectLines(t, "ref", refText(f.Services["app"].Refs), tt.refs, tt.noRefs)
		})
	}
}

// TestListenerFacts: the listeners (with their real binds) that issue 10
// items 4, 5, 7, 8 and 13 name.
func TestListenerFacts(t *testing.T) {
	tests := []struct {
		name    string
		service string
		want    []string // listeners that must be found
		not     []string // listeners that must not be found
	}{
		{"postgres -c (item 5)", `    image: postgres:16
    command: postgres -c listen_addresses=localhost -c port=5433`,
			[]string{"tcp/5433@localhost loopback bind=localhost"}, []string{"tcp/5432@ unknown"}},
		{"streamlit (item 5)", `    image: example/app:1
    command: streamlit run app.py --server.address 127.0.0.1 --server.port 8501`,
			[]string{"tcp/8501@127.0.0.1 loopback bind=127.0.0.1"}, nil},
		{"gunicorn -b (item 4)", `    image: example/app:1
    command: gunicorn -b 127.0.0.1:8001 app:app`,
			[]string{"tcp/8001@127.0.0.1 loopback bind=127.0.0.1"}, nil},
		{"gunicorn --bind 0:5000", `    image: example/app:1
    command: gunicorn --bind 0:5000 manage:app`,
			[]string{"tcp/5000@0 all-interfaces bind=0"}, nil},
		{"chown is not an address", `    image: example/app:1
    command: sh -c "chown 0:1000 /data && exec app"`,
			nil, []string{"tcp/1000@0 all-interfaces bind=0", "tcp/1000@ unknown"}},
		{"runserver (item 4)", `    image: example/app:1
    command: python manage.py runserver 127.0.0.1:8000`,
			[]string{"tcp/8000@127.0.0.1 loopback bind=127.0.0.1"}, nil},
		{"OLLAMA_HOST (item 4)", `    image: ollama/ollama
    environment:
      OLLAMA_HOST: 127.0.0.1:11434`,
			[]string{"tcp/11434@127.0.0.1 loopback bind=127.0.0.1"}, nil},
		{"OLLAMA_HOST without port", `    image: ollama/ollama
    environment:
      - OLLAMA_HOST=0.0.0.0`,
			[]string{"tcp/11434@0.0.0.0 all-interfaces bind=0.0.0.0"}, nil},
		{"hostname bind (item 7)", `    image: apache/iotdb:1.3.0-datanode
    environment:
      - dn_rpc_address=iotdb-1
      - dn_rpc_port=6667`,
			[]string{"tcp/6667@iotdb-1 host-name bind=iotdb-1"}, []string{"tcp/6667@ unknown"}},
		{"LISTEN scheme list (item 12)", `    image: example/app:1
    environment:
      - LISTEN=tcp:19000,tcp:127.0.0.1:19001`,
			[]string{"tcp/19001@127.0.0.1 loopback bind=127.0.0.1", "tcp/19000@ unknown"}, []string{"tcp/127@ unknown"}},
		{"NEXT_PUBLIC is not a listener (item 8)", `    image: example/web:1
    environment:
      NEXT_PUBLIC_API_URL: http://localhost:8080`,
			nil, []string{"tcp/8080@ unknown"}},
		{"advertised listener still says its port", `    image: example/broker:1
    environment:
      KAFKA_ADVERTISED_LISTENERS: PLAINTEXT://localhost:9092`,
			[]string{"tcp/9092@ unknown"}, nil},
		{"-ip is advertised (item 13)", `    image: chrislusf/seaweedfs
    command: master -ip=127.0.0.1 -ip.bind=0.0.0.0 -port=9333`,
			[]string{"tcp/9333@0.0.0.0 all-interfaces bind=0.0.0.0"}, []string{"tcp/9333@127.0.0.1 loopback bind=127.0.0.1"}},
		{"generic -x next to -x.bind (item 13)", `    image: example/app:1
    command: server -ip 127.0.0.1 -ip.bind 0.0.0.0 -port 9000`,
			[]string{"tcp/9000@0.0.0.0 all-interfaces bind=0.0.0.0"}, []string{"tcp/9000@127.0.0.1 loopback bind=127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := analyzeYAML(t, "services:\n  app:\n    network_mode: host\n"+tt.service+"\n")
			expectLines(t, "listener", listenerText(f.Services["app"].Listeners), tt.want, tt.not)
		})
	}
}

// TestPortBelongsToItsBinder: a URL in web naming api's port is never a
// listener of web (issue 10 item 8).
func TestPortBelongsToItsBinder(t *testing.T) {
	_, f := analyzeYAML(t, `services:
  web:
    image: example/web:1
    network_mode: host
    environment:
      NEXT_PUBLIC_API_URL: http://localhost:8080
      OTBR_WEB_URL: http://localhost:8081
  api:
    image: example/api:1
    network_mode: host
    command: api --listen :8080
`)
	for _, l := range f.Services["web"].Listeners {
		t.Errorf("web has listener %d (%s)", l.Port, l.Evidence.Detail)
	}
	if got := listenerText(f.Services["api"].Listeners); !contains(got, "tcp/8080@ unknown") {
		t.Errorf("api listeners: %v", got)
	}
}

// TestExternalExcludesServices: a scheme:NAME:PORT reference to a service
// of the project is not a host outside the stack.
func TestExternalExcludesServices(t *testing.T) {
	_, f := analyzeYAML(t, `services:
  app:
    image: example/app:1
    network_mode: host
    environment:
      UPSTREAMS: tcp:cache:16379,tcp:db.example.org:5432
  cache:
    image: redis:7
`)
	if got := f.Services["app"].External; len(got) != 1 || got[0] != "db.example.org" {
		t.Errorf("External = %v", got)
	}
}

// fakeImages answers ExposedPorts from a map, as the engine would.
type fakeImages map[string][]string

func (f fakeImages) ExposedPorts(image string) ([]string, bool, error) {
	p, ok := f[image]
	return p, ok, nil
}

// TestConfiguredPortReplacesImagePort: postgres -c port=5433 listens on
// 5433, not on the 5432 the image exposes (issue 10 item 5).
func TestConfiguredPortReplacesImagePort(t *testing.T) {
	c, _ := analyzeYAML(t, "services:\n  db:\n    image: postgres:16\n    network_mode: host\n    command: postgres -c listen_addresses=localhost -c port=5433\n")
	f := Analyze(c, fakeImages{"postgres:16": {"5432/tcp"}})
	got := listenerText(f.Services["db"].Listeners)
	if !contains(got, "tcp/5433@localhost loopback bind=localhost") || contains(got, "tcp/5432@ unknown") {
		t.Errorf("listeners = %v", got)
	}
	// PGPORT moves it too (the server reads it as its default port)
	c, _ = analyzeYAML(t, "services:\n  db:\n    image: postgres:16\n    network_mode: host\n    environment:\n      PGPORT: \"5433\"\n")
	f = Analyze(c, fakeImages{"postgres:16": {"5432/tcp"}})
	if got := listenerText(f.Services["db"].Listeners); !contains(got, "tcp/5433@ unknown") || contains(got, "tcp/5432@ unknown") {
		t.Errorf("listeners = %v", got)
	}
	// without the port setting, the image's port stays
	c, _ = analyzeYAML(t, "services:\n  db:\n    image: postgres:16\n    network_mode: host\n    command: postgres -c listen_addresses=localhost\n")
	f = Analyze(c, fakeImages{"postgres:16": {"5432/tcp"}})
	if got := listenerText(f.Services["db"].Listeners); !contains(got, "tcp/5432@ unknown") {
		t.Errorf("listeners = %v", got)
	}
}

// TestOtherServicesPortVariable: OTBR_WEB_PORT in a setup helper is the
// port of service otbr, not the helper's (issue 10 item 8).
func TestOtherServicesPortVariable(t *testing.T) {
	_, f := analyzeYAML(t, `services:
  otbr:
    image: openthread/otbr
    network_mode: host
    environment:
      OTBR_WEB_PORT: "8080"
  setup:
    image: example/setup:1
    network_mode: host
    environment:
      OTBR_WEB_PORT: "8080"
      SETUP_PORT: "9000"
`)
	if got := listenerText(f.Services["setup"].Listeners); contains(got, "tcp/8080@ unknown") || !contains(got, "tcp/9000@ unknown") {
		t.Errorf("setup listeners = %v", got)
	}
	if got := listenerText(f.Services["otbr"].Listeners); !contains(got, "tcp/8080@ unknown") {
		t.Errorf("otbr listeners = %v", got)
	}
}

// TestAnalyzeProjectAgrees: the facts read from the loaded model alone
// (what verify has) find the same references and listeners as those read
// from the files, without positions.
func TestAnalyzeProjectAgrees(t *testing.T) {
	c, fromFiles := analyzeYAML(t, `services:
  api:
    image: example/api:1
    network_mode: host
    environment:
      UPSTREAMS: tcp:localhost:15432,tcp:cache:16379,tcp:telemetry:18125
    command: gunicorn -b 127.0.0.1:8001 app:app
  web:
    image: example/web:1
    environment:
      - API=http://api:8001/v1
      - LISTEN=tcp:127.0.0.1:19001
    command: ["python", "manage.py", "runserver", "127.0.0.1:8000"]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8000/health"]
  cache:
    image: redis:7
`)
	fromModel := AnalyzeProject(c.Project, nil)
	for _, name := range fromFiles.Names() {
		a := refText(fromFiles.Services[name].Refs)
		b := refText(fromModel.Services[name].Refs)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s refs differ:\nfiles:\n  %s\nmodel:\n  %s", name, strings.Join(a, "\n  "), strings.Join(b, "\n  "))
		}
		a, b = listenerText(fromFiles.Services[name].Listeners), listenerText(fromModel.Services[name].Listeners)
		for i := range a {
			a[i], _, _ = strings.Cut(a[i], " bind=")
		}
		for i := range b {
			b[i], _, _ = strings.Cut(b[i], " bind=")
		}
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s listeners differ:\nfiles:\n  %s\nmodel:\n  %s", name, strings.Join(a, "\n  "), strings.Join(b, "\n  "))
		}
		for _, r := range fromModel.Services[name].Refs {
			if r.Pos.Line != 0 || r.Node != nil {
				t.Errorf("%s: model ref with a position: %+v", name, r)
			}
		}
	}
	if len(fromModel.Services["api"].Refs) < 3 {
		t.Errorf("api refs from the model: %v", refText(fromModel.Services["api"].Refs))
	}
}

func TestLiteralBind(t *testing.T) {
	_, f := analyzeYAML(t, `services:
  app:
    image: example/app:1
    network_mode: host
    environment:
      - LISTEN=tcp:19000,tcp:127.0.0.1:19001
      - CACHE=localhost:6379
      - V6=[::1]:8080
`)
	sf := f.Services["app"]
	tests := []struct {
		addr  string
		port  int
		token string
		ok    bool
	}{
		{"127.0.0.1", 19001, "127.0.0.1:19001", true},
		{"::ffff:127.0.0.1", 19001, "127.0.0.1:19001", true},
		{"::1", 8080, "[::1]:8080", true},
		{"127.0.0.1", 6379, "", false}, // written as localhost, not literally
		{"127.0.0.1", 19000, "", false},
	}
	for _, tt := range tests {
		r, ok := sf.LiteralBind(tt.addr, tt.port)
		if ok != tt.ok || r.Token != tt.token {
			t.Errorf("LiteralBind(%s, %d) = %q, %v; want %q, %v", tt.addr, tt.port, r.Token, ok, tt.token, tt.ok)
		}
		if ok && r.Pos.Line != 6 && r.Pos.Line != 8 {
			t.Errorf("LiteralBind(%s, %d) at %v", tt.addr, tt.port, r.Pos)
		}
	}
}
