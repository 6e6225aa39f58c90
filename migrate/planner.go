package migrate

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// Publication policies.
const (
	PolicyAuto = "auto"
	PolicyAll  = "all"
	PolicyNone = "none"
)

// Options steer a migration.
type Options struct {
	Policy string // auto (default), all, none
	// Publish are SERVICE:PORT[/proto] entries that are always published.
	Publish []PortRef
	// PublishAddress, when set, publishes ports that would be published on
	// all interfaces on this address instead.
	PublishAddress string
	// Selected limits which services are migrated (from --profile); nil
	// means all.
	Selected map[string]bool
	// Force migrates these services even when they seem to need the host
	// network.
	Force map[string]bool
	// Inventory is runtime evidence; it overrides static guesses.
	Inventory *detect.Inventory
	// Images tells exposed ports of local images; nil when no engine.
	Images analysis.ImageInspector
	// Target is "bridge", "swarm", or "" to choose: swarm when the files
	// attach the external host network or carry deploy: sections.
	Target plan.Target
	// PublishMode is the swarm publish mode: ingress (default) or host.
	PublishMode string
	// EndpointMode, when set, is written as deploy.endpoint_mode (vip or
	// dnsrr) of every migrated service (swarm).
	EndpointMode string
	// WorkDir is the folder paths are shown relative to; default ".".
	WorkDir string
	// ComposeCommand is how the runbook invokes compose, e.g.
	// "docker compose -f compose.yaml".
	ComposeCommand string
}

// PortRef is SERVICE:PORT[/proto].
type PortRef struct {
	Service  string
	Port     int
	Protocol string
}

