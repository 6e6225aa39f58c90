package analysis

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// Evidence is one observation that a decision rests on. It is defined by
// the plan, whose contract it is part of, so that plan stays a leaf.
type Evidence = plan.Evidence

// StaticListener is a port a service seems to listen on, judged from its
// configuration.
type StaticListener struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	PortEnd  int    `json:"port_end,omitempty"` // for ranges
	// Address is the bind address when the configuration says it; "" when
	// only the port is known.
	Address string `json:"address,omitempty"`
	// Scope classifies Address; ScopeUnknown (omitted) when Address is "".
	Scope Scope `json:"scope,omitempty"`
	// Node is the scalar that holds a literal bind address, when there is one.
	Node     *yaml.Node       `json:"-"`
	File     *load.SourceFile `json:"-"`
	BindText string           `json:"-"` // the literal address text in Node
	// OutsideHint is true when the configuration shows that clients outside
	// the stack use the port (it is listed in the ignored `ports:`).
	OutsideHint bool     `json:"outside_hint,omitempty"`
	PublishIP   string   `json:"-"` // host_ip of an ignored ports: entry
	Evidence    Evidence `json:"evidence"`
}

// Role of an address found in configuration.
const (
	RoleConnect   = "connect"   // a client connects there
	RoleListen    = "listen"    // the service binds there
	RoleAdvertise = "advertise" // told to outside clients: never rewritten
	// RoleServerList is a host:port:port entry of a cluster's member list.
	RoleServerList = "server-list"
)

// AddressRef is an address token in a service's configuration.
type AddressRef struct {
	Service string `json:"service"`
	Field   string `json:"field"` // e.g. environment.DB_URL, command, healthcheck.test
	Host    string `json:"host"`
	Port    int    `json:"port,omitempty"`
	Scheme  string `json:"scheme,omitempty"`
	Role    string `json:"role"`
	// Token is the text to rewrite (e.g. "localhost:5432", or "localhost"
	// when the port comes from a sibling variable).
	Token string `json:"token"`
	// PortFrom says where the port came from when it is not in Token.
	PortFrom string `json:"port_from,omitempty"`
	// Variable is set when the address or port itself depends on an unset
	// or interpolated variable.
	Variable string           `json:"variable,omitempty"`
	Pos      load.Pos         `json:"pos"`
	File     *load.SourceFile `json:"-"`
	Node     *yaml.Node       `json:"-"`
}

// ServiceFacts is what the Compose files say about one service.
type ServiceFacts struct {
	Name        string `json:"name"`
	NetworkMode string `json:"network_mode,omitempty"`
	// HostNetworkKey is the key under which the service attaches the
	// external network named "host" (swarm's form of host networking).
	HostNetworkKey string   `json:"host_network_key,omitempty"`
	Deploy         bool     `json:"deploy,omitempty"`
	Replicas       int      `json:"replicas,omitempty"`
	Image          string   `json:"image,omitempty"`
	Profiles       []string `json:"profiles,omitempty"`
	CapAdd         []string `json:"cap_add,omitempty"`
	Devices        []string `json:"devices,omitempty"`
	// Listeners, for host-network services; sorted.
	Listeners []StaticListener `json:"listeners,omitempty"`
	// Published are a bridge service's port mappings (host port -> target).
	Published []types.ServicePortConfig `json:"published,omitempty"`
	Refs      []AddressRef              `json:"refs,omitempty"`
	// External is true when the configuration names hosts outside the stack.
	External []string `json:"external,omitempty"`
	// DependsOn are the services it depends on, sorted: where a localhost
	// reference most plausibly points, and networks it must share.
	DependsOn  []string `json:"depends_on,omitempty"`
	Privileged bool     `json:"privileged,omitempty"`
	Pid        string   `json:"pid,omitempty"`
	// HostNeeds are the signs that the service needs the host network,
	// each with its evidence; the planner judges them.
	HostNeeds []HostNeed `json:"host_needs,omitempty"`
	// NetworkModeFrom is set when a variable chooses network_mode
	// (network_mode: ${NETMODE:-host}): the file alone does not say
	// whether the service runs on the host network.
	NetworkModeFrom *VariableChoice `json:"network_mode_from,omitempty"`
	// programs are the table's programs that command and entrypoint run.
	programs []programUse
	// portMoved is set when the configuration sets the image's port flag
	// or variable (postgres -c port=5433): the port the image exposes by
	// default is then not where it listens.
	portMoved bool
	// rangeNeeds are port ranges set by MIN/MAX variables or flags.
	rangeNeeds []HostNeed
}

