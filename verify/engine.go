package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/docker/docker/client"
)

// Engine is the one Docker engine a run uses, for the API client and for
// every docker and docker compose command alike.
type Engine struct {
	Host    string // e.g. unix:///var/run/docker.sock, tcp://host:2376
	Context string // the docker context it came from, if any
}

// ResolveEngine decides the engine once, as the docker CLI would: DOCKER_HOST
// when set; else the docker context selected by DOCKER_CONTEXT or the CLI's
// configuration; else the default socket. The API client alone reads only
// DOCKER_HOST, so with a non-default context the stack (run by the CLI) and
// the probes (by the API) would land on different engines.
func ResolveEngine(ctx context.Context) (Engine, error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return Engine{Host: h}, nil
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return Engine{Host: client.DefaultDockerHost}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := []string{"context", "inspect"}
	if name := os.Getenv("DOCKER_CONTEXT"); name != "" {
		args = append(args, name)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(cctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return Engine{}, fmt.Errorf("docker context inspect: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return parseContext(out.Bytes())
}

// parseContext reads `docker context inspect` output.
func parseContext(b []byte) (Engine, error) {
	var list []struct {
		Name      string
		Endpoints map[string]struct {
			Host          string
			SkipTLSVerify bool
		}
		TLSMaterial map[string][]string
	}
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 {
		return Engine{}, fmt.Errorf("docker context inspect: unexpected output %.80q", b)
	}
	c := list[0]
	ep, ok := c.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return Engine{}, fmt.Errorf("docker context %s has no docker endpoint", c.Name)
	}
	if len(c.TLSMaterial["docker"]) > 0 {
		return Engine{}, fmt.Errorf("docker context %s uses TLS, which verify does not read from contexts: set DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH", c.Name)
	}
	return Engine{Host: ep.Host, Context: c.Name}, nil
}

// env is the environment for docker and docker compose commands: this
// engine, whatever context is selected.
func (e Engine) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_HOST=") || strings.HasPrefix(kv, "DOCKER_CONTEXT=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "DOCKER_HOST="+e.Host)
}

// Client connects to the engine, negotiating the API version (Engine
// 20.10 speaks 1.41), and checks that it answers.
func (e Engine) Client(ctx context.Context) (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Ping(pctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("docker engine %s does not answer: %w", e.Host, err)
	}
	return c, nil
}
