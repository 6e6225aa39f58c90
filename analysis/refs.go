package analysis

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// scalarValue is a scalar in a service's configuration, with its context.
type scalarValue struct {
	file  *load.SourceFile
	node  *yaml.Node
	field string // environment.KEY, command, entrypoint, healthcheck.test
	key   string // environment key, "" otherwise
	value string // for "K=V" list items: V
	// prevFlag is the command-line flag before this argument, if any.
	prevFlag string
}

// scanConfig finds listeners and address references in a service's
// environment, command, entrypoint and healthcheck.
func scanConfig(c *load.Compose, sf *ServiceFacts, nodes []load.NodeRef) {
	var values []scalarValue
	env := map[string]scalarValue{}
	for _, nr := range nodes {
		m := nr.Node
		if e := load.MapValue(m, "environment"); e != nil {
			switch e.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(e.Content); i += 2 {
					k, v := e.Content[i], e.Content[i+1]
					if v.Kind != yaml.ScalarNode {
						continue
					}
					env[k.Value] = scalarValue{file: nr.File, node: v, field: "environment." + k.Value, key: k.Value, value: v.Value}
				}
			case yaml.SequenceNode:
				for _, item := range e.Content {
					if item.Kind != yaml.ScalarNode {
						continue
					}
					k, v, _ := strings.Cut(item.Value, "=")
					env[k] = scalarValue{file: nr.File, node: item, field: "environment." + k, key: k, value: v}
				}
			}
		}
		for _, field := range []string{"command", "entrypoint"} {
			if v := load.MapValue(m, field); v != nil {
				values = append(values, commandValues(nr.File, v, field)...)
			}
		}
		if hc := load.MapValue(m, "healthcheck"); hc != nil {
			if t := load.MapValue(hc, "test"); t != nil {
				values = append(values, commandValues(nr.File, t, "healthcheck.test")...)
			}
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		values = append(values, env[k])
	}
	for _, v := range values {
		scanValue(sf, v, env)
	}
	// command flags: --port N / --bind ADDR pairs
	scanFlags(sf, values)
	sort.Strings(sf.External)
	sf.External = slices.Compact(sf.External)
}

func commandValues(f *load.SourceFile, v *yaml.Node, field string) []scalarValue {
	var out []scalarValue
	switch v.Kind {
	case yaml.ScalarNode:
		out = append(out, scalarValue{file: f, node: v, field: field, value: v.Value})
	case yaml.SequenceNode:
		prev := ""
		for _, item := range v.Content {
			if item.Kind == yaml.ScalarNode {
				out = append(out, scalarValue{file: f, node: item, field: field, value: item.Value, prevFlag: prev})
				prev = ""
				if strings.HasPrefix(item.Value, "-") && !strings.Contains(item.Value, "=") {
					prev = item.Value
				}
			}
		}
	}
	return out
}

// clientFlagWords name a command-line flag whose address is where the
// program connects; listenFlagWords one where it listens.
var (
	clientFlagWords = []string{"connect", "upstream", "target", "backend", "proxy", "remote", "peer", "join", "server",
		"url", "broker", "dest", "forward", "mysql", "postgres", "pg", "mongo", "redis", "kafka", "zookeeper", "amqp",
		"rabbit", "elastic", "db", "database", "master", "primary", "seed", "endpoint", "api"}
	listenFlagWords = []string{"listen", "bind", "addr", "address", "tcp", "udp", "http", "port", "serve", "web", "metrics", "grpc"}
)

// flagRole says whether a flag's address argument is a listen address,
// a connect address, or "" when the flag does not tell.
func flagRole(flag string) string {
	f := strings.ToLower(strings.TrimLeft(flag, "-"))
	if f == "" {
		return ""
	}
	for _, w := range clientFlagWords {
		if strings.Contains(f, w) {
			return RoleConnect
		}
	}
	for _, w := range listenFlagWords {
		if strings.Contains(f, w) {
			return RoleListen
		}
	}
	return ""
}