// ParsePortRef parses SERVICE:PORT[/proto].
func ParsePortRef(s string) (PortRef, error) {
	svc, p, ok := strings.Cut(s, ":")
	if !ok || svc == "" || p == "" {
		return PortRef{}, fmt.Errorf("%q: want SERVICE:PORT", s)
	}
	proto := "tcp"
	if pp, pr, ok := strings.Cut(p, "/"); ok {
		p, proto = pp, strings.ToLower(pr)
		if proto != "tcp" && proto != "udp" {
			return PortRef{}, fmt.Errorf("%q: protocol must be tcp or udp", s)
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return PortRef{}, fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	}
	return PortRef{Service: svc, Port: n, Protocol: proto}, nil
}

// discovery ports that only work on the host network.
var discoveryPorts = []struct {
	lo, hi int
	proto  string
	what   string
}{
	{5353, 5353, "udp", "mDNS"},
	{1900, 1900, "udp", "SSDP/DLNA"},
	{67, 68, "udp", "DHCP"},
	{137, 138, "udp", "NetBIOS"},
	{3702, 3702, "udp", "WS-Discovery"},
}

// knownHostImages need the host network for discovery, whatever their
// configuration shows.
var knownHostImages = map[string]string{
	"homeassistant/home-assistant":          "Home Assistant discovers devices by mDNS/SSDP",
	"ghcr.io/home-assistant/home-assistant": "Home Assistant discovers devices by mDNS/SSDP",
	"linuxserver/homeassistant":             "Home Assistant discovers devices by mDNS/SSDP",
	"plexinc/pms-docker":                    "Plex announces itself by SSDP/GDM broadcast",
	"linuxserver/plex":                      "Plex announces itself by SSDP/GDM broadcast",
	"jellyfin/jellyfin":                     "Jellyfin discovery uses UDP broadcast and DLNA",
	"linuxserver/jellyfin":                  "Jellyfin discovery uses UDP broadcast and DLNA",
	"esphome/esphome":                       "ESPHome finds devices by mDNS",
	"koenkk/zigbee2mqtt":                    "",
	"pihole/pihole":                         "Pi-hole as DHCP server needs broadcast",
	"netdata/netdata":                       "Netdata monitors the host's network stack",
}

// listener is a planning view of a port a migrated service listens on.
type listener struct {
	proto         string
	port, portEnd int
	addr          string
	assumed       bool
	runtime       bool
	outside       bool // signs of outside clients
	outsideWhy    string
	publishHint   string // host_ip of an ignored ports: entry
	evidence      []analysis.Evidence
	bind          *analysis.StaticListener // literal loopback bind, if any
	via           string
	usedBy        map[string]bool // services of the stack using it
	decision      plan.Decision
	why           string
	publishIP     string
	rewriteBind   bool
	blocker       string
}

func (l *listener) count() int {
	if l.portEnd > l.port {
		return l.portEnd - l.port + 1
	}
	return 1
}

func (l *listener) covers(proto string, port int) bool {
	if proto != "" && l.proto != proto {
		return false
	}
	if l.portEnd > l.port {
		return port >= l.port && port <= l.portEnd
	}
	return l.port == port
}

// svc is a planning view of one service.
type svc struct {
	facts       *analysis.ServiceFacts
	name        string
	action      plan.Action
	reason      string
	evidence    []analysis.Evidence
	listeners   []*listener
	follows     string // for network_mode: service:X
	external    bool
	externalWhy string
	networks    []string
	netReason   string
	hostRefs    bool // references a host service: needs extra_hosts
}

type planner struct {
	c        *load.Compose
	facts    *analysis.Facts
	opts     Options
	svcs     map[string]*svc
	names    []string
	plan     *plan.Plan
	rewrites []refRewrite
	binds    []*listener
}

// refRewrite is a reference to rewrite in a scalar.
type refRewrite struct {
	ref *analysis.AddressRef
	to  string // replacement token
	// portRewrite, when set, is a sibling port value to change.
	portRef *analysis.AddressRef
}

func (p *planner) isHost(name string) bool {
	s := p.svcs[name]
	return s != nil && s.facts.HostNetwork()
}

func (p *planner) migrated(name string) bool {
	s := p.svcs[name]
	return s != nil && s.action == plan.ActionMigrate
}

// onHostAfter reports whether the service is on the host network after the
// migration (directly or by following a service that is).
func (p *planner) onHostAfter(name string) bool {
	s := p.svcs[name]
	if s == nil {
		return false
	}
	if s.follows != "" {
		return p.onHostAfter(s.follows)
	}
	return s.facts.HostNetwork() && s.action != plan.ActionMigrate
}

// onHostBefore reports whether the service sees the host's network stack
// before the migration.
func (p *planner) onHostBefore(name string) bool {
	s := p.svcs[name]
	if s == nil {
		return false
	}
	if s.follows != "" {
		return p.onHostBefore(s.follows)
	}
	return s.facts.HostNetwork()
}

// netOwner returns the service whose network namespace name uses.
func (p *planner) netOwner(name string) string {
	for i := 0; i < 10; i++ {
		s := p.svcs[name]
		if s == nil || s.follows == "" {
			return name
		}
		name = s.follows
	}
	return name
}

// Migrate computes the migration plan and the edits.
func Migrate(c *load.Compose, opts Options) (*Result, error) {
	if opts.Policy == "" {
		opts.Policy = PolicyAuto
	}
	p := &planner{c: c, opts: opts, svcs: map[string]*svc{}}
	p.facts = analysis.Analyze(c, opts.Images)
	if opts.Target == "" {
		opts.Target = plan.TargetBridge
		if analysis.IsSwarm(c) {
			opts.Target = plan.TargetSwarm
		}
	}
	if opts.Target == plan.TargetSwarm && opts.PublishMode == "" {
		opts.PublishMode = "ingress"
	}
	p.opts = opts
	p.plan = &plan.Plan{Version: plan.Version, Project: c.Project.Name, Target: opts.Target, Policy: opts.Policy,
		PublishAddress: opts.PublishAddress, Evidence: plan.EvidenceStatic, ImageMetadata: p.facts.ImageMetadata}
	for _, f := range c.Files {
		p.plan.Files = append(p.plan.Files, f.Path)
	}
	p.names = p.facts.Names()
	for _, n := range p.names {
		f := p.facts.Services[n]
		s := &svc{facts: f, name: n, action: plan.ActionUnchanged}
		if strings.HasPrefix(f.NetworkMode, "service:") {
			s.follows = strings.TrimPrefix(f.NetworkMode, "service:")
		}
		p.svcs[n] = s
	}
	if err := p.checkOptions(); err != nil {
		return nil, err
	}
	for _, w := range c.Warnings {
		p.warn(w)
	}
	for _, v := range c.Unset {
		p.warn(fmt.Sprintf("variable %s is unset: analysed with a placeholder; its ${...} text is kept as written", v))
	}
	p.gatherListeners()
	p.applyInventory()
	p.decideServices()
	p.resolveReferences()
	p.resolveOutside()
	if err := p.decidePublication(); err != nil {
		return nil, err
	}
	if err := p.checkReach(); err != nil {
		return nil, err
	}
	p.decideNetworks()
	res, err := p.buildEdits()
	if err != nil {
		return nil, err
	}
	p.finish(res)
	return res, nil
}

func (p *planner) warn(s string) {
	s = Redact(s)
	for _, w := range p.plan.Warnings {
		if w == s {
			return
		}
	}
	p.plan.Warnings = append(p.plan.Warnings, s)
}

// UsageError is an error in what the user asked for (exit 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func (p *planner) swarm() bool { return p.opts.Target == plan.TargetSwarm }

func (p *planner) checkOptions() error {
	if p.swarm() && p.opts.PublishAddress != "" {
		return &UsageError{"--publish-address: swarm publishes on every node address (it ignores host_ip); use --publish-mode host and the nodes' firewalls instead"}
	}
	if p.swarm() && p.opts.EndpointMode == "dnsrr" && p.opts.PublishMode != "host" {
		return &UsageError{"--endpoint-mode dnsrr cannot serve ports published through the ingress routing mesh: add --publish-mode host"}
	}
	if !p.swarm() && (p.opts.EndpointMode != "" || p.opts.PublishMode != "") {
		return &UsageError{"--endpoint-mode and --publish-mode are for --target swarm"}
	}
	for _, pr := range p.opts.Publish {
		if p.svcs[pr.Service] == nil {
			return &UsageError{fmt.Sprintf("--publish %s:%d: no service %q in the project", pr.Service, pr.Port, pr.Service)}
		}
	}
	for n := range p.opts.Force {
		if p.svcs[n] == nil {
			return &UsageError{fmt.Sprintf("--force %s: no service %q in the project", n, n)}
		}
	}
	return nil
}

// gatherListeners merges the static listeners of every host-network
// service, by protocol and port.
func (p *planner) gatherListeners() {
	for _, n := range p.names {
		s := p.svcs[n]
		if !s.facts.HostNetwork() && s.follows == "" {
			continue
		}
		owner := p.svcs[p.netOwner(n)]
		if owner == nil {
			continue
		}
		for i := range s.facts.Listeners {
			sl := &s.facts.Listeners[i]
			via := ""
			if owner != s {
				via = n
			}
			owner.addStatic(sl, via)
		}
	}
}

func (s *svc) find(proto string, port int) *listener {
	for _, l := range s.listeners {
		if l.covers(proto, port) {
			return l
		}
	}
	return nil
}

func (s *svc) addStatic(sl *analysis.StaticListener, via string) {
	l := s.find(sl.Protocol, sl.Port)
	if l == nil || (sl.PortEnd > 0 && l.portEnd != sl.PortEnd) {
		l = &listener{proto: sl.Protocol, port: sl.Port, portEnd: sl.PortEnd, assumed: true, addr: "0.0.0.0", usedBy: map[string]bool{}, via: via}
		s.listeners = append(s.listeners, l)
	}
	if !hasEvidence(l.evidence, sl.Evidence) {
		l.evidence = append(l.evidence, sl.Evidence)
	}
	if sl.OutsideHint {
		l.outside = true
		if l.outsideWhy == "" {
			l.outsideWhy = "listed in the ignored ports: of the service (" + sl.Evidence.Where + ")"
		}
		if sl.PublishIP != "" && l.publishHint == "" {
			l.publishHint = sl.PublishIP
		}
	}
	if sl.Address != "" && !l.runtime {
		if l.assumed || analysis.IsLoopback(sl.Address) {
			l.addr = sl.Address
			l.assumed = false
		}
		if sl.Node != nil && analysis.IsLoopback(sl.Address) {
			l.bind = sl
		}
	}
}

// applyInventory replaces static guesses by what was observed.
func (p *planner) applyInventory() {
	inv := p.opts.Inventory
	if inv == nil {
		return
	}
	p.plan.Evidence = plan.EvidenceRuntime
	for _, so := range inv.Services {
		s := p.svcs[so.Service]
		if s == nil {
			p.warn(fmt.Sprintf("inventory names service %s, which the compose files do not define", so.Service))
			continue
		}
		if !s.facts.HostNetwork() {
			continue
		}
		static := s.listeners
		s.listeners = nil
		for _, ol := range so.Listeners {
			l := &listener{proto: ol.Protocol, port: ol.Port, addr: ol.Address, runtime: true, usedBy: map[string]bool{}}
			ev := analysis.Evidence{Kind: "runtime", Detail: fmt.Sprintf("observed %s listener on %s port %d", ol.Protocol, ol.Address, ol.Port)}
			if ol.Process != "" {
				ev.Detail += " (" + ol.Process + ")"
			}
			l.evidence = append(l.evidence, ev)
			for _, st := range static {
				if st.covers(ol.Protocol, ol.Port) {
					l.evidence = append(l.evidence, st.evidence...)
					if st.outside {
						l.outside, l.outsideWhy, l.publishHint = true, st.outsideWhy, st.publishHint
					}
					if st.bind != nil {
						l.bind = st.bind
					}
					l.via = st.via
				}
			}
			if l.bind == nil && analysis.IsLoopback(ol.Address) {
				// a literal bind may sit in config without a port beside it
				for i := range s.facts.Listeners {
					sl := &s.facts.Listeners[i]
					if sl.Node != nil && analysis.IsLoopback(sl.Address) && (sl.Port == 0 || sl.Port == ol.Port) {
						l.bind = sl
					}
				}
			}
			if l.bind == nil && analysis.IsLoopback(ol.Address) {
				// the process bound 127.0.0.1:P and the service's own
				// command or environment says 127.0.0.1:P: that is its bind
				for _, r := range s.facts.Refs {
					if r.Port == ol.Port && analysis.IsLoopback(r.Host) && r.Field != "healthcheck.test" && r.Node != nil && r.Token == r.Host+":"+strconv.Itoa(r.Port) {
						l.bind = &analysis.StaticListener{Protocol: ol.Protocol, Port: ol.Port, Address: r.Host, Node: r.Node, File: r.File, BindText: r.Host,
							Evidence: analysis.Evidence{Kind: "runtime", Where: r.Pos.String(), Detail: "observed bind " + r.Token + " matches " + r.Field}}
						l.evidence = append(l.evidence, l.bind.Evidence)
						break
					}
				}
			}
			s.listeners = append(s.listeners, l)
		}
		for _, st := range static {
			if s.find(st.proto, st.port) == nil {
				p.warn(fmt.Sprintf("%s: configuration suggests port %d/%s but nothing listened there at detection time: not published", s.name, st.port, st.proto))
			}
		}
		for _, oc := range so.OutsideClients {
			if l := s.find(oc.Protocol, oc.Port); l != nil {
				l.outside = true
				l.outsideWhy = fmt.Sprintf("clients outside the stack were observed (%d peer(s))", len(oc.Peers))
			}
		}
	}
}

func (p *planner) decideServices() {
	forced := func(n string) bool { return p.opts.Force[n] }
	for _, n := range p.names {
		s := p.svcs[n]
		if s.follows != "" {
			s.action = plan.ActionFollow
			s.reason = "shares the network namespace of " + s.follows + " (network_mode: service:" + s.follows + "); its listeners are published on " + s.follows
			continue
		}
		if !s.facts.HostNetwork() {
			continue
		}
		s.evidence = append(s.evidence, analysis.Evidence{Kind: "network_mode", Detail: "network_mode: host"})
		if p.opts.Selected != nil && !p.opts.Selected[n] {
			s.action = plan.ActionNotSelected
			s.reason = "not in the profiles selected with --profile: left on the host network"
			continue
		}
		if why, ev := p.needsHost(s); why != "" && !forced(n) {
			s.action = plan.ActionKeepHost
			s.reason = why
			s.evidence = append(s.evidence, ev...)
			continue
		} else if why != "" {
			s.action = plan.ActionMigrate
			s.reason = "migrated with --force although " + why
			p.warn(fmt.Sprintf("%s: migrated with --force although %s", n, why))
			continue
		}
		s.action = plan.ActionMigrate
		s.reason = "on the host network; nothing in its configuration needs it"
	}
	// followers of services that stay on the host stay with them
	for _, n := range p.names {
		s := p.svcs[n]
		if s.follows != "" && p.svcs[s.follows] == nil {
			s.reason = "follows " + s.follows + ", which is not a service of this project"
		}
	}
}

// needsHost says why a service must stay on the host network, or "".
func (p *planner) needsHost(s *svc) (string, []analysis.Evidence) {
	for _, l := range s.listeners {
		for _, d := range discoveryPorts {
			if l.proto == d.proto && l.port <= d.hi && (l.portEnd >= d.lo || l.port >= d.lo) {
				return fmt.Sprintf("it listens on %d/%s (%s): multicast or broadcast discovery only works on the host network", l.port, l.proto, d.what), l.evidence
			}
		}
		if l.count() > 100 {
			return fmt.Sprintf("it listens on a range of %d ports (%d-%d/%s): Docker runs one proxy process and firewall rules per published port", l.count(), l.port, l.portEnd, l.proto), l.evidence
		}
	}
	for _, d := range s.facts.Devices {
		if d == "/dev/net/tun" {
			return "it uses /dev/net/tun: a VPN or tunnel that works on the host's network stack", []analysis.Evidence{{Kind: "devices", Detail: d}}
		}
	}
	netCaps := []string{}
	for _, c := range s.facts.CapAdd {
		cc := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
		if cc == "NET_ADMIN" || cc == "NET_RAW" || cc == "ALL" {
			netCaps = append(netCaps, cc)
		}
	}
	if len(netCaps) > 0 && len(s.listeners) == 0 {
		return "it has " + strings.Join(netCaps, ", ") + " and no listeners: packet capture, firewall or routing work on the host's interfaces", []analysis.Evidence{{Kind: "cap_add", Detail: strings.Join(netCaps, ", ")}}
	}
	if why, ok := knownHostImages[analysis.ImageName(s.facts.Image)]; ok && why != "" {
		return why, []analysis.Evidence{{Kind: "image", Detail: "image " + s.facts.Image}}
	}
	return "", nil
}

// owners returns the services that listen on proto/port on the host before
// the migration, with the port their container sees.
type owner struct {
	name   string
	target int
}

func (p *planner) owners(proto string, port int) []owner {
	var out []owner
	for _, n := range p.names {
		s := p.svcs[n]
		if s.follows != "" {
			continue
		}
		if s.facts.HostNetwork() {
			if s.find(proto, port) != nil {
				out = append(out, owner{n, port})
			}
			continue
		}
		for _, pc := range s.facts.Published {
			pub := pc.Published
			if pc.Protocol != "" && pc.Protocol != proto || pub == "" {
				continue
			}
			lo, hi, _ := strings.Cut(pub, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				continue
			}
			b := a
			if hi != "" {
				b, _ = strconv.Atoi(hi)
			}
			if port >= a && port <= b {
				out = append(out, owner{n, int(pc.Target) + (port - a)})
			}
		}
	}
	return out
}

// resolveReferences decides what each address in configuration points at,
// and which of them are rewritten.
func (p *planner) resolveReferences() {
	for _, n := range p.names {
		s := p.svcs[n]
		for i := range s.facts.Refs {
			r := &s.facts.Refs[i]
			p.resolveRef(s, r)
		}
		if len(s.facts.External) > 0 {
			s.external = true
			s.externalWhy = "names hosts outside the stack (" + strings.Join(s.facts.External, ", ") + ")"
		}
	}
	if inv := p.opts.Inventory; inv != nil {
		for _, e := range inv.Edges {
			to := p.svcs[e.To]
			if to == nil {
				continue
			}
			owner := p.svcs[p.netOwner(e.To)]
			if l := owner.find(e.Protocol, e.Port); l != nil {
				l.usedBy[e.From] = true
				l.evidence = append(l.evidence, analysis.Evidence{Kind: "runtime", Detail: fmt.Sprintf("%s connected to port %d (%s)", e.From, e.Port, e.Via)})
				if p.onHostAfter(e.From) && p.migrated(owner.name) {
					l.outside = true
					l.outsideWhy = e.From + " stays on the host network and connects to it"
				}
			}
			if !p.hasRef(e.From, e.To, e.Port) {
				p.plan.References = append(p.plan.References, plan.Reference{From: e.From, To: e.To, Port: e.Port, Kind: plan.RefObserved,
					Before: fmt.Sprintf("%s port %d", e.Via, e.Port), Action: "manual",
					Reason: "observed at runtime, but no address in the compose files names it: the client's address is configured elsewhere (a config file, an env file, or a default)"})
				p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: e.From,
					What: fmt.Sprintf("%s connects to %s on port %d, but the compose files do not say where: point it at %s:%d", e.From, e.To, e.Port, e.To, e.Port),
					Hint: "look in its env files and mounted configuration"})
			}
		}
	}
}