// programUse is a program of the image table named in a command.
type programUse struct {
	word, field, where string
	how                string // "runs" (a command word) or "sets" (a variable)
	info               *ImageInfo
}

// HostNetwork reports whether the service runs on the host network, by
// network_mode or (swarm) by attaching the external network named host.
func (s *ServiceFacts) HostNetwork() bool { return s.NetworkMode == "host" || s.HostNetworkKey != "" }

// ImageInspector tells the ports an image exposes. ok is false when the
// image is not known locally.
type ImageInspector interface {
	ExposedPorts(image string) (ports []string, ok bool, err error)
}

// Facts are the static facts of a whole project.
type Facts struct {
	Services map[string]*ServiceFacts `json:"services"`
	// ImageMetadata says whether image metadata could be read: "available",
	// "partial" or the reason it was not.
	ImageMetadata string `json:"image_metadata"`
}

// Names returns the service names, sorted.
func (f *Facts) Names() []string {
	var out []string
	for n := range f.Services {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Analyze gathers the static facts of every service of the project.
func Analyze(c *load.Compose, images ImageInspector) *Facts {
	return analyze(c.Project, c.ServiceNodes, images)
}

// AnalyzeProject gathers the same facts from a project loaded by
// compose-go alone (the stack verify runs): values are read as loaded,
// interpolated, and carry no source positions.
func AnalyzeProject(p *types.Project, images ImageInspector) *Facts {
	return analyze(p, func(string) []load.NodeRef { return nil }, images)
}

func analyze(p *types.Project, nodesOf func(string) []load.NodeRef, images ImageInspector) *Facts {
	facts := &Facts{Services: map[string]*ServiceFacts{}, ImageMetadata: "not requested"}
	all := p.AllServices()
	others := projectOwners(all)
	hostNets := ProjectHostNetworkKeys(p)
	imagesSeen, imagesMissing := 0, 0
	var imageErr error
	for name, s := range all {
		sf := &ServiceFacts{Name: name, NetworkMode: s.NetworkMode, Image: s.Image, Profiles: s.Profiles,
			CapAdd: append([]string(nil), s.CapAdd...), Privileged: s.Privileged, Pid: s.Pid}
		for dep := range s.DependsOn {
			sf.DependsOn = append(sf.DependsOn, dep)
		}
		sort.Strings(sf.DependsOn)
		for key := range s.Networks {
			if hostNets[key] {
				sf.HostNetworkKey = key
			}
		}
		if s.Deploy != nil {
			sf.Deploy = true
			if s.Deploy.Replicas != nil {
				sf.Replicas = *s.Deploy.Replicas
			}
		}
		for _, d := range s.Devices {
			sf.Devices = append(sf.Devices, d.Source)
		}
		nodes := nodesOf(name)
		if sf.HostNetwork() {
			for _, r := range coalescePorts(s.Ports) {
				l := portListener(r.first)
				if r.n > 1 {
					l.PortEnd = l.Port + r.n - 1
				}
				text := portText(r.first)
				if r.n > 1 {
					text = fmt.Sprintf("%s (%d ports to %d)", text, r.n, l.PortEnd)
				}
				l.Evidence = Evidence{Kind: "ports", Where: findPortPos(nodes, r.first), Detail: "ignored under host networking: " + text}
				sf.Listeners = append(sf.Listeners, l)
			}
			for _, e := range s.Expose {
				port, end, proto, err := parsePortRange(e)
				if err != nil {
					continue
				}
				sf.Listeners = append(sf.Listeners, StaticListener{Protocol: proto, Port: port, PortEnd: end,
					Evidence: Evidence{Kind: "expose", Detail: "expose " + e}})
			}
			fromImage := false
			if images != nil && s.Image != "" {
				ports, ok, err := images.ExposedPorts(s.Image)
				switch {
				case err != nil:
					imageErr = err
				case !ok:
					imagesMissing++
				default:
					fromImage = true
					imagesSeen++
					for _, e := range ports {
						port, end, proto, err := parsePortRange(e)
						if err != nil {
							continue
						}
						sf.Listeners = append(sf.Listeners, StaticListener{Protocol: proto, Port: port, PortEnd: end,
							Evidence: Evidence{Kind: "image", Detail: fmt.Sprintf("image %s exposes %s", s.Image, e)}})
					}
				}
			}
			scanConfig(others, sf, nodes, s)
			if !fromImage && len(sf.Listeners) == 0 {
				// nothing else is known: a well-known image's documented
				// ports, rather than publishing nothing
				info := LookupImage(s.Image)
				for _, e := range KnownImagePorts(s.Image) {
					port, end, proto, err := parsePortRange(e)
					if err != nil {
						continue
					}
					sf.Listeners = append(sf.Listeners, StaticListener{Protocol: proto, Port: port, PortEnd: end,
						Evidence: Evidence{Kind: "image-default", Detail: fmt.Sprintf("%s listens on %s by default (its documented port, %s; neither the image nor the configuration says more)", ImageName(s.Image), e, info.Source())}})
				}
			}
		} else {
			sf.Published = append(sf.Published, s.Ports...)
			scanConfig(others, sf, nodes, s)
		}
		if e := LookupImage(s.Image); e != nil && sf.portMoved {
			sf.Listeners = slices.DeleteFunc(sf.Listeners, func(l StaticListener) bool {
				return l.Evidence.Kind == "image" && slices.Contains(e.Ports, strconv.Itoa(l.Port))
			})
		}
		sf.NetworkModeFrom = networkModeChoice(nodes, s.NetworkMode)
		for i := range sf.Listeners {
			if a := sf.Listeners[i].Address; a != "" {
				sf.Listeners[i].Scope = ParseAddress(a).Scope
			}
		}
		sortListeners(sf.Listeners)
		sf.HostNeeds = hostNeeds(sf, nodes)
		facts.Services[name] = sf
	}
	// a scheme:NAME:PORT reference to a service of the project is not a
	// host outside the stack
	for _, sf := range facts.Services {
		sf.External = slices.DeleteFunc(sf.External, func(h string) bool { return facts.Services[h] != nil })
		if len(sf.External) == 0 {
			sf.External = nil
		}
	}
	switch {
	case images == nil:
		facts.ImageMetadata = "unavailable: no Docker engine was asked"
	case imageErr != nil:
		facts.ImageMetadata = "unavailable: " + imageErr.Error()
	case imagesMissing > 0 && imagesSeen == 0:
		facts.ImageMetadata = "unavailable: no image of a host-network service is present locally"
	case imagesMissing > 0:
		facts.ImageMetadata = fmt.Sprintf("partial: %d image(s) not present locally", imagesMissing)
	default:
		facts.ImageMetadata = "available"
	}
	return facts
}

func sortListeners(ls []StaticListener) {
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Address < b.Address
	})
}