// flagBefore returns the flag that an address at byte i of a command
// string belongs to: "--bind=ADDR" or "--bind ADDR".
func flagBefore(val string, i int) string {
	before := strings.TrimRight(val[:i], " ")
	if strings.HasSuffix(before, "=") {
		before = strings.TrimSuffix(before, "=")
		if j := strings.LastIndexAny(before, " \t"); j >= 0 {
			before = before[j+1:]
		}
		return before
	}
	fields := strings.Fields(before)
	if len(fields) > 0 && strings.HasPrefix(fields[len(fields)-1], "-") {
		return fields[len(fields)-1]
	}
	return ""
}

var varRe = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// addrRe finds host:port and scheme://host[:port] tokens.
var addrRe = regexp.MustCompile(`(?i)(?:^|[^a-z0-9_.\-@/\[])((?:([a-z][a-z0-9+.\-]*)://)?(?:[^\s/@'"]+@)?(\[[0-9a-f:.]+\]|[a-z0-9][a-z0-9_.\-]*)(?::(\d{1,5}))?)`)

var defaultSchemePorts = map[string]int{
	"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432,
	"mysql": 3306, "redis": 6379, "mongodb": 27017, "amqp": 5672, "mqtt": 1883, "nats": 4222,
}

// wellKnown are default ports for host variables that come without one.
var wellKnown = map[string]int{
	"DB": 5432, "DATABASE": 5432, "POSTGRES": 5432, "PG": 5432, "PGSQL": 5432, "POSTGRESQL": 5432,
	"MYSQL": 3306, "MARIADB": 3306, "REDIS": 6379, "MONGO": 27017, "MONGODB": 27017,
	"RABBITMQ": 5672, "AMQP": 5672, "ELASTICSEARCH": 9200, "MEMCACHED": 11211,
	"INFLUX": 8086, "INFLUXDB": 8086, "MQTT": 1883, "ZOOKEEPER": 2181, "NATS": 4222,
}

func roleOfKey(key string) string {
	k := strings.ToUpper(key)
	switch {
	case strings.Contains(k, "ADVERTIS") || strings.Contains(k, "ANNOUNCE") || strings.Contains(k, "PUBLIC") ||
		strings.Contains(k, "EXTERNAL") || k == "BASE_URL" || strings.HasSuffix(k, "_BASE_URL") || k == "ROOT_URL" || strings.HasSuffix(k, "_ROOT_URL") ||
		strings.HasSuffix(k, "SITE_URL") || strings.HasSuffix(k, "DOMAIN") || strings.Contains(k, "REDIRECT") ||
		strings.Contains(k, "CALLBACK") || strings.Contains(k, "ORIGIN"):
		return RoleAdvertise
	case strings.Contains(k, "LISTEN") || strings.Contains(k, "BIND"):
		return RoleListen
	}
	return RoleConnect
}

