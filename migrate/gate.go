package migrate

import (
	"fmt"
	"net/netip"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// This file decides whether a host-network service may move at all:
// "evidence or nothing". A service moves only when it does not need the
// host network (hostNeeds) and when what it listens on is known (from its
// configuration, its image, an inventory, the documented image table, or
// --publish). Otherwise it stays on the host network with a finding that
// says what evidence would let it move.

// Findings attached to a service kept on the host network (plan.ServicePlan
// Finding).
const (
	FindingListenersUnknown = "listeners-unknown"
	FindingNeedsHost        = "needs-host-network"
)

// need is one reason a service needs the host network.
type need struct {
	why string
	ev  []analysis.Evidence
}

// hostStatePaths are host paths whose network-related content a container
// reads through its own network namespace: /proc/net, /sys/class/net and
// the interfaces a metrics agent reports are those of the namespace the
// reader runs in, so off the host network it measures the container.
var hostStatePaths = []string{"/", "/proc", "/sys", "/sys/class/net", "/proc/net"}

// hostSocketPaths are host sockets of daemons that work on the host's
// network stack (D-Bus, through which BlueZ and Avahi are driven; the
// Avahi daemon itself). Bluetooth sockets exist only in the host's
// initial network namespace, and mDNS answers carry the host's addresses.
var hostSocketPaths = []string{"/var/run/dbus", "/run/dbus", "/var/run/avahi-daemon", "/run/avahi-daemon"}

// hostNeeds says why a service needs the host network, from what the
// analysis does not state as a host need yet (analysis.ServiceFacts.HostNeeds
// gives privileged, pid: host, network capabilities, /dev/net/tun, the
// image table's images and programs, discovery ports and port ranges):
// ipc: host, host interface names and LAN discovery in its configuration,
// and host paths through which it reads the host's network state or drives
// host daemons.
func hostNeeds(s types.ServiceConfig) []need {
	var out []need
	if s.Ipc == "host" {
		out = append(out, need{"it shares the host's IPC namespace (ipc: host): shared-memory transports (DDS/ROS 2 among them) pair it with processes that see the same host network identity",
			[]analysis.Evidence{{Kind: "ipc", Detail: "ipc: host"}}})
	}
	out = append(out, configNeeds(s)...)
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind || v.Source == "" {
			continue
		}
		src := path.Clean(v.Source)
		for _, h := range hostStatePaths {
			if src == h {
				out = append(out, need{fmt.Sprintf("it mounts the host's %s: what it reads there about network interfaces and sockets follows its own network namespace, the host's only on the host network", src),
					[]analysis.Evidence{{Kind: "volumes", Detail: "volume " + v.Source + ":" + v.Target}}})
			}
		}
		for _, h := range hostSocketPaths {
			if src == h || strings.HasPrefix(src, h+"/") {
				out = append(out, need{fmt.Sprintf("it mounts %s: it drives host daemons (D-Bus: Bluetooth, Avahi/mDNS) whose sockets and announcements belong to the host's network", src),
					[]analysis.Evidence{{Kind: "volumes", Detail: "volume " + v.Source + ":" + v.Target}}})
			}
		}
	}
	return out
}

// gateInput is what the gate decides on, for one host-network service.
type gateInput struct {
	Name string
	// Needs are reasons the service needs the host network (hostNeeds and
	// the planner's own: discovery ports, image table, big ranges).
	Needs []need
	// Listeners is how many listeners are known (configuration, image,
	// inventory, documented image table), not counting --publish.
	Listeners int
	// Published are the --publish ports named for it (or its followers).
	Published []int
	// Forced is --force SERVICE.
	Forced bool
	// Weak are ports known only from the image's documented defaults while
	// ConfigMounts (configuration files mounted into the container) may
	// move them: they do not count as known.
	Weak         []string
	ConfigMounts []string
	// MissingEnv are env files of the service that are not there, when
	// its listeners are known only from weak evidence (a healthcheck, the
	// image's documented default): the environment may set the ports it
	// really serves, so none counts as known.
	MissingEnv []string
	// Observed is true when an inventory watched the service: then what it
	// listens on is known, even when that is nothing (a pure client).
	Observed bool
}

