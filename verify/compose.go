package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Compose is a Docker Compose v2 command line: the docker CLI plugin
// ("docker compose") or a standalone docker-compose of version 2 or later.
type Compose struct {
	Argv    []string // command and leading arguments, e.g. docker compose
	Version string   // as printed by "version --short", without a leading v
	// Env is the commands' environment; nil: this process's.
	Env []string
}

// ErrNoCompose is returned when no Compose v2 CLI answers.
var ErrNoCompose = errors.New("no docker compose v2 found: install the compose plugin (see docs/verify.md, scripts/install-compose.sh) or a docker-compose binary of version 2 or later")

// FindCompose looks for Compose v2, in this order:
//  1. the docker CLI's compose plugin, found where the CLI looks for it
//     (pluginDirs), run on its own, as a standalone docker-compose. Through
//     `docker compose`, every call starts the docker CLI, which first asks
//     the plugin for its metadata: two more process starts per call, about
//     a tenth of a second of a verify run (BENCHMARKS.md, "verify");
//  2. "docker compose", for a plugin where unhost does not look;
//  3. a standalone docker-compose on PATH.
//
// Compose v1 (1.x) is refused by its version.
func FindCompose(ctx context.Context) (*Compose, error) {
	var seen []string
	var candidates [][]string
	if _, err := exec.LookPath("docker"); err == nil {
		// Only the CLI's own plugin: without a docker CLI there is none.
		if p := composePlugin(); p != "" {
			candidates = append(candidates, []string{p})
		}
		candidates = append(candidates, []string{"docker", "compose"})
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		candidates = append(candidates, []string{"docker-compose"})
	}
	for _, argv := range candidates {
		c := &Compose{Argv: argv}
		out, err := c.output(ctx, "version", "--short")
		if err != nil {
			continue
		}
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		major, _, _ := strings.Cut(v, ".")
		n, err := strconv.Atoi(major)
		if err != nil {
			continue
		}
		if n < 2 {
			seen = append(seen, fmt.Sprintf("%s %s", strings.Join(argv, " "), v))
			continue
		}
		c.Version = v
		return c, nil
	}
	if len(seen) > 0 {
		return nil, fmt.Errorf("%w (found only %s)", ErrNoCompose, strings.Join(seen, ", "))
	}
	return nil, ErrNoCompose
}

// systemPluginDirs are the docker CLI's own plugin folders on Linux, after
// the user's ($DOCKER_CONFIG/cli-plugins) and those config.json adds
// (cliPluginsExtraDirs).
var systemPluginDirs = []string{
	"/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
	"/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins",
}

// pluginDirs are the folders the docker CLI looks for plugins in, in its
// order; nil when its configuration cannot be read (the CLI is asked then).
func pluginDirs() []string {
	cfg, err := readCLIConfig()
	if err != nil {
		return nil
	}
	var dirs []string
	if cfg.Dir != "" {
		dirs = append(dirs, filepath.Join(cfg.Dir, "cli-plugins"))
	}
	dirs = append(dirs, cfg.PluginDirs...)
	return append(dirs, systemPluginDirs...)
}

// composePlugin is the path of the docker CLI's compose plugin: the first
// executable docker-compose in pluginDirs, or "".
func composePlugin() string {
	for _, d := range pluginDirs() {
		p := filepath.Join(d, "docker-compose")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func (c *Compose) String() string { return strings.Join(c.Argv, " ") + " " + c.Version }

func (c *Compose) output(ctx context.Context, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := c.Run(ctx, &out, io.Discard, args...)
	return out.Bytes(), err
}

// Run runs compose with args in its own process group. When ctx ends the
// whole group gets SIGTERM, then SIGKILL after a grace period: killing only
// the docker CLI leaves its compose plugin child running.
func (c *Compose) Run(ctx context.Context, stdout, stderr io.Writer, args ...string) error {
	argv := append(append([]string{}, c.Argv...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = c.Env
	// Pdeathsig: a compose left behind by a killed unhost would go on
	// creating the stack of a run whose lease is gone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		// Children that outlived the leader (or ignored SIGTERM) go too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		name := strings.Join(c.Argv, " ")
		for _, a := range args {
			if a == "up" || a == "down" || a == "version" {
				name += " " + a
				break
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
