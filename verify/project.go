package verify

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	yaml "go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
)

// Labels put on everything a verify run creates.
const (
	LabelRun = "io.unhost.verify"     // run id
	LabelPID = "io.unhost.verify.pid" // pid of the unhost process that owns the run
)

// PortMapping is one published port: the host port the real deployment
// uses and the free port the test run used instead.
type PortMapping struct {
	Service  string `json:"service"`
	Target   uint32 `json:"target"`
	Protocol string `json:"protocol"`
	HostIP   string `json:"host_ip,omitempty"`
	Real     string `json:"real"` // as written in the compose file; empty: ephemeral
	Test     string `json:"test"` // used during the test run
	// Mode is the swarm publish mode (ingress or host); empty for compose.
	Mode string `json:"mode,omitempty"`
}

// skippedService records a service that does not run in the test stack, and why.
type skippedService struct {
	Service string
	Reason  string
}

// prepared is the throwaway form of a project.
type prepared struct {
	Project  *types.Project
	Original map[string]types.ServiceConfig // services as loaded, for reference scanning
	Ports    []PortMapping
	Skipped  []skippedService
	HTTP     []string // x-unhost http checks
	// Notes say, per service, what the test run changed beyond names and
	// ports (swarm: replicas capped on a single node).
	Notes map[string]string
}

type loadOptions struct {
	Files      []string
	ProjectDir string
	EnvFiles   []string
	// Profiles to run; empty: COMPOSE_PROFILES, else only the services
	// without a profile (compose's default set).
	Profiles []string
}

// stack is a project loaded through the shared loader, with its static
// facts, and the copy of it (active profiles only) that verify transforms.
type stack struct {
	Compose *load.Compose
	Facts   *analysis.Facts
	Project *types.Project
	// NotSelected are the services outside the active profiles.
	NotSelected []string
	// Outside are loopback addresses in env files and bind-mounted files,
	// which the containers read too.
	Outside []analysis.OutsideRef
}

// loadStack loads the files as docker compose does (load.LoadCompose, the
// loader migrate and scan use), finds their facts (analysis.Analyze: the
// same reference finder as migrate's) and selects the active profiles.
func loadStack(ctx context.Context, o loadOptions) (*stack, error) {
	c, err := load.LoadCompose(ctx, load.ComposeOptions{Files: o.Files, ProjectDirectory: o.ProjectDir, EnvFiles: o.EnvFiles, Env: os.Environ()})
	if err != nil {
		return nil, fmt.Errorf("load compose files: %w", err)
	}
	if c.Lenient {
		return nil, fmt.Errorf("load compose files: compose refuses them while %s unset: set them (verify runs the stack as compose would)", strings.Join(c.Unset, ", "))
	}
	profiles := o.Profiles
	if len(profiles) == 0 {
		for _, p := range strings.Split(os.Getenv("COMPOSE_PROFILES"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				profiles = append(profiles, p)
			}
		}
	}
	p, err := c.Project.WithProfiles(profiles)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	// env_file and variables without a value resolved into environment,
	// as the old deployment's compose resolves them (docker stack deploy
	// reads no env_file in the form compose-go writes).
	if p, err = p.WithServicesEnvironmentResolved(true); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	// label_file likewise, so that stripped labels are stripped there too.
	if p, err = p.WithServicesLabelsResolved(true); err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	st := &stack{Compose: c, Facts: analysis.Analyze(c, nil), Project: p, Outside: analysis.OutsideRefs(c, ".")}
	for name := range p.DisabledServices {
		st.NotSelected = append(st.NotSelected, name)
	}
	sort.Strings(st.NotSelected)
	p.DisabledServices = nil
	return st, nil
}

type transformOptions struct {
	Name          string
	RunID         string
	PID           int
	WritableBinds bool
	AllowExternal bool
	InPlace       bool
	// Swarm prepares a stack for docker stack deploy: the external network
	// named host is swarm's host networking, secrets and configs get
	// throwaway names, services carry the run labels too.
	Swarm bool
	// See Options.
	AllowEngineSocket, AllowPrivileged, AllowHostPID, AllowDevices bool
}