// gateResult is the gate's verdict.
type gateResult struct {
	Keep    bool
	Finding string // FindingListenersUnknown or FindingNeedsHost when kept
	Reason  string
	Ev      []analysis.Evidence
	// Forced is set when --force moved it although it needs the host.
	Forced string
	// Usage is a usage error: --force without evidence of a listener.
	Usage string
}

// gate decides whether a host-network service may move. A service that
// needs the host network stays unless forced; a service whose listeners
// are unknown stays unless --publish names its ports.
func gate(in gateInput) gateResult {
	known := in.Observed || in.Listeners > 0 && len(in.MissingEnv) == 0 || len(in.Published) > 0
	if in.Forced && !known {
		return gateResult{Usage: fmt.Sprintf("--force %s: no listener of %s is known, so moving it would publish nothing: add --publish %s:PORT for each port it serves (or run `unhost detect` on the host and pass --inventory)", in.Name, in.Name, in.Name)}
	}
	if len(in.Needs) > 0 {
		var why []string
		var ev []analysis.Evidence
		for _, n := range in.Needs {
			why = append(why, n.why)
			ev = append(ev, n.ev...)
		}
		if in.Forced {
			return gateResult{Forced: strings.Join(why, "; ")}
		}
		return gateResult{Keep: true, Finding: FindingNeedsHost, Reason: strings.Join(why, "; ") +
			fmt.Sprintf(" (to move it anyway: --force %s with --publish %s:PORT for the ports it serves)", in.Name, in.Name), Ev: ev}
	}
	if !known {
		why := listenersUnknown(in.Name)
		if len(in.MissingEnv) > 0 {
			why = fmt.Sprintf("listeners unknown: its env file(s) %s are not there, and may set the ports it serves (%d port(s) known otherwise). ", strings.Join(in.MissingEnv, ", "), in.Listeners) +
				strings.TrimPrefix(why, "listeners unknown: ")
		} else if len(in.Weak) > 0 {
			why = fmt.Sprintf("listeners unknown: its image's documented port(s) %s may be moved by the configuration mounted at %s. ", strings.Join(in.Weak, ", "), strings.Join(in.ConfigMounts, ", ")) +
				strings.TrimPrefix(why, "listeners unknown: ")
		}
		return gateResult{Keep: true, Finding: FindingListenersUnknown, Reason: why}
	}
	return gateResult{}
}

// listenersUnknown is the finding for a service kept because nothing says
// what it listens on, with the ways to move it.
func listenersUnknown(name string) string {
	return fmt.Sprintf("listeners unknown: neither its configuration, its image metadata, nor an inventory says which ports it serves, so moving it could cut every client off. "+
		"To move it: run `unhost detect` on the host and pass --inventory (or commit it as .unhost/inventory.json next to the compose files), "+
		"or name its ports with --publish %s:PORT (add --force %s if it seems to need the host network)", name, name)
}

