package verify

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v4"
)

func TestHasIPVS(t *testing.T) {
	root := t.TempDir()
	if HasIPVS(root) {
		t.Error("HasIPVS on an empty proc root: true")
	}
	if err := os.MkdirAll(filepath.Join(root, "sys", "net", "ipv4", "vs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !HasIPVS(root) {
		t.Error("HasIPVS with sys/net/ipv4/vs: false")
	}
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "ip_vs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !HasIPVS(root) {
		t.Error("HasIPVS with net/ip_vs: false")
	}
}

const swarmStack = `version: "3.9"
services:
  db:
    image: postgres
    networks: [hostnet]
  api:
    image: api
    env_file: api.env
    depends_on: [cache]
    ports:
      - target: 8080
        published: 8080
        mode: host
      - "127.0.0.1:9090:9090"
    volumes: ["./conf:/conf", "data:/data"]
    networks:
      internal:
        aliases: [backend]
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
    healthcheck:
      test: ["CMD", "/api", "health"]
      interval: 5s
  cache:
    image: redis
    container_name: cache
    networks: [internal]
    secrets: [token]
networks:
  hostnet:
    external: true
    name: host
  internal:
    driver: overlay
    attachable: true
    name: shared-internal
volumes:
  data:
    name: prod-data
secrets:
  token:
    file: ./token
`

// A stack is prepared for docker stack deploy: services on the external
// host network are skipped, names and labels are the run's, published
// ports are free ones (host_ip dropped: swarm ignores it), replicas of a
// host-mode service are capped on one node, and the file is compose
// format 3 (integers for ports, a list for depends_on, no env_file, no
// top-level name).
func TestPrepareSwarmStack(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"api.env": "DB=db:5432\n", "token": "x\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "stack.yml")
	if err := os.WriteFile(file, []byte(swarmStack), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := loadStack(t.Context(), loadOptions{Files: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	prep, err := prepare(st.Project, transformOptions{Name: "unhost-verify-x", RunID: "x", PID: 7, Swarm: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(prep.Skipped) != 1 || prep.Skipped[0].Service != "db" || !strings.Contains(prep.Skipped[0].Reason, "external host network") {
		t.Errorf("skipped: %+v", prep.Skipped)
	}
	if len(prep.Ports) != 2 {
		t.Fatalf("ports: %+v", prep.Ports)
	}
	for _, m := range prep.Ports {
		want := map[uint32]string{8080: "host", 9090: "ingress"}[m.Target]
		if m.Mode != want || m.HostIP != "" || m.Test == "" || m.Test == m.Real {
			t.Errorf("port %+v: want mode %s, no host IP, a fresh test port", m, want)
		}
	}
	if !strings.Contains(prep.Notes["api"], "replicas 3 lowered to 1") {
		t.Errorf("notes: %v", prep.Notes)
	}
	b, err := stackYAML(prep.Project, stackVersion([]string{file}))
	if err != nil {
		t.Fatal(err)
	}
	// The docker CLI's own loader (docker stack config, Docker 25 and
	// later) must accept the file; it reads no engine.
	if exec.Command("docker", "stack", "config", "--help").Run() == nil {
		out := filepath.Join(dir, "out.yml")
		if err := os.WriteFile(out, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command("docker", "stack", "config", "-c", out).CombinedOutput(); err != nil {
			t.Errorf("docker stack config refuses the test stack: %v: %s\n%s", err, msg, b)
		}
	}
	var doc struct {
		Version  string         `yaml:"version"`
		Name     string         `yaml:"name"`
		Services map[string]any `yaml:"services"`
		Networks map[string]struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"networks"`
		Volumes map[string]struct {
			Name string `yaml:"name"`
		} `yaml:"volumes"`
		Secrets map[string]struct {
			Name string `yaml:"name"`
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	if doc.Version != "3.9" || doc.Name != "" {
		t.Errorf("version %q name %q", doc.Version, doc.Name)
	}
	if _, ok := doc.Services["db"]; ok || len(doc.Services) != 2 {
		t.Errorf("services: %v", doc.Services)
	}
	if n := doc.Networks["internal"]; n.Name != "unhost-verify-x_internal" || n.Labels[LabelRun] != "x" {
		t.Errorf("network internal: %+v", n)
	}
	if v := doc.Volumes["data"]; v.Name != "unhost-verify-x_data" {
		t.Errorf("volume data: %+v", v)
	}
	if s := doc.Secrets["token"]; s.Name != "unhost-verify-x_token" || !strings.HasSuffix(s.File, "/token") {
		t.Errorf("secret token: %+v", s)
	}
	api, _ := doc.Services["api"].(map[string]any)
	if cache, _ := doc.Services["cache"].(map[string]any); cache["container_name"] != nil {
		t.Errorf("cache keeps container_name:\n%s", b)
	}
	for _, key := range []string{"env_file"} {
		if _, ok := api[key]; ok {
			t.Errorf("api keeps %s:\n%s", key, b)
		}
	}
	if env, _ := api["environment"].(map[string]any); env["DB"] != "db:5432" {
		t.Errorf("api environment %v: env_file not resolved", api["environment"])
	}
	if dep, ok := api["depends_on"].([]any); !ok || len(dep) != 1 || dep[0] != "cache" {
		t.Errorf("api depends_on %#v, want [cache]", api["depends_on"])
	}
	deploy, _ := api["deploy"].(map[string]any)
	if deploy["replicas"] != 1 || deploy["endpoint_mode"] != "dnsrr" {
		t.Errorf("api deploy: %v", deploy)
	}
	if labels, _ := deploy["labels"].(map[string]any); labels[LabelRun] != "x" || labels[LabelPID] != "7" {
		t.Errorf("api service labels: %v", deploy["labels"])
	}
	for _, port := range api["ports"].([]any) {
		pm := port.(map[string]any)
		if _, ok := pm["published"].(int); !ok || pm["host_ip"] != nil {
			t.Errorf("api port %v: want an integer published port and no host_ip", pm)
		}
	}
	for _, v := range api["volumes"].([]any) {
		vm := v.(map[string]any)
		if vm["type"] == "bind" && (vm["read_only"] != true || vm["bind"] != nil) {
			t.Errorf("api bind %v: want read_only and no bind options format 3 lacks", vm)
		}
	}
	nets, _ := api["networks"].(map[string]any)
	if n, _ := nets["internal"].(map[string]any); n == nil || len(n["aliases"].([]any)) != 1 {
		t.Errorf("api networks: %v", api["networks"])
	}
}

func TestStackVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string { return writeFile(t, dir, name, text) }
	a := write("a.yml", "version: '3.4'\nservices: {}\n")
	b := write("b.yml", "version: \"3.12\"\nservices: {}\n")
	c := write("c.yml", "services: {}\n")
	for _, tc := range []struct {
		files []string
		want  string
	}{{[]string{a}, "3.9"}, {[]string{a, b}, "3.12"}, {[]string{c}, "3.9"}, {[]string{filepath.Join(dir, "none")}, "3.9"}} {
		if got := stackVersion(tc.files); got != tc.want {
			t.Errorf("stackVersion(%v) = %s, want %s", tc.files, got, tc.want)
		}
	}
}
