package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Ref is an address one service uses to reach another (or itself).
type Ref struct {
	From   string // service whose namespace the address is used in
	Host   string // as written: a service name, alias, localhost, ...
	Port   int
	Proto  string // tcp or udp
	Source string // where it was found: environment FOO, command, plan
}

func (r Ref) Addr() string { return joinHostPort(r.Host, r.Port) }

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// addrRE finds host:port pairs, alone or inside URLs and DSNs
// (postgres://u:p@db:5432/x, redis:6379, http://[::1]:8080/).
var addrRE = regexp.MustCompile(`(?i)(?:^|[\s/@=,;(\"'])(\[[0-9a-f:.]+\]|[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?):([0-9]{1,5})\b`)

// urlNoPortRE finds scheme://host with no port, for the scheme's default port.
var urlNoPortRE = regexp.MustCompile(`(?i)\b(https?|redis|amqp|postgres(?:ql)?|mysql|mongodb|nats)://(?:[^@/\s]*@)?([a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?)(?:[/?#\s"']|$)`)

var defaultPorts = map[string]int{"http": 80, "https": 443, "redis": 6379, "amqp": 5672, "postgres": 5432, "postgresql": 5432, "mysql": 3306, "mongodb": 27017, "nats": 4222}

// localHosts are names that mean "this network namespace".
var localHosts = map[string]bool{"localhost": true, "127.0.0.1": true, "[::1]": true, "::1": true}

// bindAll are wildcard listen addresses: "0.0.0.0:8080" in a command says
// where a server listens, not what a client connects to.
var bindAll = map[string]bool{"0.0.0.0": true, "::": true}

// HostGateway names lead to services on the host.
var hostGateway = map[string]bool{"host.docker.internal": true, "host-gateway": true, "gateway.docker.internal": true}

// scanRefs finds service-to-service addresses in each service's
// environment, command and entrypoint: hosts that are a service name, a
// network alias, a local name or the host gateway. Other hosts are outside
// the stack and are not checked.
func scanRefs(services map[string]types.ServiceConfig) []Ref {
	names := knownHosts(services)
	var refs []Ref
	seen := map[string]bool{}
	add := func(from, text, source string) {
		for _, m := range addrRE.FindAllStringSubmatch(text, -1) {
			host := strings.ToLower(m[1])
			port, err := strconv.Atoi(m[2])
			if err != nil || port < 1 || port > 65535 {
				continue
			}
			h := strings.Trim(host, "[]")
			if bindAll[h] {
				continue // a listen address, not a reference
			}
			if !names[host] && !localHosts[host] && !localHosts[h] && !hostGateway[host] {
				continue
			}
			if localHosts[host] || localHosts[h] {
				host = h
			}
			key := from + "\x00" + host + "\x00" + m[2]
			if seen[key] {
				continue
			}
			seen[key] = true
			refs = append(refs, Ref{From: from, Host: host, Port: port, Proto: "tcp", Source: source})
		}
		for _, m := range urlNoPortRE.FindAllStringSubmatch(text, -1) {
			host := strings.ToLower(m[2])
			if !names[host] && !localHosts[host] && !hostGateway[host] {
				continue
			}
			port := defaultPorts[strings.ToLower(m[1])]
			key := from + "\x00" + host + "\x00" + strconv.Itoa(port)
			if seen[key] {
				continue
			}
			seen[key] = true
			refs = append(refs, Ref{From: from, Host: host, Port: port, Proto: "tcp", Source: source})
		}
	}
	for name, s := range services {
		keys := make([]string, 0, len(s.Environment))
		for k := range s.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v := s.Environment[k]; v != nil {
				add(name, *v, "environment "+k)
			}
		}
		add(name, strings.Join(s.Command, " "), "command")
		add(name, strings.Join(s.Entrypoint, " "), "entrypoint")
	}
	sortRefs(refs)
	return refs
}

func sortRefs(refs []Ref) {
	sort.Slice(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Source < b.Source
	})
}

// knownHosts are the names by which services reach each other: service
// names, network aliases, hostnames and links aliases.
func knownHosts(services map[string]types.ServiceConfig) map[string]bool {
	names := map[string]bool{}
	for name, s := range services {
		names[strings.ToLower(name)] = true
		if s.Hostname != "" {
			names[strings.ToLower(s.Hostname)] = true
		}
		for _, n := range s.Networks {
			if n == nil {
				continue
			}
			for _, a := range n.Aliases {
				names[strings.ToLower(a)] = true
			}
		}
		for _, l := range s.Links {
			_, alias, ok := strings.Cut(l, ":")
			if ok {
				names[strings.ToLower(alias)] = true
			}
		}
	}
	return names
}

// Plan is the part of `unhost migrate --format json` output (plan.Plan,
// version 1) that verify uses. See docs/verify.md for the fields read.
type Plan struct {
	Edges    []PlanEdge
	Internal []PlanPort
}

// PlanEdge is a service reference the migration rewrote or kept.
type PlanEdge struct {
	From  string
	To    string
	Port  int
	Proto string
}

// PlanPort is a port the migration keeps stack-internal (not published).
type PlanPort struct {
	Service string
	Port    int
	Proto   string
}

// readPlan reads the fields verify needs from a migration plan, tolerating
// everything else: the plan format is owned by migrate. Read are
// references[] {from, to, port, kind} of kind "service" (an address of
// another service of the stack) or "self" (the service's own port), and
// services[].listeners[] {protocol, port, port_end, decision} with decision
// "internal".
func readPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var doc struct {
		References []struct {
			From string `json:"from"`
			To   string `json:"to"`
			Port any    `json:"port"`
			Kind string `json:"kind"`
		} `json:"references"`
		Services []struct {
			Name      string `json:"name"`
			Listeners []struct {
				Protocol string `json:"protocol"`
				Port     any    `json:"port"`
				PortEnd  any    `json:"port_end"`
				Decision string `json:"decision"`
			} `json:"listeners"`
		} `json:"services"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	p := &Plan{}
	for _, r := range doc.References {
		port, proto := planPort(r.Port, "")
		if r.From == "" || port == 0 {
			continue
		}
		switch r.Kind {
		case "service":
			if r.To == "" {
				continue
			}
			p.Edges = append(p.Edges, PlanEdge{From: r.From, To: r.To, Port: port, Proto: proto})
		case "self":
			p.Edges = append(p.Edges, PlanEdge{From: r.From, To: "localhost", Port: port, Proto: proto})
		}
	}
	for _, s := range doc.Services {
		for _, l := range s.Listeners {
			if l.Decision != "internal" || s.Name == "" {
				continue
			}
			port, proto := planPort(l.Port, strings.ToLower(l.Protocol))
			if port == 0 {
				continue
			}
			end, _ := planPort(l.PortEnd, proto)
			if end < port || end-port > 100 {
				end = port
			}
			for q := port; q <= end; q++ {
				p.Internal = append(p.Internal, PlanPort{Service: s.Name, Port: q, Proto: proto})
			}
		}
	}
	return p, nil
}

// planPort accepts 5432, "5432" and "5432/udp".
func planPort(v any, proto string) (int, string) {
	if proto == "" {
		proto = "tcp"
	}
	var s string
	switch x := v.(type) {
	case float64:
		s = strconv.Itoa(int(x))
	case string:
		s = x
	default:
		return 0, proto
	}
	num, pr, ok := strings.Cut(s, "/")
	if ok && pr != "" {
		proto = strings.ToLower(pr)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return 0, proto
	}
	return n, proto
}