// gateService applies the gate to one host-network service of the plan
// (hook in planner.decideServices). It returns false when the service is
// left to the planner's usual decision (it migrates).
func (p *planner) gateService(s *svc) bool {
	if v := networkModeVariable(p.c.ServiceNodes(s.name)); v != nil {
		// the host network comes through a variable: unhost cannot edit
		// what the variable will say (issue 10, item 13)
		s.action, s.finding = plan.ActionKeepHost, FindingNeedsHost
		s.reason = fmt.Sprintf("network_mode is %s: host networking is chosen through %s, which unhost cannot rewrite", v.text, v.name)
		p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: s.name, Where: v.where,
			What: fmt.Sprintf("%s takes network_mode from the variable %s (%s), which chooses the host network", s.name, v.name, v.text),
			Hint: fmt.Sprintf("write network_mode: host in the file to migrate it (or set %s to another mode where it is set)", v.name)})
		return true
	}
	if hb := hostnameBinds(s.listeners); len(hb) > 0 && !p.opts.Force[s.name] {
		// item 7: a bind to a host name the host resolves (its /etc/hosts)
		s.action, s.finding = plan.ActionKeepHost, FindingNeedsHost
		s.reason = "it binds " + strings.Join(hb, ", ") + ": a host name that only the host resolves to one of its addresses, which a bridge network does not have"
		p.plan.Blockers = append(p.plan.Blockers, plan.Step{Service: s.name,
			What: fmt.Sprintf("%s binds %s: on a bridge network that name does not resolve to an address of the container, so the listener would fail or vanish", s.name, strings.Join(hb, ", ")),
			Hint: "make it bind 0.0.0.0 (or its container's own name) and advertise the host name separately; then run migrate again"})
		return true
	}
	in := gateInput{Name: s.name, Forced: p.opts.Force[s.name], Observed: p.observed(s.name)}
	cfgs := configMounts(p.all[s.name])
	for _, l := range s.listeners {
		if len(cfgs) > 0 && onlyImageDefault(l.evidence) {
			in.Weak = append(in.Weak, fmt.Sprintf("%d/%s", l.port, l.proto))
			continue
		}
		in.Listeners++
	}
	in.ConfigMounts = cfgs
	if !p.observed(s.name) && !anyStrong(s.listeners) {
		in.MissingEnv = missingEnvFiles(p.all[s.name])
	}
	if why, ev := p.needsHost(s); why != "" {
		in.Needs = append(in.Needs, need{why, ev})
	}
	// the analysis's host needs (the image table with its sources, and the
	// configuration), and the configuration's signs it does not state yet
	in.Needs = append(in.Needs, p.configHostNeeds(s.name, len(in.Needs) > 0)...)
	for _, m := range p.followersOf(s.name) {
		// a follower's needs are its owner's: they share one namespace
		for _, nd := range p.configHostNeeds(m, true) {
			in.Needs = append(in.Needs, need{m + " (which shares its network) " + strings.TrimPrefix(nd.why, "it "), nd.ev})
		}
	}
	for _, pr := range p.opts.Publish {
		if p.netOwner(pr.Service) == s.name {
			in.Published = append(in.Published, pr.Port)
		}
	}
	g := gate(in)
	switch {
	case g.Usage != "":
		if p.usageErr == nil {
			p.usageErr = &UsageError{g.Usage}
		}
		s.action, s.reason, s.finding = plan.ActionKeepHost, g.Usage, FindingListenersUnknown
	case g.Keep:
		s.action, s.reason, s.finding = plan.ActionKeepHost, g.Reason, g.Finding
		s.evidence = append(s.evidence, g.Ev...)
	case g.Forced != "":
		s.action = plan.ActionMigrate
		s.reason = "migrated with --force although " + g.Forced
		p.warn(fmt.Sprintf("%s: migrated with --force although %s", s.name, g.Forced))
	default:
		return false
	}
	return true
}

// configHostNeeds gathers why service name needs the host network from
// its facts and configuration. Discovery ports and a listener's big range
// are the listeners' (needsHost asks them of observed listeners too), so a
// range is said here only when saidByListeners is false.
func (p *planner) configHostNeeds(name string, saidByListeners bool) []need {
	var out []need
	if s := p.svcs[name]; s != nil {
		for _, hn := range s.facts.HostNeeds {
			switch hn.Kind {
			case "discovery-port":
				continue // needsHost, from the listeners
			case "port-range":
				if saidByListeners {
					continue
				}
			}
			out = append(out, need{hn.Reason, []analysis.Evidence{hn.Evidence}})
		}
	}
	if cfg, ok := p.all[name]; ok {
		out = append(out, hostNeeds(cfg)...)
	}
	return out
}

// followersOf returns the services that follow name (network_mode:
// service:NAME), in service order; the index is built once.
func (p *planner) followersOf(name string) []string {
	if p.followers == nil {
		p.followers = map[string][]string{}
		for _, m := range p.names {
			if f := p.svcs[m].follows; f != "" {
				p.followers[f] = append(p.followers[f], m)
			}
		}
	}
	return p.followers[name]
}

