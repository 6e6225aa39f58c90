package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	yaml "go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/plan"
)

// writeFile writes text to dir/name for a test and returns the path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadStackYAML(t *testing.T, compose string, profiles ...string) *stack {
	t.Helper()
	file := writeFile(t, t.TempDir(), "compose.yaml", compose)
	st, err := loadStack(context.Background(), loadOptions{Files: []string{file}, Profiles: profiles})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func loadYAML(t *testing.T, compose string) *types.Project {
	t.Helper()
	return loadStackYAML(t, compose).Project
}

// The references verify checks are those of the shared finder (the one
// migrate and scan use), in every form it reads, plus the plan's.
func TestCollectRefs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFile(t, dir, "api.env", "SEARCH_URL=http://localhost:16000/q\nOTHER=db:5432\n")
	st, err := loadStack(context.Background(), loadOptions{Files: []string{writeFile(t, dir, "compose.yaml", `services:
  api:
    image: x
    command: ["serve", "--listen", "0.0.0.0:8080", "--cache", "redis://cache"]
    environment:
      DB: postgres://u:p@db:5432/app
      LOCAL: localhost:9000
      HOSTSVC: http://host.docker.internal:3000/x
      OUTSIDE: https://example.com:443/
      ALIAS: search-alias:9200
      UPSTREAMS: tcp:localhost:15432,tcp:cache:16379,tcp:telemetry:18125
    env_file: [api.env]
    healthcheck:
      test: ["CMD", "probe", "http://localhost:8080/health"]
  cache:
    image: x
  db:
    image: x
  es:
    image: x
    networks:
      default:
        aliases: [search-alias]
`)}})
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{
		Services:   []plan.ServicePlan{{Name: "cache", Listeners: []plan.ListenerPlan{{Protocol: "udp", Port: 5353}}}},
		References: []plan.Reference{{From: "api", To: "cache", Port: 5353, Kind: plan.RefService}, {From: "api", To: "db", Port: 5432, Kind: plan.RefService}, {From: "api", Kind: plan.RefUnresolved}},
	}
	var got []string
	for _, r := range collectRefs(st.Facts, st.Outside, st.Project.Services, p) {
		got = append(got, r.From+" "+r.target()+" "+r.Field)
	}
	want := []string{
		"api cache:5353/udp plan",
		"api cache:6379 command",
		"api cache:16379 environment.UPSTREAMS",
		"api db:5432 environment.DB",
		"api example.com:443 environment.OUTSIDE",
		"api host.docker.internal:3000 environment.HOSTSVC",
		"api localhost:8080 healthcheck.test",
		"api localhost:9000 environment.LOCAL",
		"api localhost:15432 environment.UPSTREAMS",
		"api localhost:16000 env_file api.env",
		"api search-alias:9200 environment.ALIAS",
		"api telemetry:18125 environment.UPSTREAMS",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("refs:\n got %q\nwant %q", got, want)
	}
	if ls := listenersOn(st.Facts, st.Project.Services, p, 5353, "udp"); !reflect.DeepEqual(ls, []string{"cache"}) {
		t.Errorf("listeners on 5353/udp = %v", ls)
	}
}

func TestInternalPortsFromPlan(t *testing.T) {
	st := loadStackYAML(t, `services:
  db:
    image: x
    expose: ["5432", "9187"]
    ports: ["9187:9187"]
  dns:
    image: x
`)
	p := &plan.Plan{Services: []plan.ServicePlan{
		{Name: "db", Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 5432, Decision: plan.DecisionInternal}, {Protocol: "tcp", Port: 9187, Decision: plan.DecisionPublish}}},
		{Name: "dns", Listeners: []plan.ListenerPlan{{Protocol: "udp", Port: 53, PortEnd: 54, Decision: plan.DecisionInternal}}},
		{Name: "gone", Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 1, Decision: plan.DecisionInternal}}},
	}}
	r := &runner{plan: p, prep: &prepared{Project: st.Project}}
	want := []internalPort{{"db", 5432, "tcp"}, {"dns", 53, "udp"}, {"dns", 54, "udp"}}
	if got := r.internalPorts(); !reflect.DeepEqual(got, want) {
		t.Errorf("internal ports = %+v, want %+v", got, want)
	}
}

func TestDefaultProfilesOnly(t *testing.T) {
	compose := `services:
  web:
    image: x
  backup:
    image: x
    profiles: [ops]
`
	st := loadStackYAML(t, compose)
	if _, ok := st.Project.Services["backup"]; ok || !reflect.DeepEqual(st.NotSelected, []string{"backup"}) {
		t.Errorf("default profiles: services %v, not selected %v", sortedKeys(st.Project.Services), st.NotSelected)
	}
	st = loadStackYAML(t, compose, "ops")
	if _, ok := st.Project.Services["backup"]; !ok || len(st.NotSelected) != 0 {
		t.Errorf("--profile ops: services %v", sortedKeys(st.Project.Services))
	}
}