// prepare turns a loaded project into a throwaway one that can run beside
// the real deployment: own name and labels, no container_name, free host
// ports, fresh volumes, read-only binds, no external resources.
func prepare(p *types.Project, o transformOptions) (*prepared, error) {
	out := &prepared{Original: map[string]types.ServiceConfig{}, Notes: map[string]string{}}
	for name, s := range p.Services {
		out.Original[name] = s
	}
	labels := func(l types.Labels) types.Labels {
		if l == nil {
			l = types.Labels{}
		}
		l[LabelRun] = o.RunID
		l[LabelPID] = strconv.Itoa(o.PID)
		return l
	}

	var external []string
	hostNets := map[string]bool{} // swarm: keys of the external network named host
	for key, n := range p.Networks {
		if bool(n.External) && o.Swarm && (n.Name == "host" || n.Name == "" && key == "host") {
			hostNets[key] = true
			continue
		}
		if n.External {
			if o.AllowExternal {
				continue
			}
			external = append(external, fmt.Sprintf("network %q", key))
			continue
		}
		// An explicit name is shared by every project: use a fresh one.
		n.Name = o.Name + "_" + key
		n.Labels = labels(n.Labels)
		p.Networks[key] = n
	}
	for key, v := range p.Volumes {
		if v.External {
			if o.AllowExternal {
				continue
			}
			external = append(external, fmt.Sprintf("volume %q", key))
			continue
		}
		// A throwaway local volume: a driver with options (e.g. local with
		// o=bind) could point at production data.
		v.Name = o.Name + "_" + key
		v.Driver = ""
		v.DriverOpts = nil
		v.Labels = labels(v.Labels)
		p.Volumes[key] = v
	}

	if o.Swarm {
		for key, sec := range p.Secrets {
			if sec.External {
				if !o.AllowExternal {
					external = append(external, fmt.Sprintf("secret %q", key))
				}
				continue
			}
			sec.Name = o.Name + "_" + key
			sec.Labels = labels(sec.Labels)
			p.Secrets[key] = sec
		}
		for key, cfg := range p.Configs {
			if cfg.External {
				if !o.AllowExternal {
					external = append(external, fmt.Sprintf("config %q", key))
				}
				continue
			}
			cfg.Name = o.Name + "_" + key
			cfg.Labels = labels(cfg.Labels)
			p.Configs[key] = cfg
		}
	}

	skipped := map[string]string{}
	var refused []string
	for name, s := range p.Services {
		onHostNet := analysis.OnHostNetwork(s, hostNets) && s.NetworkMode != "host"
		refused = append(refused, refusals(name, s, o)...)
		switch {
		case onHostNet && !o.InPlace:
			skipped[name] = "attached to the external host network: running it would touch the host's network beside the running deployment (use --in-place)"
		case s.NetworkMode == "host" && !o.InPlace:
			skipped[name] = "kept on network_mode: host: running it would touch the host's network beside the running deployment (use --in-place)"
		case strings.HasPrefix(s.NetworkMode, types.ContainerPrefix) && !o.AllowExternal:
			external = append(external, fmt.Sprintf("network_mode %q of service %q", s.NetworkMode, name))
		}
		for _, vf := range s.VolumesFrom {
			if strings.HasPrefix(vf, types.ContainerPrefix) && !o.AllowExternal {
				external = append(external, fmt.Sprintf("volumes_from %q of service %q", vf, name))
			}
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, fmt.Errorf("refused: the test stack would run beside production with what can reach it: %s", strings.Join(refused, "; "))
	}
	if len(external) > 0 {
		sort.Strings(external)
		return nil, fmt.Errorf("the stack uses external resources, which a test run would share with the real deployment: %s (use --allow-external)", strings.Join(external, ", "))
	}
	// Services that depend on (or share the namespace of) a skipped service
	// cannot run either.
	for changed := true; changed; {
		changed = false
		for name, s := range p.Services {
			if _, ok := skipped[name]; ok {
				continue
			}
			for dep := range s.DependsOn {
				if _, ok := skipped[dep]; ok {
					skipped[name] = fmt.Sprintf("depends on %s, which is skipped", dep)
					changed = true
				}
			}
			if dep, ok := strings.CutPrefix(s.NetworkMode, types.ServicePrefix); ok {
				if _, ok := skipped[dep]; ok {
					skipped[name] = fmt.Sprintf("shares the network namespace of %s, which is skipped", dep)
					changed = true
				}
			}
		}
	}
	for name, reason := range skipped {
		delete(p.Services, name)
		out.Skipped = append(out.Skipped, skippedService{Service: name, Reason: reason})
	}
	sort.Slice(out.Skipped, func(i, j int) bool { return out.Skipped[i].Service < out.Skipped[j].Service })

	used := map[string]bool{}
	for name, s := range p.Services {
		if cn := s.ContainerName; cn != "" && s.NetworkMode == "" {
			// Other services may reach it by its container name: keep
			// that name as an alias, since the name itself is global.
			for key, n := range s.Networks {
				if n == nil {
					n = &types.ServiceNetworkConfig{}
				}
				if !slices.Contains(n.Aliases, cn) {
					n.Aliases = append(n.Aliases, cn)
				}
				s.Networks[key] = n
			}
		}
		s.ContainerName = ""
		s.Profiles = nil
		var note []string
		if gone := stripLabels(s.Labels); len(gone) > 0 {
			note = append(note, "labels removed: "+strings.Join(gone, ", "))
		}
		if s.Deploy != nil {
			if gone := stripLabels(s.Deploy.Labels); len(gone) > 0 {
				note = append(note, "deploy labels removed: "+strings.Join(gone, ", "))
			}
		}
		s.Labels = labels(s.Labels)
		if s.Build != nil {
			// A per-run image name, removed with the run by its label: the
			// build never re-tags a production image.
			s.Image = strings.ToLower(o.Name + "-" + name)
			s.Build.Labels = labels(s.Build.Labels)
			s.PullPolicy = types.PullPolicyBuild
		}
		for i, v := range s.Volumes {
			if v.Bind != nil && v.Bind.SELinux != "" {
				// :z/:Z would relabel production data.
				b := *v.Bind
				b.SELinux = ""
				s.Volumes[i].Bind = &b
				note = append(note, "SELinux relabel :"+v.Bind.SELinux+" dropped on "+v.Source)
			}
		}
		if len(note) > 0 {
			out.Notes[name] = strings.Join(note, "; ")
		}
		hostMode := false
		for i, port := range s.Ports {
			proto := port.Protocol
			if proto == "" {
				proto = "tcp"
			}
			m := PortMapping{Service: name, Target: port.Target, Protocol: proto, HostIP: port.HostIP, Real: port.Published}
			if o.Swarm {
				// swarm publishes on every node address, whatever host_ip says
				m.HostIP, s.Ports[i].HostIP = "", ""
				m.Mode = port.Mode
				if m.Mode == "" {
					m.Mode = "ingress"
				}
				hostMode = hostMode || m.Mode == "host"
			}
			if port.Published != "" {
				free, err := freePort(proto, m.HostIP, used)
				if err != nil {
					return nil, fmt.Errorf("find a free host port for %s %d/%s: %w", name, port.Target, proto, err)
				}
				s.Ports[i].Published = free
				m.Test = free
			}
			out.Ports = append(out.Ports, m)
		}
		for i, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && !o.WritableBinds {
				s.Volumes[i].ReadOnly = true
			}
		}
		if o.Swarm {
			if s.Deploy == nil {
				s.Deploy = &types.DeployConfig{}
			}
			s.Deploy.Labels = labels(s.Deploy.Labels)
			// Two tasks cannot publish one host port on one node.
			if r := s.Deploy.Replicas; hostMode && r != nil && *r > 1 {
				one := 1
				s.Deploy.Replicas = &one
				out.Notes[name] = strings.TrimPrefix(out.Notes[name]+"; "+fmt.Sprintf("replicas %d lowered to 1: its host-mode published ports allow one task per node", *r), "; ")
			}
		}
		p.Services[name] = s
	}
	sort.Slice(out.Ports, func(i, j int) bool {
		a, b := out.Ports[i], out.Ports[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Protocol < b.Protocol
	})
	if x, ok := p.Extensions["x-unhost"]; ok {
		out.HTTP = xUnhostHTTP(x)
	}
	p.Name = o.Name
	out.Project = p
	return out, nil
}

// xUnhostHTTP reads the http list of an x-unhost extension, whatever shape
// the loader gave it; anything else is ignored.
func xUnhostHTTP(x any) []string {
	m, ok := x.(map[string]any)
	if !ok {
		return nil
	}
	list, ok := m["http"].([]any)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// freePort asks the kernel for a free host port, on the host IP the port
// is published on, that this run has not handed out yet.
func freePort(proto, hostIP string, used map[string]bool) (string, error) {
	ip := hostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	for range 20 {
		var port int
		switch proto {
		case "udp":
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
			if err != nil {
				return "", err
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			c.Close()
		default:
			l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
			if err != nil {
				return "", err
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		key := strconv.Itoa(port)
		if !used[key] {
			used[key] = true
			return key, nil
		}
	}
	return "", fmt.Errorf("no free port")
}

// writeProject writes the throwaway project for docker compose. The loader
// has already interpolated every value and turned "$$" into "$": escape
// "$" again so that compose does not interpolate a second time.
func writeProject(p *types.Project, dir string) (string, error) {
	b, err := p.MarshalYAML()
	if err != nil {
		return "", fmt.Errorf("encode test project: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("re-read test project: %w", err)
	}
	escapeDollars(&doc, false)
	b, err = yaml.Marshal(&doc)
	if err != nil {
		return "", fmt.Errorf("encode test project: %w", err)
	}
	path := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write test project: %w", err)
	}
	return path, nil
}

func escapeDollars(n *yaml.Node, isKey bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			escapeDollars(c, false)
		}
	case yaml.MappingNode:
		for i, c := range n.Content {
			escapeDollars(c, i%2 == 0)
		}
	case yaml.ScalarNode:
		if !isKey {
			n.Value = strings.ReplaceAll(n.Value, "$", "$$")
		}
	}
}