func (p *planner) hasRef(from, to string, port int) bool {
	for _, r := range p.plan.References {
		if r.From == from && r.To == to && r.Port == port {
			return true
		}
	}
	return false
}

func (p *planner) resolveRef(s *svc, r *analysis.AddressRef) {
	if r.Role == analysis.RoleListen {
		return
	}
	host := r.Host
	local := analysis.IsLocalHost(host)
	hostSide := host == "host.docker.internal" || host == "gateway.docker.internal" || host == "172.17.0.1"
	seesHost := p.onHostBefore(s.name) && local || !p.onHostBefore(s.name) && hostSide
	ref := plan.Reference{From: s.name, Port: r.Port, Where: r.Pos.String(), Field: r.Field, Before: r.Token}
	if r.Role == analysis.RoleAdvertise {
		if !local && !p.onHostBefore(s.name) {
			return
		}
		ref.Kind, ref.Action = plan.RefAdvertised, "manual"
		ref.Reason = "tells outside clients where to connect: not rewritten"
		if p.migrated(p.netOwner(s.name)) {
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s advertises %s to its clients: after the migration, clients inside the stack must use the service name and clients outside the published address", r.Field, Redact(r.Token)),
				Hint: "give it separate internal and external listeners (e.g. Kafka: INTERNAL://" + s.name + ":PORT for the stack, EXTERNAL://HOST:PORT for outside clients)"})
			p.plan.References = append(p.plan.References, ref)
		}
		return
	}
	if !seesHost {
		return
	}
	if r.Variable != "" && r.Port == 0 {
		if p.migrated(p.netOwner(s.name)) {
			ref.Kind, ref.Action = plan.RefUnresolved, "manual"
			ref.Reason = "the port comes from " + r.Variable + ": unhost cannot tell which service it names"
			p.plan.References = append(p.plan.References, ref)
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s names %s, whose port comes from %s: point it at the service by name (SERVICE:PORT), or at host.docker.internal for a service on the host", r.Field, r.Token, r.Variable)})
		}
		return
	}
	if r.Role == analysis.RoleServerList {
		if p.migrated(p.netOwner(s.name)) {
			ref.Kind, ref.Action = plan.RefAmbiguous, "manual"
			ref.Reason = "an entry of a cluster's member list: the configuration does not say which member owns the port"
			p.plan.References = append(p.plan.References, ref)
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s lists cluster members as %s: point each entry at its member's service name (its own entry may stay as it is)", r.Field, Redact(r.Token)),
				Hint: "members reach each other by service name on the stack's network; ports between them need no publishing"})
		}
		return
	}
	if r.Port == 0 {
		if p.migrated(p.netOwner(s.name)) {
			ref.Kind, ref.Action = plan.RefUnresolved, "manual"
			ref.Reason = "names the host without a port: cannot tell which service it means"
			p.plan.References = append(p.plan.References, ref)
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s names %s without a port: point it at the service it means", r.Field, r.Token)})
		}
		return
	}
	proto := "tcp"
	owners := p.owners(proto, r.Port)
	fromOwner := p.netOwner(s.name)
	// the service's own port: stays
	for _, o := range owners {
		if o.name == fromOwner {
			if r.Field == "healthcheck.test" || len(owners) == 1 {
				return // own port: localhost stays right
			}
		}
	}
	if r.Field == "healthcheck.test" && len(owners) == 0 {
		// a healthcheck names the service's own port
		if own := p.svcs[fromOwner]; own != nil && own.facts.HostNetwork() {
			own.addStatic(&analysis.StaticListener{Protocol: "tcp", Port: r.Port,
				Evidence: analysis.Evidence{Kind: "healthcheck", Where: r.Pos.String(), Detail: "healthcheck connects to " + r.Token}}, "")
		}
		return
	}
	fromMigrates := p.migrated(fromOwner) || !p.onHostBefore(s.name)
	switch len(owners) {
	case 0:
		// a host service outside the stack
		ref.Kind = plan.RefHostService
		if !p.migrated(fromOwner) {
			return
		}
		ref.To = "host"
		if p.swarm() {
			ref.Action, ref.Reason = "manual", fmt.Sprintf("no service of the stack listens on port %d: a service on the host; swarm services have no host-gateway on Engine 20.10", r.Port)
			p.plan.References = append(p.plan.References, ref)
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s names a host service at %s: point it at an address of the node that the overlay network can reach", r.Field, Redact(r.Token))})
			return
		}
		ref.After = replaceHost(r.Token, "host.docker.internal")
		if r.Token == ref.After {
			ref.Action, ref.Reason = "keep", "already names the host through host.docker.internal"
		} else {
			ref.Action = "rewrite"
			ref.Reason = fmt.Sprintf("no service of the stack listens on port %d: a service on the host", r.Port)
			p.rewrites = append(p.rewrites, refRewrite{ref: r, to: ref.After})
		}
		p.svcs[fromOwner].hostRefs = true
		p.plan.References = append(p.plan.References, ref)
		p.warn(fmt.Sprintf("%s reaches a host service on port %d through host.docker.internal: that service must listen on the bridge gateway address (not only 127.0.0.1), and the host firewall must let the bridge in", s.name, r.Port))
	case 1:
		o := owners[0]
		ref.To, ref.Kind = o.name, plan.RefService
		target := p.svcs[o.name]
		if l := target.find(proto, r.Port); l != nil {
			l.usedBy[s.name] = true
		}
		switch {
		case fromMigrates && !p.onHostAfter(o.name):
			name := o.name
			if p.swarm() && target.facts.Replicas > 1 && clusterKey(r.Field) {
				name = "tasks." + o.name
			}
			ref.After = replaceHost(r.Token, name)
			if o.target != r.Port {
				ref.After = replacePort(ref.After, r.Port, o.target)
			}
			if r.PortFrom != "" && o.target != r.Port {
				ref.Action, ref.Reason = "manual", fmt.Sprintf("%s publishes %d for container port %d: set %s to %d", o.name, r.Port, o.target, r.PortFrom, o.target)
				p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(), What: ref.Reason})
			} else {
				ref.Action = "rewrite"
				ref.Reason = fmt.Sprintf("%s listens on port %d: reach it by service name on the stack's network", o.name, o.target)
				if strings.HasPrefix(name, "tasks.") {
					ref.Reason = fmt.Sprintf("%s runs %d replicas and %s lists cluster members: tasks.%s resolves to every replica, where %s alone is one virtual IP", o.name, target.facts.Replicas, r.Field, o.name, o.name)
				}
				if !p.migrated(fromOwner) && p.onHostBefore(s.name) {
					ref.Action, ref.After = "keep", ""
				}
			}
			if ref.Action == "rewrite" {
				p.rewrites = append(p.rewrites, refRewrite{ref: r, to: ref.After})
				if !p.migrated(p.netOwner(s.name)) && !p.onHostBefore(s.name) {
					p.svcs[s.name].action = plan.ActionRefsOnly
					p.svcs[s.name].reason = "not on the host network; its references to migrated services are rewritten"
				}
			}
		case fromMigrates && p.onHostAfter(o.name) && p.swarm():
			ref.Action, ref.Reason = "manual", o.name+" stays on the host network, which swarm services on an overlay cannot reach by name"
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s reaches %s, which stays on the host network: point it at the node's address", r.Field, o.name)})
		case fromMigrates && p.onHostAfter(o.name) && analysis.ParseAddress(r.Host).IsHostGateway():
			// already reaches it through the host: nothing to rewrite
			ref.To, ref.Action, ref.Reason = o.name, "keep", o.name+" stays on the host network and is already reached through the host"
		case fromMigrates && p.onHostAfter(o.name):
			ref.To = o.name
			ref.After = replaceHost(r.Token, "host.docker.internal")
			ref.Action = "rewrite"
			ref.Reason = fmt.Sprintf("%s stays on the host network: reach it through the host", o.name)
			p.rewrites = append(p.rewrites, refRewrite{ref: r, to: ref.After})
			p.svcs[fromOwner].hostRefs = true
			p.warn(fmt.Sprintf("%s reaches %s (kept on the host network) through host.docker.internal:%d: %s must listen on the bridge gateway address, not only 127.0.0.1", s.name, o.name, r.Port, o.name))
		default:
			// the client stays on the host: the port must stay reachable there
			ref.Action, ref.Reason = "keep", s.name+" stays on the host network: it keeps reaching the published port"
			if p.migrated(o.name) {
				if l := target.find(proto, r.Port); l != nil {
					l.outside = true
					if l.outsideWhy == "" {
						l.outsideWhy = s.name + " stays on the host network and uses it (" + r.Pos.String() + ")"
					}
				}
			} else {
				return
			}
		}
		p.plan.References = append(p.plan.References, ref)
	default:
		names := []string{}
		for _, o := range owners {
			names = append(names, o.name)
		}
		ref.Kind, ref.Action = plan.RefAmbiguous, "manual"
		ref.Reason = "several services listen on port " + strconv.Itoa(r.Port) + ": " + strings.Join(names, ", ")
		if fromMigrates {
			p.plan.References = append(p.plan.References, ref)
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: s.name, Where: r.Pos.String(),
				What: fmt.Sprintf("%s names port %d, where %s all listen: point it at the right service by name", r.Field, r.Port, strings.Join(names, ", "))})
		}
	}
}

