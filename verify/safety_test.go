package verify

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/client"

	"github.com/unhost/unhost/plan"
)

func TestIsEngineSocketBind(t *testing.T) {
	for src, want := range map[string]bool{
		"/var/run/docker.sock":                true,
		"/run/docker.sock":                    true,
		"/var/run":                            true,
		"/run":                                true,
		"/run/":                               true,
		"/":                                   true,
		"/run/containerd/containerd.sock":     true,
		"/run/containerd":                     true,
		"/run/podman/podman.sock":             true,
		"/run/user/1000":                      true,
		"/run/user/1000/podman/podman.sock":   true,
		"/home/ci/.docker/run/docker.sock":    true,
		"/srv/data":                           false,
		"/run/secrets":                        false,
		"/var/run/postgresql":                 false,
		"/etc/localtime":                      false,
		"":                                    false,
		"/var/lib/docker/volumes/x/_data":     false,
		"/run/user/1000/app/cache/state.json": false,
	} {
		if got := isEngineSocketBind(src); got != want {
			t.Errorf("isEngineSocketBind(%q) = %v, want %v", src, got, want)
		}
	}
}

func TestPrepareRefusesWhatReachesProduction(t *testing.T) {
	compose := `services:
  watchtower:
    image: x
    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]
  agent:
    image: x
    volumes: [{type: bind, source: /run, target: /host-run}]
  root:
    image: x
    privileged: true
  top:
    image: x
    pid: host
  gpu:
    image: x
    devices: ["/dev/dri:/dev/dri"]
`
	_, err := prepare(loadYAML(t, compose), transformOptions{Name: "n", RunID: "r"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"service watchtower binds /var/run/docker.sock", "service agent binds /run", "--allow-engine-socket",
		"service root is privileged", "--allow-privileged", "service top uses pid: host", "--allow-host-pid", "service gpu maps devices /dev/dri", "--allow-devices"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := prepare(loadYAML(t, compose), transformOptions{Name: "n", RunID: "r",
		AllowEngineSocket: true, AllowPrivileged: true, AllowHostPID: true, AllowDevices: true}); err != nil {
		t.Errorf("with every flag: %v", err)
	}
}

func TestPrepareStripsLabelsRelabelsAndBuilds(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := loadStackYAML(t, `services:
  web:
    image: registry.example/prod/web:1.2
    build: `+dir+`
    container_name: web-prod
    labels:
      traefik.enable: "true"
      traefik.http.routers.web.rule: Host(`+"`shop.example`"+`)
      com.centurylinklabs.watchtower.enable: "true"
      autoheal: "true"
      ofelia.job-exec.backup.schedule: "@daily"
      diun.enable: "true"
      com.example.team: shop
    volumes: ["/srv/shop:/data:Z", "/srv/conf:/conf:z,ro"]
`).Project
	prep, err := prepare(p, transformOptions{Name: "unhost-verify-r", RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	web := prep.Project.Services["web"]
	var keys []string
	for k := range web.Labels {
		keys = append(keys, k)
	}
	if want := []string{"com.example.team", LabelRun, LabelPID}; !reflect.DeepEqual(slices.Sorted(slices.Values(keys)), want) {
		t.Errorf("labels = %v, want %v", slices.Sorted(slices.Values(keys)), want)
	}
	for _, v := range web.Volumes {
		if v.Bind != nil && v.Bind.SELinux != "" {
			t.Errorf("%s keeps :%s", v.Source, v.Bind.SELinux)
		}
		if !v.ReadOnly {
			t.Errorf("%s writable", v.Source)
		}
	}
	if web.Image != "unhost-verify-r-web" || web.Build.Labels[LabelRun] != "r" || web.PullPolicy != types.PullPolicyBuild {
		t.Errorf("build: image %q, labels %v, pull %q", web.Image, web.Build.Labels, web.PullPolicy)
	}
	if n := web.Networks["default"]; n == nil || !reflect.DeepEqual(n.Aliases, []string{"web-prod"}) {
		t.Errorf("container_name is no alias: %+v", n)
	}
	note := prep.Notes["web"]
	for _, want := range []string{"traefik.enable", "com.centurylinklabs.watchtower.enable", "autoheal", "SELinux relabel :Z dropped on /srv/shop"} {
		if !strings.Contains(note, want) {
			t.Errorf("note lacks %q: %s", want, note)
		}
	}
}

// The engine comes from the docker CLI's context store when DOCKER_HOST is
// unset, so that the CLI and the API client use the same one.
func TestResolveEngine(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "")
	ctx := context.Background()
	if e, err := ResolveEngine(ctx); err != nil || e.Host != client.DefaultDockerHost {
		t.Errorf("no configuration: %+v %v", e, err)
	}
	writeFile(t, dir, "config.json", `{"currentContext": "staging"}`)
	id := fmt.Sprintf("%x", sha256.Sum256([]byte("staging")))
	meta := filepath.Join(dir, "contexts", "meta", id)
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, meta, "meta.json", `{"Name":"staging","Metadata":{},"Endpoints":{"docker":{"Host":"ssh://ci@staging","SkipTLSVerify":false}}}`)
	if e, err := ResolveEngine(ctx); err != nil || e.Host != "ssh://ci@staging" || e.Context != "staging" {
		t.Errorf("current context: %+v %v", e, err)
	}
	if !slices.Contains(resolved(t).env(), "DOCKER_HOST=ssh://ci@staging") {
		t.Error("the CLI's environment does not name the engine")
	}
	t.Setenv("DOCKER_CONTEXT", "default")
	if e, err := ResolveEngine(ctx); err != nil || e.Host != client.DefaultDockerHost {
		t.Errorf("DOCKER_CONTEXT=default: %+v %v", e, err)
	}
	t.Setenv("DOCKER_CONTEXT", "")
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	if e, err := ResolveEngine(ctx); err != nil || e.Host != "tcp://127.0.0.1:1" {
		t.Errorf("DOCKER_HOST: %+v %v", e, err)
	}
	t.Setenv("DOCKER_HOST", "")
	if err := os.MkdirAll(filepath.Join(dir, "contexts", "tls", id, "docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveEngine(ctx); err == nil || !strings.Contains(err.Error(), "DOCKER_CERT_PATH") {
		t.Errorf("TLS context: %v", err)
	}
	t.Setenv("DOCKER_CONTEXT", "missing")
	if _, err := ResolveEngine(ctx); err == nil {
		t.Error("a missing context was accepted")
	}
}

func resolved(t *testing.T) Engine {
	t.Helper()
	e, err := ResolveEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCompareExposure(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string { return writeFile(t, dir, name, text) }
	orig := write("orig.yaml", `services:
  db:
    image: x
    network_mode: host
    command: ["-tcp", "127.0.0.1:15432"]
  api:
    image: x
    network_mode: host
    command: ["-tcp", "0.0.0.0:18080"]
  admin:
    image: x
    network_mode: host
    command: ["-tcp", "0.0.0.0:19090"]
`)
	migrated := write("new.yaml", `services:
  db:
    image: x
    expose: ["15432"]
  api:
    image: x
    ports: ["127.0.0.1:18080:18080"]
  admin:
    image: x
    ports: ["19090:19090", "0.0.0.0:9100:9100"]
`)
	st, err := loadStack(context.Background(), loadOptions{Files: []string{migrated}})
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Services: []plan.ServicePlan{
		{Name: "db", Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 15432, Decision: plan.DecisionInternal, Reason: "only the stack uses it"}}},
		{Name: "api", Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 18080, Decision: plan.DecisionPublish, Publish: "127.0.0.1:18080:18080", Reason: "--publish-address"}}},
	}}
	rows, note, err := compareExposure(context.Background(), Options{Originals: []string{orig}}, st, p)
	if err != nil || note != "" {
		t.Fatal(err, note)
	}
	var got []string
	for _, r := range rows {
		got = append(got, strings.Join([]string{r.Service, r.Before, r.Plan, r.Now, string(r.Status)}, " | "))
	}
	want := []string{
		"admin | stack-internal | - | all interfaces:9100 | fail",
		"admin | all interfaces:19090 | - | all interfaces:19090 | pass",
		"api | all interfaces:18080 | loopback:18080 | loopback:18080 | pass",
		"db | loopback:15432 | stack-internal | stack-internal | pass",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %q\nwant %q", got, want)
	}
	// Without the plan, the narrower api port and the db port are not
	// decisions anyone recorded.
	rows, _, err = compareExposure(context.Background(), Options{Originals: []string{orig}}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	fails := 0
	for _, r := range rows {
		if r.Status == Fail {
			fails++
			if !strings.Contains(r.Reason, r.Service) {
				t.Errorf("reason does not name the service: %s", r.Reason)
			}
		}
	}
	if fails != 3 {
		t.Errorf("without a plan: %d failures, want 3: %+v", fails, rows)
	}
	_, note, _ = compareExposure(context.Background(), Options{}, st, nil)
	if !strings.Contains(note, "exposure was not checked") {
		t.Errorf("note = %q", note)
	}
	// A plan whose files are the verified files (migrate --write): no
	// comparison of the migrated files with themselves.
	_, note, _ = compareExposure(context.Background(), Options{}, st, &plan.Plan{Files: []string{migrated}})
	if !strings.Contains(note, "rewritten in place") {
		t.Errorf("note = %q", note)
	}
	rows, note, err = compareExposure(context.Background(), Options{}, st, &plan.Plan{Files: []string{orig}})
	if err != nil || note != "" || len(rows) != 4 {
		t.Errorf("originals from the plan: %d rows, %q, %v", len(rows), note, err)
	}
}