// ifaceRe matches the names Linux gives network interfaces (predictable
// names, classic ethN/wlanN, bridges, bonds, tunnels, VLANs).
var ifaceRe = regexp.MustCompile(`^(eth\d+|en[opsx][0-9a-z]+|eno\d+|wlan\d+|wl[opsx][0-9a-z]+|bond\d+|br-?[0-9a-z]+|wg\d+|tun\d+|tap\d+|vlan\d+|[a-z]+\d+\.\d+)$`)

// discoveryWords in a port's variable name say the port serves LAN
// discovery (broadcast or multicast), which only the host network carries.
var discoveryWords = []string{"DISCOVERY", "MULTICAST", "BROADCAST", "MDNS", "SSDP"}

// ddsKeys are environment variables of DDS middleware (ROS 2): DDS finds
// its peers by UDP multicast on the interfaces it runs on
// (https://docs.ros.org/en/rolling/Concepts/Intermediate/About-Domain-ID.html).
var ddsKeys = []string{"ROS_DOMAIN_ID", "RMW_IMPLEMENTATION", "CYCLONEDDS_URI", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE", "ROS_DISCOVERY_SERVER", "ROS_LOCALHOST_ONLY", "ROS_AUTOMATIC_DISCOVERY_RANGE"}

// configNeeds reads the service's environment and command for signs of
// host-network work: host interface names, LAN discovery ports, DDS, and
// ports chosen at run time from a large range (media servers' RTP/ICE).
func configNeeds(s types.ServiceConfig) []need {
	var out []need
	keys := make([]string, 0, len(s.Environment))
	for k := range s.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	val := func(k string) string {
		if v := s.Environment[k]; v != nil {
			return strings.TrimSpace(*v)
		}
		return ""
	}
	isPort := func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && n > 0 && n < 65536
	}
	for _, k := range keys {
		uk, v := strings.ToUpper(k), val(k)
		if strings.Contains(uk, "IFACE") || strings.Contains(uk, "INTERFACE") {
			var names []string
			for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
				if ifaceRe.MatchString(f) {
					names = append(names, f)
				}
			}
			if len(names) > 0 {
				out = append(out, need{fmt.Sprintf("%s names the host's network interfaces (%s), which exist only on the host network", k, strings.Join(names, ", ")),
					[]analysis.Evidence{{Kind: "environment", Detail: k + "=" + v}}})
			}
		}
		for _, w := range discoveryWords {
			if strings.Contains(uk, w) && isPort(v) {
				out = append(out, need{fmt.Sprintf("%s=%s is a LAN discovery port: broadcast and multicast discovery only work on the host network", k, v),
					[]analysis.Evidence{{Kind: "environment", Detail: k + "=" + v}}})
				break
			}
		}
		for _, d := range ddsKeys {
			if uk == d {
				out = append(out, need{k + " configures DDS (ROS 2), which finds its peers by UDP multicast on the host's interfaces",
					[]analysis.Evidence{{Kind: "environment", Detail: k}}})
			}
		}
	}
	if lo, hi, where := portRange(s, keys, val); hi-lo+1 > 100 {
		out = append(out, need{fmt.Sprintf("it picks ports at run time from %d-%d (%s): %d ports that Docker would publish one by one, with one proxy and firewall rule each", lo, hi, where, hi-lo+1),
			[]analysis.Evidence{{Kind: "environment", Detail: where}}})
	}
	return out
}