// replaceHost swaps the host part of a host[:port] token.
func replaceHost(tok, host string) string {
	if strings.HasPrefix(tok, "[") {
		if i := strings.Index(tok, "]"); i >= 0 {
			return host + tok[i+1:]
		}
	}
	if h, rest, ok := strings.Cut(tok, ":"); ok && !strings.Contains(rest, ":") || ok && h != "" && !strings.Contains(h, ":") {
		return host + ":" + rest
	}
	return host
}

func replacePort(tok string, from, to int) string {
	suffix := ":" + strconv.Itoa(from)
	if strings.HasSuffix(tok, suffix) {
		return strings.TrimSuffix(tok, suffix) + ":" + strconv.Itoa(to)
	}
	return tok
}

// decidePublication applies rules 2, 3 and 5 to every listener of every
// migrated service.
func (p *planner) decidePublication() error {
	forced := map[string]bool{}
	for _, pr := range p.opts.Publish {
		s := p.svcs[p.netOwner(pr.Service)]
		if s.action != plan.ActionMigrate {
			// not an error: a bot re-running with the same flags on
			// migrated files must get a no-op
			p.warn(fmt.Sprintf("--publish %s:%d has no effect: %s is not being migrated (%s)", pr.Service, pr.Port, s.name, s.action))
			continue
		}
		l := s.find(pr.Protocol, pr.Port)
		if l == nil {
			l = &listener{proto: pr.Protocol, port: pr.Port, addr: "0.0.0.0", assumed: true, usedBy: map[string]bool{}}
			s.listeners = append(s.listeners, l)
		}
		l.evidence = append(l.evidence, analysis.Evidence{Kind: "flag", Detail: fmt.Sprintf("--publish %s:%d", pr.Service, pr.Port)})
		forced[fmt.Sprintf("%s/%d/%s", s.name, pr.Port, pr.Protocol)] = true
	}
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		sort.SliceStable(s.listeners, func(i, j int) bool {
			a, b := s.listeners[i], s.listeners[j]
			if a.proto != b.proto {
				return a.proto < b.proto
			}
			return a.port < b.port
		})
		for _, l := range s.listeners {
			key := fmt.Sprintf("%s/%d/%s", n, l.port, l.proto)
			used := len(l.usedBy) > 0
			var users []string
			for u := range l.usedBy {
				users = append(users, u)
			}
			sort.Strings(users)
			publish := false
			switch {
			case forced[key]:
				publish, l.why = true, "named with --publish"
			case p.opts.Policy == PolicyNone:
				l.why = "--publish none"
			case p.opts.Policy == PolicyAll:
				publish, l.why = true, "--publish all"
			case l.outside:
				publish, l.why = true, "outside clients: "+l.outsideWhy
			case used:
				l.why = "used only inside the stack (by " + strings.Join(users, ", ") + ") and no sign of outside clients: reached by service name, not published"
			default:
				publish, l.why = true, "not used by other services of the stack: published as it was reachable before"
			}
			loop := analysis.IsLoopback(l.addr)
			if loop {
				if l.bind != nil && l.bind.Node != nil {
					l.rewriteBind = true
					p.binds = append(p.binds, l)
				} else {
					l.blocker = fmt.Sprintf("listens on %s:%d only, which no published port and no other container can reach, and the bind address is not in the compose file", l.addr, l.port)
					p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: n,
						What: fmt.Sprintf("%s %s", n, l.blocker),
						Hint: "configure it to listen on 0.0.0.0 inside the container (its config file or a command-line flag); unhost then publishes it on 127.0.0.1 to keep its reach"})
				}
			}
			if publish && p.swarm() && !analysis.IsBindAll(l.addr) {
				publish = false
				l.why = fmt.Sprintf("swarm cannot publish a port on %s only (it publishes on every node address): left unpublished, reachable by service name inside the stack", l.addr)
				p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: n,
					What: fmt.Sprintf("%s port %d was reachable on %s only; swarm cannot publish it that narrowly, so it is not published", n, l.port, l.addr),
					Hint: "to reach it from the host, publish it with mode: host and restrict it with the node's firewall, or use docker exec / an SSH tunnel"})
			}
			if publish {
				l.decision = plan.DecisionPublish
				switch {
				case loop:
					l.publishIP = "127.0.0.1"
					if strings.Contains(l.addr, ":") {
						l.publishIP = "::1"
					}
				case !analysis.IsBindAll(l.addr):
					l.publishIP = l.addr
				case l.publishHint != "" && !analysis.IsBindAll(l.publishHint):
					l.publishIP = l.publishHint
					l.why += "; published on " + l.publishHint + " as its ports: entry asked"
				case p.opts.PublishAddress != "":
					l.publishIP = p.opts.PublishAddress
				}
				if l.count() > 100 {
					p.warn(fmt.Sprintf("%s publishes %d ports (%d-%d/%s): Docker runs one proxy process and firewall rules per port", n, l.count(), l.port, l.portEnd, l.proto))
				}
			} else {
				l.decision = plan.DecisionInternal
			}
		}
	}
	// two migrated services publishing the same host port
	seen := map[string]string{}
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		for _, l := range s.listeners {
			if l.decision != plan.DecisionPublish {
				continue
			}
			for port := l.port; port <= max(l.port, l.portEnd); port++ {
				k := fmt.Sprintf("%d/%s", port, l.proto)
				if other, ok := seen[k]; ok && other != n {
					p.warn(fmt.Sprintf("%s and %s would both publish host port %s: they cannot run together", other, n, k))
				}
				seen[k] = n
			}
		}
	}
	return nil
}