func portListener(p types.ServicePortConfig) StaticListener {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	l := StaticListener{Protocol: proto, Port: int(p.Target), OutsideHint: true, PublishIP: p.HostIP}
	return l
}

func portText(p types.ServicePortConfig) string {
	s := strconv.Itoa(int(p.Target))
	if p.Published != "" {
		s = p.Published + ":" + s
	}
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	if p.Protocol != "" && p.Protocol != "tcp" {
		s += "/" + p.Protocol
	}
	return s
}

// findPortPos finds where a ports entry is written, for the plan.
func findPortPos(nodes []load.NodeRef, p types.ServicePortConfig) string {
	for i := len(nodes) - 1; i >= 0; i-- {
		seq := load.MapValue(nodes[i].Node, "ports")
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range seq.Content {
			if pc, err := ParsePortItem(item); err == nil {
				for _, x := range pc {
					if x.Target == p.Target && x.Protocol == p.Protocol && x.Published == p.Published && x.HostIP == p.HostIP {
						return nodes[i].File.PosOf(item).String()
					}
				}
			}
		}
	}
	return ""
}

// ParsePortItem parses one ports: entry (short or long syntax) as written.
func ParsePortItem(item *yaml.Node) ([]types.ServicePortConfig, error) {
	switch item.Kind {
	case yaml.ScalarNode:
		pcs, err := types.ParsePortConfig(item.Value)
		for i := range pcs {
			if pcs[i].Protocol == "" {
				pcs[i].Protocol = "tcp"
			}
		}
		return pcs, err
	case yaml.MappingNode:
		var pc types.ServicePortConfig
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i].Value, item.Content[i+1].Value
			switch k {
			case "target":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("target %q: %w", v, err)
				}
				pc.Target = uint32(n)
			case "published":
				pc.Published = v
			case "host_ip":
				pc.HostIP = v
			case "protocol":
				pc.Protocol = v
			case "mode":
				pc.Mode = v
			}
		}
		if pc.Protocol == "" {
			pc.Protocol = "tcp"
		}
		return []types.ServicePortConfig{pc}, nil
	}
	return nil, fmt.Errorf("not a port entry")
}

