package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/internal/dockertest"
)

// runDetectCLI runs the unhost CLI in-process and returns its exit code,
// stdout and stderr.
func runDetectCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWith(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDetectUsage(t *testing.T) {
	for _, args := range [][]string{
		{"detect"},
		{"detect", "-p", "a", "--all"},
		{"detect", "-p", "a", "--samples", "0"},
		{"detect", "-p", "a", "--interval", "-1s"},
		{"detect", "-p", "a", "--format", "yaml"},
		{"detect", "-p", ""},
		{"detect", "--bogus"},
		{"detect", "-p", "a", "extra-arg"},
		{"detect", "-p", "a", "--duration", "15s", "--samples", "3"},
		{"detect", "-p", "a", "--duration", "15s", "--interval", "1s"},
		{"detect", "-p", "a", "--duration", "-1s"},
		{"detect", "-p", "a", "--method", "ebpf"},
		{"detect", "-p", "a", "--duration", "1s", "--method", "kprobe"},
	} {
		code, out, errs := runDetectCLI(t, args...)
		if code != ExitUsage || out != "" || !strings.HasPrefix(errs, "unhost: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and a message", args, code, out, errs, ExitUsage)
		}
	}
}

func TestDetectNoDaemon(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	code, out, errs := runDetectCLI(t, "detect", "-p", "x")
	if code != ExitError || out != "" || !strings.Contains(errs, "no docker engine answers") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestDetectNoContainers(t *testing.T) {
	dockertest.Client(t)
	code, out, errs := runDetectCLI(t, "detect", "-p", "unhost-no-such-project-"+dockertest.RunID())
	if code != ExitError || out != "" || !strings.Contains(errs, "no running containers") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestDetectEndToEnd runs `unhost detect -o FILE` on a one-service project
// and reads the file back the way migrate does.
func TestDetectEndToEnd(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.BuildImage(t, cli, "github.com/unhost/unhost/internal/testserver", nil)
	s := dockertest.NewScope(t, cli)
	project := "unhostcli-" + s.ID()
	port := dockertest.FreePorts(t, 1)[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	id := s.Run(t, project+"-web-1", &container.Config{Image: img, Cmd: []string{"-tcp", addr},
		Labels: map[string]string{detect.LabelComposeProject: project, detect.LabelComposeService: "web"}},
		&container.HostConfig{NetworkMode: "host"}, nil)
	dockertest.WaitLog(t, cli, id, 10*time.Second, "listening tcp "+addr)

	file := filepath.Join(t.TempDir(), "inv.json")
	code, out, errs := runDetectCLI(t, "detect", "-p", project, "--samples", "1", "-o", file)
	if code != ExitOK || out != "" || errs != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	inv, err := detect.ReadInventory(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Services) != 1 || inv.Services[0].Service != "web" || len(inv.Services[0].Listeners) != 1 ||
		inv.Services[0].Listeners[0].Address != "127.0.0.1" || inv.Services[0].Listeners[0].Port != port {
		t.Errorf("inventory services: %+v", inv.Services)
	}

	code, out, _ = runDetectCLI(t, "detect", "-p", project, "--samples", "1", "--format", "text")
	if code != ExitOK || !strings.Contains(out, "listen tcp "+addr) {
		t.Errorf("text format: exit %d, stdout %q", code, out)
	}
	if _, err := os.Stat(file); err != nil {
		t.Error(err)
	}
}