// decideNetworks applies rule 6.
func (p *planner) decideNetworks() {
	internalName := "internal"
	for _, f := range p.c.Files {
		if nets := load.MapValue(f.Root, "networks"); nets != nil {
			if k, _ := load.MapEntry(nets, internalName); k != nil {
				internalName = "unhost_internal"
			}
		}
	}
	public := map[string]bool{}
	var internalOnly []string
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		isPublic, why := false, ""
		for _, l := range s.listeners {
			if l.decision == plan.DecisionPublish {
				isPublic, why = true, "publishes ports"
				break
			}
		}
		if len(s.listeners) == 0 {
			// nothing is known of it: cutting it off from the outside
			// world (internal: true has no route out) could break it
			isPublic, why = true, "no listener is known, so nothing tells that it needs no outbound access"
		}
		// its followers' configuration counts as its own
		for _, m := range p.names {
			f := p.svcs[m]
			if (m == n || f.follows == n) && f.external {
				isPublic, why = true, f.externalWhy
			}
			if (m == n || f.follows == n) && f.hostRefs {
				isPublic, why = true, "reaches services on the host"
			}
		}
		if !isPublic {
			// a client or server that is not migrated sits on the default
			// network: stay there with it
			for _, r := range p.plan.References {
				if r.Kind != plan.RefService && r.Kind != plan.RefOutside || r.Action == "manual" && r.Kind == plan.RefService || r.From == "" || p.svcs[r.To] == nil {
					continue
				}
				other := ""
				if r.To == n {
					other = p.netOwner(r.From)
				} else if p.netOwner(r.From) == n {
					other = r.To
				}
				if other != "" && other != n && !p.migrated(other) {
					isPublic, why = true, "talks to "+other+", which is not migrated and stays on the default network"
				}
			}
		}
		if isPublic {
			public[n] = true
			s.netReason = why + ": on the default network"
		} else {
			internalOnly = append(internalOnly, n)
		}
	}
	defer p.joinPeerNetworks()
	if len(internalOnly) == 0 {
		return
	}
	// public services that talk to internal-only ones join both
	peers := map[string]bool{}
	internalSet := map[string]bool{}
	for _, n := range internalOnly {
		internalSet[n] = true
	}
	for _, r := range p.plan.References {
		if r.Kind != plan.RefService && r.Kind != plan.RefOutside || r.From == "" || p.svcs[r.To] == nil {
			continue
		}
		from := p.netOwner(r.From)
		if internalSet[r.To] && public[from] {
			peers[from] = true
		}
		if internalSet[from] && public[r.To] {
			peers[r.To] = true
		}
	}
	if inv := p.opts.Inventory; inv != nil {
		for _, e := range inv.Edges {
			from, to := p.netOwner(e.From), p.netOwner(e.To)
			if internalSet[to] && public[from] {
				peers[from] = true
			}
			if internalSet[from] && public[to] {
				peers[to] = true
			}
		}
	}
	members := append([]string(nil), internalOnly...)
	for _, n := range p.names {
		if peers[n] {
			members = append(members, n)
			s := p.svcs[n]
			s.networks = []string{"default", internalName}
			s.netReason += "; also on " + internalName + " to reach " + strings.Join(p.internalPeers(n, internalSet), ", ")
		}
	}
	sort.Strings(members)
	for _, n := range internalOnly {
		s := p.svcs[n]
		s.networks = []string{internalName}
		s.netReason = "publishes nothing and names nothing outside the stack: only on the internal network, with no route out"
	}
	p.plan.Networks = append(p.plan.Networks, plan.NetworkPlan{Name: internalName, Internal: true, Services: members,
		Reason: "services that only the stack uses: no outbound route, no published ports (internal: true)"})
}