// portRange finds a run-time port range: MIN/MAX pairs of variables
// (KMS_MIN_PORT, KMS_MAX_PORT; RTP_PORT_MIN, RTP_PORT_MAX) or of
// command-line flags (--min-port, --max-port).
func portRange(s types.ServiceConfig, keys []string, val func(string) string) (lo, hi int, where string) {
	for _, k := range keys {
		uk := strings.ToUpper(k)
		if !strings.Contains(uk, "MIN") || !strings.Contains(uk, "PORT") {
			continue
		}
		mk := strings.Replace(uk, "MIN", "MAX", 1)
		for _, k2 := range keys {
			if strings.ToUpper(k2) != mk {
				continue
			}
			a, err1 := strconv.Atoi(val(k))
			b, err2 := strconv.Atoi(val(k2))
			if err1 == nil && err2 == nil && b >= a && a > 0 && b < 65536 {
				return a, b, k + ", " + k2
			}
		}
	}
	args := append(append([]string{}, s.Entrypoint...), s.Command...)
	flag := func(name string) (int, bool) {
		for i, a := range args {
			a = strings.TrimLeft(a, "-")
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				n, err := strconv.Atoi(v)
				return n, err == nil
			}
			if a == name && i+1 < len(args) {
				n, err := strconv.Atoi(args[i+1])
				return n, err == nil
			}
		}
		return 0, false
	}
	for _, pair := range [][2]string{{"min-port", "max-port"}, {"rtp-min-port", "rtp-max-port"}, {"port-min", "port-max"}} {
		a, ok1 := flag(pair[0])
		b, ok2 := flag(pair[1])
		if ok1 && ok2 && b >= a && a > 0 && b < 65536 {
			return a, b, "--" + pair[0] + ", --" + pair[1]
		}
	}
	return 0, -1, ""
}

// configExts are the extensions of configuration files.
var configExts = []string{".ini", ".conf", ".cfg", ".cnf", ".toml", ".yaml", ".yml", ".json", ".properties", ".xml", ".env"}

// configMounts returns the container paths of configuration files bind
// mounted into the service: they may set ports the image documents
// otherwise.
func configMounts(s types.ServiceConfig) []string {
	var out []string
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		for _, e := range configExts {
			if strings.HasSuffix(strings.ToLower(v.Target), e) {
				out = append(out, v.Target)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// onlyImageDefault reports whether a listener is known only from the
// documented image table.
func onlyImageDefault(ev []analysis.Evidence) bool {
	for _, e := range ev {
		if e.Kind != "image-default" {
			return false
		}
	}
	return len(ev) > 0
}

// modeVariable is a network_mode written with a variable.
type modeVariable struct {
	name, text, where string
}

// modeVarRe finds the variable of "${NETMODE:-host}" or "$NETMODE".
var modeVarRe = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// networkModeVariable returns the variable a service's network_mode is
// written with, or nil when it is literal.
func networkModeVariable(nodes []load.NodeRef) *modeVariable {
	for i := len(nodes) - 1; i >= 0; i-- {
		v := load.MapValue(nodes[i].Node, "network_mode")
		if v == nil {
			continue
		}
		m := modeVarRe.FindStringSubmatch(v.Value)
		if m == nil {
			return nil // the last file that sets it says it literally
		}
		return &modeVariable{name: m[1], text: v.Value, where: nodes[i].File.PosOf(v).String()}
	}
	return nil
}

// missingEnvFiles returns the env files of a service that are not there:
// the variables they set (ports among them) are unknown.
func missingEnvFiles(s types.ServiceConfig) []string {
	var out []string
	for _, f := range s.EnvFiles {
		if _, err := os.Stat(f.Path); err != nil {
			out = append(out, f.Path)
		}
	}
	return out
}

// weakKinds are evidence that a port is served without saying it is all
// of them: a healthcheck's probe, an image's documented default.
var weakKinds = map[string]bool{"healthcheck": true, "image-default": true}

// anyStrong reports whether some listener is known from its own
// declaration (ports:, expose:, a bind in the command or environment, the
// image's metadata, an inventory, a flag).
func anyStrong(ls []*listener) bool {
	for _, l := range ls {
		for _, e := range l.evidence {
			if !weakKinds[e.Kind] && !strings.Contains(e.Detail, " advertises ") {
				return true
			}
		}
	}
	return false
}

// hostnameBinds returns the listeners bound to a host name, as NAME:PORT:
// not an IP address, not loopback, not every interface. Runtime
// listeners carry addresses, never names.
func hostnameBinds(ls []*listener) []string {
	var out []string
	for _, l := range ls {
		a := strings.Trim(l.addr, "[]")
		if l.runtime || l.assumed || a == "" || analysis.IsBindAll(a) || analysis.IsLoopback(a) {
			continue
		}
		if _, err := netip.ParseAddr(a); err == nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s:%d", a, l.port))
	}
	return out
}