func scanValue(sf *ServiceFacts, v scalarValue, env map[string]scalarValue) {
	val := v.value
	role := RoleConnect
	if v.key != "" {
		role = roleOfKey(v.key)
	}
	if v.field == "healthcheck.test" {
		role = RoleConnect
		scanHealthcheck(sf, v)
	}
	found := false
	for _, m := range addrRe.FindAllStringSubmatchIndex(val, -1) {
		tok := val[m[2]:m[3]]
		scheme := ""
		if m[4] >= 0 {
			scheme = strings.ToLower(val[m[4]:m[5]])
		}
		host := val[m[6]:m[7]]
		portStr := ""
		if m[8] >= 0 {
			portStr = val[m[8]:m[9]]
		}
		if scheme == "" && portStr == "" {
			continue
		}
		if m[3] < len(val) && val[m[3]] == '$' || strings.HasPrefix(val[m[3]:], ":$") || strings.Contains(tok, "$") {
			// the address or port comes from a variable: say so where the
			// host is this host, since the port cannot be resolved
			if IsLocalHost(host) && !strings.Contains(host, "$") {
				end := m[3]
				if strings.HasPrefix(val[m[3]:], ":$") {
					end = m[3] + 1 + len(varRe.FindString(val[m[3]+1:]))
				}
				sf.Refs = append(sf.Refs, AddressRef{Service: sf.Name, Field: v.field, Host: strings.Trim(host, "[]"), Scheme: scheme,
					Role: RoleConnect, Token: val[m[6]:end], Variable: varRe.FindString(val[m[6]:end]), Pos: v.file.PosOf(v.node), File: v.file, Node: v.node})
			}
			continue
		}
		port := 0
		if portStr != "" {
			port, _ = strconv.Atoi(portStr)
		} else {
			port = defaultSchemePorts[scheme]
		}
		if scheme == "" && !looksLikeHost(host) {
			continue
		}
		if port <= 0 || port > 65535 {
			if !IsLocalHost(host) && strings.Contains(host, ".") {
				sf.External = append(sf.External, host)
			}
			continue
		}
		found = true
		r := role
		proto := "tcp"
		if scheme == "udp" {
			proto = "udp"
		}
		if (v.field == "command" || v.field == "entrypoint") && scheme == "" && (IsLocalHost(host) || IsBindAll(host)) {
			flag := v.prevFlag
			if f := flagBefore(val, m[2]); f != "" {
				flag = f
			}
			if fr := flagRole(flag); fr != "" {
				r = fr
			}
			if strings.Contains(strings.ToLower(flag), "udp") {
				proto = "udp"
			}
		}
		if m[9] >= 0 && m[9] < len(val) && val[m[9]] == ':' && m[9]+1 < len(val) && val[m[9]+1] >= '0' && val[m[9]+1] <= '9' {
			// host:port:port, a server-list entry (ZooKeeper peers): the
			// first port alone does not say whose it is
			r = RoleServerList
		}
		if IsBindAll(host) && r == RoleConnect {
			r = RoleListen
		}
		// the token to rewrite: host[:port] without scheme and userinfo
		hostTok := host
		if portStr != "" {
			hostTok += ":" + portStr
		}
		ref := AddressRef{Service: sf.Name, Field: v.field, Host: strings.Trim(host, "[]"), Port: port, Scheme: scheme,
			Role: r, Token: hostTok, Pos: v.file.PosOf(v.node), File: v.file, Node: v.node}
		if !IsLocalHost(host) {
			if r == RoleConnect && (strings.Contains(host, ".") || scheme != "") {
				sf.External = append(sf.External, strings.Trim(host, "[]"))
			}
		}
		sf.Refs = append(sf.Refs, ref)
		if r == RoleAdvertise && IsLocalHost(host) {
			sf.addListener(StaticListener{Protocol: "tcp", Port: port,
				Evidence: Evidence{Kind: kindOf(v.field), Where: v.file.PosOf(v.node).String(), Detail: v.field + " advertises " + hostTok + " (the port it listens on, usually)"}})
		}
		if r == RoleListen {
			sf.addListener(StaticListener{Protocol: proto, Port: port, Address: strings.Trim(host, "[]"),
				Node: v.node, File: v.file, BindText: host,
				Evidence: Evidence{Kind: kindOf(v.field), Where: v.file.PosOf(v.node).String(), Detail: v.field + " binds " + hostTok}})
		}
	}
	if found || v.key == "" {
		return
	}
	// KEY_PORT=8080 and KEY_HOST=localhost pairs
	k := strings.ToUpper(v.key)
	if roleOfKey(k) == RoleListen && isColonPort(strings.TrimSpace(val)) {
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(val), ":"))
		sf.addListener(StaticListener{Protocol: "tcp", Port: n,
			Evidence: Evidence{Kind: "environment", Where: v.file.PosOf(v.node).String(), Detail: v.key + "=" + val}})
		return
	}
	if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 && n < 65536 && isPortKey(k) {
		prefix := strings.TrimSuffix(strings.TrimSuffix(k, "PORT"), "_")
		if _, ok := hostSibling(env, prefix); ok && !strings.Contains(k, "LISTEN") && !strings.Contains(k, "BIND") && !serverPrefix(prefix) {
			return // a client's port: handled with its host
		}
		if roleOfKey(k) == RoleAdvertise {
			return
		}
		sf.addListener(StaticListener{Protocol: "tcp", Port: n,
			Evidence: Evidence{Kind: "environment", Where: v.file.PosOf(v.node).String(), Detail: v.key + "=" + val}})
		return
	}
	if isHostKey(k) && IsLocalHost(strings.TrimSpace(val)) {
		host := strings.TrimSpace(val)
		prefix := hostPrefix(k)
		ref := AddressRef{Service: sf.Name, Field: v.field, Host: strings.Trim(host, "[]"), Role: roleOfKey(k),
			Token: host, Pos: v.file.PosOf(v.node), File: v.file, Node: v.node}
		if ref.Role == RoleConnect && serverPrefix(prefix) {
			ref.Role = RoleListen // SERVER_HTTP_ADDR, HTTP_HOST: the service's own address
		}
		if IsBindAll(host) && ref.Role == RoleConnect {
			ref.Role = RoleListen
		}
		if pv, ok := portSibling(env, prefix); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(pv.value)); err == nil {
				ref.Port = n
				ref.PortFrom = pv.key
			} else {
				ref.Variable = pv.key
			}
		} else if n, ok := wellKnown[prefix]; ok {
			ref.Port = n
			ref.PortFrom = "default port of " + prefix
		}
		sf.Refs = append(sf.Refs, ref)
		if ref.Role == RoleListen && ref.Port > 0 {
			sf.addListener(StaticListener{Protocol: "tcp", Port: ref.Port, Address: ref.Host, Node: v.node, File: v.file, BindText: host,
				Evidence: Evidence{Kind: "environment", Where: ref.Pos.String(), Detail: v.key + "=" + host}})
		}
	}
}