func (p *planner) internalPeers(n string, internalSet map[string]bool) []string {
	var out []string
	for _, r := range p.plan.References {
		from := p.netOwner(r.From)
		if from == n && internalSet[r.To] {
			out = append(out, r.To)
		}
		if r.To == n && internalSet[from] {
			out = append(out, from)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// joinPeerNetworks puts a migrated service on the networks of the services
// that are not migrated and that it talks to (either way), so that names
// resolve between them: a bridge service on a network of its own keeps
// reaching a migrated database.
func (p *planner) joinPeerNetworks() {
	all := p.c.Project.AllServices()
	netsOf := func(name string) []string {
		s, ok := all[name]
		if !ok || len(s.Networks) == 0 {
			return []string{"default"}
		}
		var out []string
		for n := range s.Networks {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	for _, r := range p.plan.References {
		if r.Kind != plan.RefService || r.Action != "rewrite" {
			continue
		}
		from := p.netOwner(r.From)
		var m, other string
		switch {
		case p.migrated(r.To) && !p.migrated(from) && !p.onHostAfter(from):
			m, other = r.To, from
		case p.migrated(from) && !p.migrated(r.To) && !p.onHostAfter(r.To):
			m, other = from, r.To
		default:
			continue
		}
		s := p.svcs[m]
		have := s.networks
		if len(have) == 0 {
			have = []string{"default"}
		}
		added := false
		for _, n := range netsOf(other) {
			found := false
			for _, h := range have {
				found = found || h == n
			}
			if !found {
				have = append(have, n)
				added = true
			}
		}
		if added {
			s.networks = have
			s.netReason += "; joins " + strings.Join(netsOf(other), ", ") + " to reach " + other
		}
	}
}

// resolveOutside reports addresses in env files, the project's .env and
// bind-mounted files that the migration changes the meaning of. unhost does
// not edit those files: each is a manual step with its file and line.
func (p *planner) resolveOutside() {
	wd := p.opts.WorkDir
	if wd == "" {
		wd = "."
	}
	for _, r := range analysis.OutsideRefs(p.c, wd) {
		where := r.Pos.String()
		if r.Service == "" {
			// the project's .env: its variables reach services through
			// interpolation; report once, for the migrated services
			owners := p.owners("tcp", r.Port)
			if len(owners) != 1 || !p.migrated(owners[0].name) {
				continue
			}
			to := owners[0].name + ":" + strconv.Itoa(owners[0].target)
			p.plan.References = append(p.plan.References, plan.Reference{To: owners[0].name, Port: r.Port, Kind: plan.RefOutside,
				Where: where, Field: r.Kind, Before: r.Token, After: to, Action: "manual",
				Reason: "in the project's .env, outside the compose files: unhost does not edit it"})
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Where: where,
				What: fmt.Sprintf("where a migrated service takes %s from .env, change it to %s", r.Token, to),
				Hint: "services on the host network keep using " + r.Token})
			continue
		}
		for _, u := range []string{r.Service} {
			if !p.onHostBefore(u) {
				continue
			}
			from := p.netOwner(u)
			owners := p.owners("tcp", r.Port)
			var to, what string
			switch {
			case len(owners) == 1 && owners[0].name == from:
				if l := p.svcs[from].find("tcp", r.Port); l != nil && analysis.IsLoopback(r.Host) && analysis.IsLoopback(l.addr) && l.bind == nil && p.migrated(from) {
					p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: u, Where: where,
						What: fmt.Sprintf("%s listens on %s:%d only; %s (a %s) names %s: if that is its bind address, change it to 0.0.0.0:%d", from, l.addr, r.Port, r.Pos.File, r.Kind, r.Token, r.Port)})
				}
				continue
			case len(owners) == 1 && p.migrated(from) && !p.onHostAfter(owners[0].name):
				to = owners[0].name + ":" + strconv.Itoa(owners[0].target)
				what = fmt.Sprintf("change %s to %s", r.Token, to)
				if l := p.svcs[owners[0].name].find("tcp", r.Port); l != nil {
					l.usedBy[u] = true
				}
			case len(owners) == 1 && p.migrated(owners[0].name) && p.onHostAfter(from):
				if l := p.svcs[owners[0].name].find("tcp", r.Port); l != nil {
					l.usedBy[u] = true
					l.outside = true
					if l.outsideWhy == "" {
						l.outsideWhy = u + " stays on the host network and uses it (" + where + ")"
					}
				}
				continue
			case len(owners) == 1 && p.migrated(from):
				to = "host.docker.internal:" + strconv.Itoa(r.Port)
				what = fmt.Sprintf("change %s to %s (%s stays on the host network) and give %s extra_hosts: [\"host.docker.internal:host-gateway\"]", r.Token, to, owners[0].name, u)
			case len(owners) == 0 && p.migrated(from):
				to = "host.docker.internal:" + strconv.Itoa(r.Port)
				what = fmt.Sprintf("if %s is a service on the host, change it to %s and give %s extra_hosts: [\"host.docker.internal:host-gateway\"]", r.Token, to, u)
			case len(owners) > 1 && p.migrated(from):
				what = fmt.Sprintf("%s: several services listen on port %d: point it at the right one by service name", r.Token, r.Port)
			default:
				continue
			}
			p.plan.References = append(p.plan.References, plan.Reference{From: u, To: strings.Split(to, ":")[0], Port: r.Port, Kind: plan.RefOutside,
				Where: where, Field: r.Kind, Before: r.Token, After: to, Action: "manual",
				Reason: "in a file outside the compose files (" + r.Kind + "): unhost does not edit it"})
			p.plan.ManualSteps = append(p.plan.ManualSteps, plan.Step{Service: u, Where: where, What: what,
				Hint: "this " + r.Kind + " is outside the compose files, which is all unhost edits"})
		}
	}
}

// clusterKey reports whether a field names cluster members (seed hosts,
// peers), where a client must reach every replica.
func clusterKey(field string) bool {
	f := strings.ToUpper(field)
	for _, k := range []string{"SEED", "PEER", "CLUSTER", "DISCOVERY", "MEMBER", "NODES", "JOIN", "GOSSIP"} {
		if strings.Contains(f, k) {
			return true
		}
	}
	return false
}

// hasEvidence reports whether ev holds e, or another observation at the
// same place (one argument read both as a flag and as an address).
func hasEvidence(ev []analysis.Evidence, e analysis.Evidence) bool {
	for _, x := range ev {
		if x == e || e.Where != "" && x.Where == e.Where && x.Kind == e.Kind && lastWord(x.Detail) == lastWord(e.Detail) {
			return true
		}
	}
	return false
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// checkReach is the migration's promise, checked on every decision: no
// listener becomes reachable on more addresses than its bind allowed. A
// loopback listener is published on loopback only; one bound to a specific
// address on that address (or loopback); one bound everywhere anywhere.
func (p *planner) checkReach() error {
	for _, n := range p.names {
		s := p.svcs[n]
		if s.action != plan.ActionMigrate {
			continue
		}
		for _, l := range s.listeners {
			if l.decision != plan.DecisionPublish {
				continue
			}
			ip := l.publishIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			switch {
			case analysis.IsBindAll(l.addr):
			case analysis.IsLoopback(l.addr) && analysis.IsLoopback(ip):
			case !analysis.IsLoopback(l.addr) && (ip == l.addr || analysis.IsLoopback(ip)):
			default:
				return fmt.Errorf("internal error: %s port %d is bound to %s but would be published on %s", n, l.port, l.addr, ip)
			}
		}
	}
	return nil
}