// parsePortRange parses "8080", "8080/udp", "7000-7010/tcp".
func parsePortRange(s string) (port, end int, proto string, err error) {
	proto = "tcp"
	if i := strings.IndexByte(s, '/'); i >= 0 {
		proto = strings.ToLower(s[i+1:])
		s = s[:i]
	}
	lo, hi, ok := strings.Cut(s, "-")
	port, err = strconv.Atoi(lo)
	if err != nil {
		return 0, 0, "", err
	}
	if ok {
		end, err = strconv.Atoi(hi)
		if err != nil {
			return 0, 0, "", err
		}
		if end == port {
			end = 0
		}
	}
	return port, end, proto, nil
}

// HostNetworkKeys returns the top-level network keys that stand for the
// host network in swarm: external networks named "host".
func HostNetworkKeys(c *load.Compose) map[string]bool { return ProjectHostNetworkKeys(c.Project) }

// ProjectHostNetworkKeys is HostNetworkKeys for a project loaded by
// compose-go alone.
func ProjectHostNetworkKeys(p *types.Project) map[string]bool {
	out := map[string]bool{}
	for key, n := range p.Networks {
		name := n.Name
		if name == "" {
			name = key
		}
		if bool(n.External) && name == "host" {
			out[key] = true
		}
	}
	return out
}

// OnHostNetwork reports whether a service of p runs on the host network:
// network_mode: host, or (swarm) the external network named host. This is
// the one place that decides it; hostKeys is ProjectHostNetworkKeys(p),
// passed in so that a loop over services computes it once.
func OnHostNetwork(s types.ServiceConfig, hostKeys map[string]bool) bool {
	if s.NetworkMode == "host" {
		return true
	}
	for key := range s.Networks {
		if hostKeys[key] {
			return true
		}
	}
	return false
}

// IsSwarm reports whether the files look like a swarm stack: they attach
// the external host network, or a service's deploy: section says something
// only swarm acts on (mode, placement, update or rollback config, endpoint
// mode). deploy.resources and deploy.replicas alone do not count: docker
// compose honours them too, and a bridge project must not get overlay
// networks it cannot create.
func IsSwarm(c *load.Compose) bool {
	if len(HostNetworkKeys(c)) > 0 {
		return true
	}
	for _, s := range c.Project.AllServices() {
		d := s.Deploy
		if d == nil {
			continue
		}
		if d.Mode != "" || d.UpdateConfig != nil || d.RollbackConfig != nil || d.EndpointMode != "" ||
			len(d.Placement.Constraints) > 0 || len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas > 0 {
			return true
		}
	}
	return false
}

// portRun is a run of consecutive ports entries (compose-go expands a
// range like 10000-10020 into one entry per port).
type portRun struct {
	first types.ServicePortConfig
	n     int
}

func coalescePorts(ports []types.ServicePortConfig) []portRun {
	var out []portRun
	for _, p := range ports {
		if k := len(out) - 1; k >= 0 {
			r := &out[k]
			f := r.first
			pub, err1 := strconv.Atoi(p.Published)
			fpub, err2 := strconv.Atoi(f.Published)
			if p.Protocol == f.Protocol && p.HostIP == f.HostIP && p.Mode == f.Mode &&
				int(p.Target) == int(f.Target)+r.n && (p.Published == "" && f.Published == "" || err1 == nil && err2 == nil && pub == fpub+r.n) {
				r.n++
				continue
			}
		}
		out = append(out, portRun{first: p, n: 1})
	}
	return out
}

// LiteralBind returns the text in the service's own configuration that
// writes addr:port literally (tcp:127.0.0.1:19001, --listen 127.0.0.1:19001,
// LISTEN_ADDR=[::1]:8080): when a runtime listener is seen on that address,
// this literal is its bind, and the one to rewrite (issue 10 item 12).
// Addresses compare as ParseAddress normalises them ([::1] is ::1,
// ::ffff:127.0.0.1 is 127.0.0.1); a name does not match an IP.
func (s *ServiceFacts) LiteralBind(addr string, port int) (AddressRef, bool) {
	want := ParseAddress(addr)
	for _, r := range s.Refs {
		if r.Port != port || r.Node == nil || r.PortFrom != "" {
			continue
		}
		if got := ParseAddress(r.Host); got.Host == want.Host && got.Scope == want.Scope && strings.HasSuffix(r.Token, ":"+strconv.Itoa(port)) {
			return r, true
		}
	}
	return AddressRef{}, false
}
