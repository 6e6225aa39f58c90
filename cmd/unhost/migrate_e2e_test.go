package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/internal/dockertest"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
)

// TestMigrateFromRunning runs a small host-network project on the real
// engine, then migrates its Compose file with --from-running: observed
// listeners, bind addresses and connections must drive the plan.
func TestMigrateFromRunning(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.BuildImage(t, cli, "github.com/unhost/unhost/internal/testserver", nil)
	s := dockertest.NewScope(t, cli)
	project := "unhoste2e-" + s.ID()
	p := dockertest.FreePorts(t, 3)
	db, api, admin := p[0], p[1], p[2]
	labels := func(svc string) map[string]string {
		return s.Labels(map[string]string{detect.LabelComposeProject: project, detect.LabelComposeService: svc})
	}
	hostNet := &container.HostConfig{NetworkMode: "host"}
	dbID := s.Run(t, project+"-db-1", &container.Config{Image: img, Labels: labels("db"),
		Cmd: []string{"-tcp", fmt.Sprintf("0.0.0.0:%d", db)}}, hostNet, nil)
	dockertest.WaitLog(t, cli, dbID, 10*time.Second, fmt.Sprintf("listening tcp 0.0.0.0:%d", db))
	apiID := s.Run(t, project+"-api-1", &container.Config{Image: img, Labels: labels("api"),
		Cmd: []string{"-tcp", fmt.Sprintf("0.0.0.0:%d", api), "-connect", fmt.Sprintf("127.0.0.1:%d", db)}}, hostNet, nil)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(dockertest.Logs(t, cli, apiID), fmt.Sprintf("connected 127.0.0.1:%d ", db)); {
		if time.Now().After(deadline) {
			t.Fatalf("api did not connect to db:\n%s", dockertest.Logs(t, cli, apiID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	adminID := s.Run(t, project+"-admin-1", &container.Config{Image: img, Labels: labels("admin"),
		Cmd: []string{"-tcp", fmt.Sprintf("127.0.0.1:%d", admin)}}, hostNet, nil)
	dockertest.WaitLog(t, cli, adminID, 10*time.Second, fmt.Sprintf("listening tcp 127.0.0.1:%d", admin))

	// The Compose file says less than the running stack: no ports at all,
	// and the api's database address only in an env file unhost cannot see.
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", []byte(fmt.Sprintf(`services:
  db:
    image: %[1]s
    network_mode: host
  api:
    image: %[1]s
    network_mode: host
    env_file: api.env
  admin:
    image: %[1]s
    network_mode: host
    command: ["-tcp", "127.0.0.1:%[2]d"]
`, img, admin)))
	out, errOut, code := runIn(t, dir, "migrate", "-p", project, "--from-running", project, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var pl plan.Plan
	if err := json.Unmarshal([]byte(out), &pl); err != nil {
		t.Fatal(err)
	}
	if pl.Evidence != plan.EvidenceRuntime {
		t.Fatalf("evidence %q, want runtime", pl.Evidence)
	}
	want := map[string]string{
		"db/" + strconv.Itoa(db):       plan.ReachInternal,
		"api/" + strconv.Itoa(api):     "all interfaces (published)",
		"admin/" + strconv.Itoa(admin): "loopback (published)",
	}
	got := map[string]string{}
	for _, e := range pl.Exposure {
		got[e.Service+"/"+e.Port] = e.After
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("exposure %s after = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("exposure rows %v, want exactly %v", got, want)
	}
	// the api's connection to db is observed but not written in the file
	found := false
	for _, st := range pl.ManualSteps {
		if st.Service == "api" {
			found = true
		}
	}
	if !found {
		t.Errorf("no manual step for api's unseen database address: %+v", pl.ManualSteps)
	}
	// the diff rewrites admin's literal loopback bind
	diff, errOut, code := runIn(t, dir, "migrate", "-p", project, "--from-running", project)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, line := range []string{
		fmt.Sprintf(`+      - "127.0.0.1:%d:%d"`, admin, admin),
		fmt.Sprintf(`+    command: ["-tcp", "0.0.0.0:%d"]`, admin),
		// all interfaces, as before: marked for scan
		fmt.Sprintf(`+      - "%d:%d" %s`, api, api, migrate.SameReachMarker),
	} {
		if !containsLine(diff, line) {
			t.Errorf("diff lacks %q:\n%s", line, diff)
		}
	}
}

func containsLine(text, line string) bool {
	for _, l := range splitLines(text) {
		if l == line {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