func kindOf(field string) string {
	k, _, _ := strings.Cut(field, ".")
	if field == "healthcheck.test" {
		return "healthcheck"
	}
	return k
}

func looksLikeHost(h string) bool {
	if IsLocalHost(h) || strings.HasPrefix(h, "[") {
		return true
	}
	// an IP address, a dotted name, or a simple name (a service)
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return h != "" && !(h[0] >= '0' && h[0] <= '9' && !strings.Contains(h, "."))
}

func isPortKey(k string) bool {
	return k == "PORT" || strings.HasSuffix(k, "_PORT") || strings.HasSuffix(k, "PORT") && len(k) <= 12
}

func isHostKey(k string) bool {
	for _, s := range []string{"_HOST", "_HOSTNAME", "_ADDR", "_ADDRESS", "_SERVER", "_IP"} {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return k == "HOST" || k == "HOSTNAME" || k == "BIND" || k == "LISTEN"
}

func hostPrefix(k string) string {
	for _, s := range []string{"_HOSTNAME", "_HOST", "_ADDRESS", "_ADDR", "_SERVER", "_IP"} {
		if strings.HasSuffix(k, s) {
			return strings.TrimSuffix(k, s)
		}
	}
	return ""
}

func hostSibling(env map[string]scalarValue, prefix string) (scalarValue, bool) {
	for _, s := range []string{"_HOST", "_HOSTNAME", "_ADDR", "_ADDRESS", "_SERVER"} {
		for k, v := range env {
			if strings.ToUpper(k) == prefix+s {
				return v, true
			}
		}
	}
	return scalarValue{}, false
}

func portSibling(env map[string]scalarValue, prefix string) (scalarValue, bool) {
	want := "PORT"
	if prefix != "" {
		want = prefix + "_PORT"
	}
	for k, v := range env {
		if strings.ToUpper(k) == want {
			return v, true
		}
	}
	return scalarValue{}, false
}

func (sf *ServiceFacts) addListener(l StaticListener) {
	sf.Listeners = append(sf.Listeners, l)
}

// scanFlags reads --port/--bind style flags from command and entrypoint.
func scanFlags(sf *ServiceFacts, values []scalarValue) {
	for _, field := range []string{"command", "entrypoint"} {
		var toks []struct {
			s  string
			sv scalarValue
		}
		for _, v := range values {
			if v.field != field {
				continue
			}
			for _, t := range strings.Fields(v.value) {
				toks = append(toks, struct {
					s  string
					sv scalarValue
				}{strings.Trim(t, `"'`), v})
			}
		}
		var port int
		var bind *StaticListener
		for i := 0; i < len(toks); i++ {
			name, val, hasVal := strings.Cut(toks[i].s, "=")
			if !strings.HasPrefix(name, "-") {
				continue
			}
			flag := strings.ToLower(strings.TrimLeft(name, "-"))
			if !hasVal && i+1 < len(toks) && !strings.HasPrefix(toks[i+1].s, "-") {
				val = toks[i+1].s
			}
			sv := toks[i].sv
			switch {
			case strings.HasSuffix(flag, "port") && !strings.Contains(flag, "advertis"):
				if n, err := strconv.Atoi(val); err == nil && n > 0 && n < 65536 {
					port = n
					sf.addListener(StaticListener{Protocol: "tcp", Port: n,
						Evidence: Evidence{Kind: field, Where: sv.file.PosOf(sv.node).String(), Detail: fmt.Sprintf("%s %s %d", field, name, n)}})
				}
			case (strings.Contains(flag, "listen") || strings.Contains(flag, "bind")) && isColonPort(val):
				n, _ := strconv.Atoi(strings.TrimPrefix(val, ":"))
				sf.addListener(StaticListener{Protocol: "tcp", Port: n,
					Evidence: Evidence{Kind: field, Where: sv.file.PosOf(sv.node).String(), Detail: fmt.Sprintf("%s %s=%s", field, name, val)}})
			case flag == "bind" || flag == "host" || flag == "listen" || flag == "bind-address" || flag == "listen-address" || flag == "address" || flag == "ip":
				h := val
				valNode := sv
				if !hasVal && i+1 < len(toks) {
					valNode = toks[i+1].sv
				}
				if hh, pp, ok := strings.Cut(val, ":"); ok && !strings.Contains(pp, ":") {
					if n, err := strconv.Atoi(pp); err == nil {
						if IsLocalHost(hh) || IsBindAll(hh) {
							sf.addListener(StaticListener{Protocol: "tcp", Port: n, Address: strings.Trim(hh, "[]"), Node: valNode.node, File: valNode.file, BindText: hh,
								Evidence: Evidence{Kind: field, Where: valNode.file.PosOf(valNode.node).String(), Detail: fmt.Sprintf("%s %s %s", field, name, val)}})
						}
						continue
					}
					h = hh
				}
				if IsLocalHost(h) || IsBindAll(h) {
					bind = &StaticListener{Protocol: "tcp", Address: strings.Trim(h, "[]"), Node: valNode.node, File: valNode.file, BindText: h,
						Evidence: Evidence{Kind: field, Where: sv.file.PosOf(sv.node).String(), Detail: fmt.Sprintf("%s %s %s", field, name, h)}}
				}
			}
		}
		if bind != nil && port > 0 {
			bind.Port = port
			sf.addListener(*bind)
		}
	}
}

// isColonPort reports whether s is ":PORT" (every interface).
func isColonPort(s string) bool {
	if !strings.HasPrefix(s, ":") {
		return false
	}
	n, err := strconv.Atoi(s[1:])
	return err == nil && n > 0 && n < 65536
}

// serverPrefix reports whether an env prefix names the service's own
// server (GF_SERVER_HTTP_ADDR, HTTP_HOST, WEB_HOST) rather than a client's
// target (DB_HOST, REDIS_ADDR).
func serverPrefix(prefix string) bool {
	if prefix == "" || prefix == "SERVER" || prefix == "APP" {
		return true
	}
	for _, k := range []string{"HTTP", "WEB", "LISTEN", "BIND", "HTTPS", "GRPC"} {
		if strings.HasSuffix(prefix, k) || strings.HasSuffix(prefix, "_"+k+"_SERVER") {
			return true
		}
	}
	return false
}

// healthPortRe finds the port a healthcheck probes when it is written as
// separate words: "nc -z 127.0.0.1 8001", "pg_isready -p 5433",
// "redis-cli -p 6380 ping", "mysqladmin ping -P 3307".
var (
	healthHostPortRe = regexp.MustCompile(`(?:^|\s)(localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[?::1\]?)\s+(\d{1,5})\b`)
	healthFlagPortRe = regexp.MustCompile(`(?:^|\s)(?:-p|-P|--port)(?:\s+|=)(\d{1,5})\b`)
)

// scanHealthcheck adds the ports a healthcheck probes as the service's own
// listeners: a healthcheck runs inside the service's container.
func scanHealthcheck(sf *ServiceFacts, v scalarValue) {
	add := func(port string) {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return
		}
		sf.addListener(StaticListener{Protocol: "tcp", Port: n,
			Evidence: Evidence{Kind: "healthcheck", Where: v.file.PosOf(v.node).String(), Detail: "healthcheck probes port " + port}})
	}
	for _, m := range healthHostPortRe.FindAllStringSubmatch(v.value, -1) {
		add(m[2])
	}
	for _, m := range healthFlagPortRe.FindAllStringSubmatch(v.value, -1) {
		add(m[1])
	}
}
