package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// when set; else the docker context named by DOCKER_CONTEXT or selected in
// the CLI's configuration (currentContext in $DOCKER_CONFIG/config.json),
// read from the CLI's context store; else the default socket. The API
// client alone reads only DOCKER_HOST, so with a non-default context the
// stack (run by the CLI) and the probes (by the API) would land on
// different engines. The store is read directly: asking `docker context
// inspect` costs a process start on every run.
func ResolveEngine(context.Context) (Engine, error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return Engine{Host: h}, nil
	}
	cfg, err := readCLIConfig()
	if err != nil {
		return Engine{}, err
	}
	if cfg.Dir == "" {
		return Engine{Host: client.DefaultDockerHost}, nil
	}
	name := os.Getenv("DOCKER_CONTEXT")
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" || name == "default" {
		return Engine{Host: client.DefaultDockerHost}, nil
	}
	id := fmt.Sprintf("%x", sha256.Sum256([]byte(name)))
	b, err := os.ReadFile(filepath.Join(cfg.Dir, "contexts", "meta", id, "meta.json"))
	if err != nil {
		return Engine{}, fmt.Errorf("docker context %s: %w", name, err)
	}
	_, tlsErr := os.Stat(filepath.Join(cfg.Dir, "contexts", "tls", id, "docker"))
	return parseContext(name, b, tlsErr == nil)
}

// cliConfig is what unhost reads of the docker CLI's configuration,
// $DOCKER_CONFIG/config.json (by default ~/.docker/config.json).
type cliConfig struct {
	// Dir is the configuration folder; "" when there is no home to find it in.
	Dir            string   `json:"-"`
	CurrentContext string   `json:"currentContext"`
	PluginDirs     []string `json:"cliPluginsExtraDirs"`
}

// readCLIConfig reads the docker CLI's configuration. A missing file is an
// empty configuration, as for the CLI.
func readCLIConfig() (cliConfig, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return cliConfig{}, nil
		}
		dir = filepath.Join(home, ".docker")
	}
	cfg := cliConfig{Dir: dir}
	file := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cliConfig{}, fmt.Errorf("docker CLI configuration: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cliConfig{}, fmt.Errorf("docker CLI configuration %s: %w", file, err)
	}
	return cfg, nil
}

// parseContext reads a context's meta.json from the docker CLI's store.
func parseContext(name string, b []byte, hasTLS bool) (Engine, error) {
	var meta struct {
		Endpoints map[string]struct {
			Host string
		}
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return Engine{}, fmt.Errorf("docker context %s: %w", name, err)
	}
	ep, ok := meta.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return Engine{}, fmt.Errorf("docker context %s has no docker endpoint", name)
	}
	if hasTLS {
		return Engine{}, fmt.Errorf("docker context %s uses TLS, which verify does not read from contexts: set DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH", name)
	}
	return Engine{Host: ep.Host, Context: name}, nil
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