func TestUnmigrated(t *testing.T) {
	p := loadYAML(t, "services:\n  a:\n    image: x\n    network_mode: host\n")
	if err := unmigrated(p, false); err == nil || !strings.Contains(err.Error(), "every service is on the host network; run unhost migrate first") {
		t.Errorf("err = %v", err)
	}
	if err := unmigrated(p, true); err != nil {
		t.Errorf("--in-place: %v", err)
	}
	if err := unmigrated(loadYAML(t, "services:\n  a:\n    image: x\n"), false); err != nil {
		t.Errorf("bridge: %v", err)
	}
}

func TestPrepare(t *testing.T) {
	p := loadYAML(t, `services:
  web:
    image: x
    container_name: prod-web
    ports: ["8080:80", "127.0.0.1:5353:53/udp", "9000"]
    volumes: ["data:/data", "./conf:/conf"]
    environment:
      PRICE: "$$5"
  sniffer:
    image: x
    network_mode: host
  sidecar:
    image: x
    depends_on: [sniffer]
volumes:
  data:
    name: prod-data
    driver_opts: {type: none, o: bind, device: /srv/data}
networks:
  default:
    name: prod-net
`)
	prep, err := prepare(p, transformOptions{Name: "unhost-verify-t", RunID: "t", PID: 42})
	if err != nil {
		t.Fatal(err)
	}
	web := prep.Project.Services["web"]
	if web.ContainerName != "" {
		t.Errorf("container_name kept: %q", web.ContainerName)
	}
	if web.Labels[LabelRun] != "t" || web.Labels[LabelPID] != "42" {
		t.Errorf("labels: %v", web.Labels)
	}
	for _, v := range web.Volumes {
		if v.Type == types.VolumeTypeBind && !v.ReadOnly {
			t.Errorf("bind %s is writable", v.Source)
		}
	}
	if v := prep.Project.Volumes["data"]; v.Name != "unhost-verify-t_data" || v.DriverOpts != nil {
		t.Errorf("volume data = %+v, want a throwaway", v)
	}
	if n := prep.Project.Networks["default"]; n.Name != "unhost-verify-t_default" {
		t.Errorf("network default name = %q", n.Name)
	}
	if len(prep.Ports) != 3 {
		t.Fatalf("ports = %+v", prep.Ports)
	}
	for _, m := range prep.Ports {
		switch m.Target {
		case 80, 53:
			if m.Test == "" || m.Test == m.Real {
				t.Errorf("port %d not remapped: %+v", m.Target, m)
			}
		case 9000:
			if m.Real != "" || m.Test != "" {
				t.Errorf("ephemeral port changed: %+v", m)
			}
		}
	}
	var skipped []string
	for _, s := range prep.Skipped {
		skipped = append(skipped, s.Service)
	}
	if !reflect.DeepEqual(skipped, []string{"sidecar", "sniffer"}) {
		t.Errorf("skipped = %v", skipped)
	}
	if _, ok := prep.Project.Services["sniffer"]; ok {
		t.Error("host-network service left in the test stack")
	}

	// The written file must keep $ literal for compose's second interpolation.
	path, err := writeProject(prep.Project, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	env := doc["services"].(map[string]any)["web"].(map[string]any)["environment"].(map[string]any)
	if env["PRICE"] != "$$5" {
		t.Errorf("PRICE written as %q, want $$5", env["PRICE"])
	}
	re, err := loadStack(context.Background(), loadOptions{Files: []string{path}})
	if err != nil {
		t.Fatalf("written project does not load: %v", err)
	}
	if v := re.Project.Services["web"].Environment["PRICE"]; v == nil || *v != "$5" {
		t.Errorf("PRICE after reload = %v, want $5", v)
	}
}

func TestPrepareRefusesExternal(t *testing.T) {
	compose := `services:
  web:
    image: x
    volumes: ["shared:/s"]
volumes:
  shared:
    external: true
`
	_, err := prepare(loadYAML(t, compose), transformOptions{Name: "n", RunID: "r"})
	if err == nil || !strings.Contains(err.Error(), `volume "shared"`) || !strings.Contains(err.Error(), "--allow-external") {
		t.Errorf("err = %v", err)
	}
	if _, err := prepare(loadYAML(t, compose), transformOptions{Name: "n", RunID: "r", AllowExternal: true}); err != nil {
		t.Errorf("--allow-external: %v", err)
	}
}

func TestReadSockets(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`
	for name, text := range map[string]string{"tcp": tcp, "tcp6": tcp6} {
		if err := os.WriteFile(filepath.Join(root, "net", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadSockets(root, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("sockets = %+v", got)
	}
	if got[0].IP.String() != "127.0.0.1" || got[0].Port != 8080 || !got[0].bound() {
		t.Errorf("first = %+v", got[0])
	}
	if got[1].IP.String() != "0.0.0.0" || got[1].Port != 80 {
		t.Errorf("second = %+v", got[1])
	}
	if got[2].bound() {
		t.Errorf("an established socket counts as listening")
	}
	if got[3].IP.String() != "127.0.0.1" || got[3].Port != 8081 {
		t.Errorf("v4-mapped = %+v", got[3])
	}
	// No IPv6 table: fine. No table at all: an error.
	if err := os.Remove(filepath.Join(root, "net", "tcp6")); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSockets(root, "tcp"); err != nil || len(got) != 3 {
		t.Errorf("without tcp6: %d sockets, %v", len(got), err)
	}
	if _, err := ReadSockets(root, "udp"); err == nil {
		t.Error("no udp table, no error")
	}
}

func TestParseHTTPSpecs(t *testing.T) {
	got, err := parseHTTPSpecs([]string{"web:8080/healthz=204", "api:80"})
	if err != nil {
		t.Fatal(err)
	}
	want := []httpSpec{{"web", 8080, "/healthz", 204, "web:8080/healthz=204"}, {"api", 80, "/", 200, "api:80"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{"web", "web:x/", "web:80/=abc", ":80", "web:70000"} {
		if _, err := parseHTTPSpecs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReportFormats(t *testing.T) {
	r := &Report{Project: "p", Compose: "docker compose 2.40.3", Checks: []Check{
		{Name: CheckRef, Service: "api", Target: "localhost:5432", Status: Fail, Reason: "api -> localhost:5432: connection refused <inside>"},
		{Name: CheckHealth, Service: "api", Status: Pass, Reason: "running"},
		{Name: CheckStack, Service: "sniffer", Status: Skip, Reason: "host network"},
	}}
	r.finish(time.Now())
	if r.Status != Fail || r.Checks[0].Name != CheckHealth {
		t.Fatalf("finish: %s %+v", r.Status, r.Checks)
	}
	var buf bytes.Buffer
	if err := r.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &suites); err != nil {
		t.Fatalf("junit does not parse: %v\n%s", err, buf.String())
	}
	s := suites.Suites[0]
	if s.Tests != 3 || s.Failures != 1 || s.Skipped != 1 || s.Cases[1].Failure == nil || !strings.Contains(s.Cases[1].Failure.Message, "<inside>") {
		t.Errorf("junit = %+v", suites)
	}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Status != Fail || len(back.Checks) != 3 {
		t.Errorf("json round trip: %v %+v", err, back)
	}
	buf.Reset()
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "fail    reference  api      localhost:5432") {
		t.Errorf("text:\n%s", buf.String())
	}
}

// A run with skipped checks is INCOMPLETE, not a pass: exit 4 unless
// --allow-skip; the text report lists what was skipped and shows the
// exposure table.
func TestReportIncomplete(t *testing.T) {
	r := &Report{Project: "p", Compose: "docker compose 2.40.3", Checks: []Check{
		{Name: CheckHealth, Service: "api", Status: Pass, Reason: "running"},
		{Name: CheckRef, Service: "api", Target: "example.com:443", Status: Note, Reason: "a host outside the stack"},
		{Name: CheckInternal, Service: "db", Target: "5432/tcp", Status: Skip, Reason: "held before"},
	}, Exposure: []ExposureRow{{Service: "db", Protocol: "tcp", Port: 5432, Before: "loopback:5432", Plan: "stack-internal", Now: "stack-internal", Status: Pass}}}
	r.finish(time.Now())
	if r.Status != Incomplete || !r.Failed() || !reflect.DeepEqual(r.Skipped, []string{"internal-port db 5432/tcp"}) {
		t.Fatalf("status %s, failed %v, skipped %v", r.Status, r.Failed(), r.Skipped)
	}
	r.AllowSkip = true
	if r.Failed() {
		t.Error("--allow-skip: still failed")
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INCOMPLETE in", "INCOMPLETE (--allow-skip): 1 skipped:\n  internal-port db 5432/tcp", "BEFORE", "loopback:5432", "note    reference"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
	// An exposure failure fails the run.
	r.Exposure[0].Status = Fail
	r.finish(time.Now())
	if r.Status != Fail {
		t.Errorf("exposure failure: status %s", r.Status)
	}
}
