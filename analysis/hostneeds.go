package analysis

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// HostNeed is one sign, in a service's configuration or image, that it
// needs the host network. The planner decides what to do with it (keep the
// service, or move it with --force); the analysis only states it with its
// evidence.
type HostNeed struct {
	// Kind: image, program, privileged, pid, cap_add, devices,
	// discovery-port, port-range.
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Source is the public documentation that states it, for image and
	// program needs.
	Source string `json:"source,omitempty"`
	// Quote is the text at Evidence.Where that shows it ("true", "host",
	// "NET_ADMIN", the image reference); "" when there is no position.
	Quote    string   `json:"quote,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// VariableChoice is a setting whose value a variable chooses:
// network_mode: ${NETMODE:-host}. The file alone does not say what runs.
type VariableChoice struct {
	Variable string   `json:"variable"`
	Text     string   `json:"text"`  // as written
	Value    string   `json:"value"` // as loaded with this environment
	Evidence Evidence `json:"evidence"`
}

// DiscoveryPort says why a listener on proto ports lo to hi needs the host
// network, when one of them serves LAN discovery; "" otherwise. migrate
// asks it of listeners an inventory observed, which the static facts do
// not hold.
func DiscoveryPort(proto string, lo, hi int) string {
	if hi < lo {
		hi = lo
	}
	for _, d := range discoveryPorts {
		if proto == d.proto && lo <= d.hi && hi >= d.lo {
			return fmt.Sprintf("it listens on %d/%s (%s): multicast or broadcast discovery only works on the host network", lo, proto, d.what)
		}
	}
	return ""
}

// discoveryPorts are the ports of LAN discovery protocols, which use
// multicast or broadcast and so work only on the host network.
var discoveryPorts = []struct {
	lo, hi int
	proto  string
	what   string
}{
	{5353, 5353, "udp", "mDNS (RFC 6762)"},
	{1900, 1900, "udp", "SSDP/DLNA (UPnP Device Architecture)"},
	{67, 68, "udp", "DHCP (RFC 2131)"},
	{137, 138, "udp", "NetBIOS (RFC 1002)"},
	{3702, 3702, "udp", "WS-Discovery"},
	{7400, 7400, "udp", "DDS discovery (ROS 2, OMG DDSI-RTPS)"},
}

// largeRange is the number of ports above which publishing a listener's
// range is not practical: Docker runs a proxy and rules per port.
const largeRange = 100

// netCaps are the capabilities that change or read the host's network.
var netCaps = map[string]bool{"NET_ADMIN": true, "NET_RAW": true, "NET_BROADCAST": true, "ALL": true}

// hostNeeds lists every host-network need of a service that its facts and
// nodes show, in a stable order.
func hostNeeds(sf *ServiceFacts, nodes []load.NodeRef) []HostNeed {
	var out []HostNeed
	where := func(key string) (string, string) {
		f, n := lastValue(nodes, key)
		if n == nil {
			return "", ""
		}
		return f.PosOf(n).String(), n.Value
	}
	if why, src, ok := ImageHostNeed(sf.Image); ok {
		w, q := where("image")
		out = append(out, HostNeed{Kind: "image", Reason: why, Source: src, Quote: q,
			Evidence: Evidence{Kind: "image", Where: w, Detail: fmt.Sprintf("image %s: %s (%s)", sf.Image, why, src)}})
	}
	seen := map[*ImageInfo]bool{LookupImage(sf.Image): true}
	for _, p := range sf.programs {
		if p.info.HostNetwork == "" || seen[p.info] {
			continue // one need per program: its first sign is enough evidence
		}
		seen[p.info] = true
		out = append(out, HostNeed{Kind: "program", Reason: p.info.HostNetwork, Source: p.info.Source(), Quote: p.word,
			Evidence: Evidence{Kind: p.field, Where: p.where, Detail: fmt.Sprintf("%s %s %s (%s): %s (%s)", p.field, p.how, p.word, p.info.Name, p.info.HostNetwork, p.info.Source())}})
	}
	if sf.Privileged {
		w, q := where("privileged")
		out = append(out, HostNeed{Kind: "privileged", Quote: q,
			Reason:   "it is privileged: it has every capability, NET_ADMIN and NET_RAW included, and may configure the host's network",
			Evidence: Evidence{Kind: "privileged", Where: w, Detail: "privileged: true"}})
	}
	if sf.Pid == "host" {
		w, q := where("pid")
		out = append(out, HostNeed{Kind: "pid", Quote: q,
			Reason:   "it shares the host's process namespace (pid: host): it works on the host's own processes and sockets",
			Evidence: Evidence{Kind: "pid", Where: w, Detail: "pid: host"}})
	}
	for _, c := range capNodes(nodes) {
		name := strings.TrimPrefix(strings.ToUpper(c.node.Value), "CAP_")
		if !netCaps[name] {
			continue
		}
		out = append(out, HostNeed{Kind: "cap_add", Quote: c.node.Value,
			Reason:   "it adds " + name + ": packet capture, firewall or routing work on the host's interfaces",
			Evidence: Evidence{Kind: "cap_add", Where: c.file.PosOf(c.node).String(), Detail: "cap_add: " + c.node.Value}})
	}
	for _, d := range sf.Devices {
		if d != "/dev/net/tun" {
			continue
		}
		w, q := deviceWhere(nodes, d)
		out = append(out, HostNeed{Kind: "devices", Quote: q,
			Reason:   "it uses /dev/net/tun: a VPN or tunnel that routes through the host's network stack",
			Evidence: Evidence{Kind: "devices", Where: w, Detail: "devices: " + d}})
	}
	out = append(out, sf.rangeNeeds...)
	for _, l := range sf.Listeners {
		end := l.PortEnd
		if end < l.Port {
			end = l.Port
		}
		if why := DiscoveryPort(l.Protocol, l.Port, end); why != "" {
			out = append(out, HostNeed{Kind: "discovery-port", Quote: portQuote(l), Reason: why, Evidence: l.Evidence})
		}
		if n := end - l.Port + 1; n > largeRange {
			out = append(out, HostNeed{Kind: "port-range", Quote: portQuote(l),
				Reason:   fmt.Sprintf("it listens on a range of %d ports (%d-%d/%s): Docker runs one proxy process and firewall rules per published port", n, l.Port, end, l.Protocol),
				Evidence: l.Evidence})
		}
	}
	return out
}

// minPortRe and maxPortRe find the two ends of a port range a program
// allocates from, named by a variable or a flag: KMS_MIN_PORT/KMS_MAX_PORT,
// RTP_PORT_MIN/RTP_PORT_MAX, --min-port/--max-port (coturn). Group 1 is the
// prefix that pairs them.
var (
	minPortRe = regexp.MustCompile(`(?i)^(.*?)[-_.]?(?:min[-_.]?port|port[-_.]?min)$`)
	maxPortRe = regexp.MustCompile(`(?i)^(.*?)[-_.]?(?:max[-_.]?port|port[-_.]?max)$`)
)

// rangeName is a quick test before minPortRe and maxPortRe.
func rangeName(name string) bool {
	l := strings.ToLower(name)
	return strings.Contains(l, "port") && (strings.Contains(l, "min") || strings.Contains(l, "max"))
}

// rangeEnd is one end of a port range as written.
type rangeEnd struct {
	port  int
	where string
	quote string // the variable or flag as written
}

// portRangeNeeds finds port ranges given by a pair of MIN/MAX variables or
// flags (media servers and TURN relays allocate their RTP or relay ports
// from them). A range wider than largeRange is a host need: publishing it
// costs a proxy and firewall rules per port. Values are read as loaded
// (interpolated) when the model has them.
func portRangeNeeds(keys []string, env map[string]scalarValue, values []scalarValue, model types.ServiceConfig, split func(string) []string) []HostNeed {
	mins, maxs := map[string]rangeEnd{}, map[string]rangeEnd{}
	note := func(name, val, where, quote string) {
		if !rangeName(name) {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n <= 0 || n > 65535 {
			return
		}
		if m := minPortRe.FindStringSubmatch(name); m != nil {
			mins[strings.ToLower(m[1])] = rangeEnd{n, where, quote}
		} else if m := maxPortRe.FindStringSubmatch(name); m != nil {
			maxs[strings.ToLower(m[1])] = rangeEnd{n, where, quote}
		}
	}
	for _, k := range keys {
		if !rangeName(k) {
			continue
		}
		v := env[k]
		val := v.value
		if mv, ok := model.Environment[k]; ok && mv != nil {
			val = *mv
		}
		where := v.where()
		if v.keyNode != nil {
			where = v.file.PosOf(v.keyNode).String()
		}
		note(k, val, where, k)
	}
	loaded := map[string]string{} // flag -> value, from the loaded argv
	for _, argv := range [][]string{model.Entrypoint, model.Command} {
		for i, a := range argv {
			name, val, ok := strings.Cut(a, "=")
			if !ok && i+1 < len(argv) {
				val = argv[i+1]
			}
			if strings.HasPrefix(name, "-") {
				loaded[name] = val
			}
		}
	}
	for _, v := range values {
		if v.field != "command" && v.field != "entrypoint" {
			continue
		}
		words := split(v.value)
		for i, w := range words {
			name, val, ok := strings.Cut(w, "=")
			if !strings.HasPrefix(name, "-") {
				continue
			}
			if !ok && i+1 < len(words) {
				val = words[i+1]
			}
			if lv, ok := loaded[name]; ok {
				val = lv
			}
			note(strings.TrimLeft(name, "-"), val, v.where(), name)
		}
	}
	var out []HostNeed
	for prefix, lo := range mins {
		hi, ok := maxs[prefix]
		if !ok || hi.port < lo.port {
			continue
		}
		if n := hi.port - lo.port + 1; n > largeRange {
			out = append(out, HostNeed{Kind: "port-range", Quote: lo.quote,
				Reason:   fmt.Sprintf("it allocates ports from a range of %d (%s=%d to %s=%d): Docker runs one proxy process and firewall rules per published port", n, lo.quote, lo.port, hi.quote, hi.port),
				Evidence: Evidence{Kind: "port-range", Where: lo.where, Detail: fmt.Sprintf("%s=%d and %s=%d", lo.quote, lo.port, hi.quote, hi.port)}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reason < out[j].Reason })
	return out
}

// portQuote is the text a listener's evidence holds: its port, when the
// evidence has a position.
func portQuote(l StaticListener) string {
	if l.Evidence.Where == "" {
		return ""
	}
	return strconv.Itoa(l.Port)
}

// lastValue returns the value of key in the service's mapping of highest
// precedence that sets it.
func lastValue(nodes []load.NodeRef, key string) (*load.SourceFile, *yaml.Node) {
	for i := len(nodes) - 1; i >= 0; i-- {
		if v := load.MapValue(nodes[i].Node, key); v != nil {
			return nodes[i].File, v
		}
	}
	return nil, nil
}

type fileNode struct {
	file *load.SourceFile
	node *yaml.Node
}

// capNodes returns the cap_add items as written, in every node (cap_add
// lists are merged by compose).
func capNodes(nodes []load.NodeRef) []fileNode {
	var out []fileNode
	seen := map[string]bool{}
	for i := len(nodes) - 1; i >= 0; i-- {
		seq := load.MapValue(nodes[i].Node, "cap_add")
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range seq.Content {
			k := strings.TrimPrefix(strings.ToUpper(item.Value), "CAP_")
			if item.Kind == yaml.ScalarNode && !seen[k] {
				seen[k] = true
				out = append(out, fileNode{nodes[i].File, item})
			}
		}
	}
	return out
}

// deviceWhere finds where a device is written (short "src:dst" or long
// syntax).
func deviceWhere(nodes []load.NodeRef, dev string) (string, string) {
	for i := len(nodes) - 1; i >= 0; i-- {
		seq := load.MapValue(nodes[i].Node, "devices")
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range seq.Content {
			switch {
			case item.Kind == yaml.ScalarNode && (item.Value == dev || strings.HasPrefix(item.Value, dev+":")):
				return nodes[i].File.PosOf(item).String(), dev
			case item.Kind == yaml.MappingNode:
				if s := load.MapValue(item, "source"); s != nil && s.Value == dev {
					return nodes[i].File.PosOf(s).String(), dev
				}
			}
		}
	}
	return "", ""
}

// networkModeChoice returns the variable that chooses network_mode, when
// the file writes it through one (network_mode: ${NETMODE:-host}).
func networkModeChoice(nodes []load.NodeRef, loaded string) *VariableChoice {
	f, n := lastValue(nodes, "network_mode")
	if n == nil || n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") {
		return nil
	}
	v := varRe.FindString(n.Value)
	if v == "" {
		return nil
	}
	name := strings.TrimPrefix(strings.TrimPrefix(v, "${"), "$")
	if i := strings.IndexAny(name, ":-?+}"); i >= 0 {
		name = name[:i]
	}
	return &VariableChoice{Variable: name, Text: n.Value, Value: loaded,
		Evidence: Evidence{Kind: "network_mode", Where: f.PosOf(n).String(),
			Detail: fmt.Sprintf("network_mode: %s (variable %s chooses it; %q with this environment)", n.Value, name, loaded)}}
}
