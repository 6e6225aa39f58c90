package analysis

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// scalarValue is a scalar in a service's configuration, with its context.
type scalarValue struct {
	file  *load.SourceFile
	node  *yaml.Node
	field string // environment.KEY, command, entrypoint, healthcheck.test
	key   string // environment key, "" otherwise
	// keyNode is the key of a mapping entry (environment: {KEY: value}).
	keyNode *yaml.Node
	value   string // for "K=V" list items: V
	// prevFlag is the command-line flag before this argument, if any;
	// prevWord the argument before it, whatever it is.
	prevFlag, prevWord string
}

// pos is where the value is written; zero when it comes from the loaded
// model alone (AnalyzeProject).
func (v scalarValue) pos() load.Pos {
	if v.file == nil || v.node == nil {
		return load.Pos{}
	}
	return v.file.PosOf(v.node)
}

func (v scalarValue) where() string { return v.pos().String() }

// finder finds the addresses of one service's configuration. known are
// the image-table entries that apply to it: its image's, and those of the
// programs its command and entrypoint run.
type finder struct {
	sf    *ServiceFacts
	env   map[string]scalarValue
	known []*ImageInfo
	// flags are every flag name written in command and entrypoint, to
	// tell -ip (advertised) from -ip.bind (the bind flag).
	flags map[string]bool
	// others are the names of the project's other services and the base
	// names of their images: a PORT variable named after one of them
	// (OTBR_WEB_PORT in a helper, beside service otbr) is that service's
	// port, not this one's.
	others owners
	// self are this service's name and image base name, as ownerName.
	self [2]string
	// split caches splitCommands of command values, read several times.
	split map[string][][]string
}

// commands returns the simple commands of a command value, split once.
func (f *finder) commands(val string) [][]string {
	if c, ok := f.split[val]; ok {
		return c
	}
	c := splitCommands(val)
	if f.split == nil {
		f.split = map[string][][]string{}
	}
	f.split[val] = c
	return c
}

// words returns the words of a command value, split once.
func (f *finder) words(val string) []string {
	var out []string
	for _, c := range f.commands(val) {
		out = append(out, c...)
	}
	return out
}

// owners counts, by ownerName, the services of a project named so or
// running an image so named. It is computed once per project.
type owners map[string]int

func projectOwners(all types.Services) owners {
	o := owners{}
	for name, s := range all {
		n := ownerName(name)
		o[n]++
		if s.Image != "" {
			if in := imageOwnerName(s.Image); in != n {
				o[in]++
			}
		}
	}
	return o
}

// isOther reports whether a variable's first word names another service
// of the project (or its image) than this one.
func (f *finder) isOther(word string) bool {
	n := ownerName(word)
	return n != f.self[0] && n != f.self[1] && f.others[n] > 0
}

// ownerName is the form service and image names are compared in with the
// first word of a variable name.
func ownerName(s string) string {
	return ownerPunct.Replace(strings.ToLower(s))
}

// imageOwnerName is ownerName of an image's base name ("openthread/otbr"
// is "otbr").
func imageOwnerName(image string) string { return ownerName(pathBase(ImageName(image))) }

var ownerPunct = strings.NewReplacer("-", "", "_", "", ".", "")

// scanConfig finds listeners and address references in a service's
// environment, command, entrypoint and healthcheck.
func scanConfig(others owners, sf *ServiceFacts, nodes []load.NodeRef, model types.ServiceConfig) {
	var values []scalarValue
	env := map[string]scalarValue{}
	if nodes == nil {
		values, env = modelValues(model)
	}
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
					env[k.Value] = scalarValue{file: nr.File, node: v, keyNode: k, field: "environment." + k.Value, key: k.Value, value: v.Value}
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
	f := &finder{sf: sf, env: env, others: others, self: [2]string{ownerName(sf.Name), ownerName(sf.Name)}}
	if sf.Image != "" {
		f.self[1] = imageOwnerName(sf.Image)
	}
	sf.rangeNeeds = portRangeNeeds(keys, env, values, model, f.words)
	for _, k := range keys {
		if e := LookupVar(k); e != nil {
			v := env[k]
			where := v.where()
			if v.keyNode != nil {
				where = v.file.PosOf(v.keyNode).String()
			}
			sf.programs = append(sf.programs, programUse{word: k, field: v.field, how: "sets", where: where, info: e})
		}
	}
	if e := LookupImage(sf.Image); e != nil {
		f.known = append(f.known, e)
	}
	for _, v := range values {
		if v.field != "command" && v.field != "entrypoint" {
			continue
		}
		for _, cmd := range f.commands(v.value) {
			for _, w := range programWords(cmd) {
				if e := LookupProgram(w); e != nil && !slices.Contains(f.known, e) {
					f.known = append(f.known, e)
					sf.programs = append(sf.programs, programUse{word: w, field: v.field, how: "runs", where: v.where(), info: e})
				}
			}
			for _, w := range cmd {
				if name, _, _ := strings.Cut(w, "="); strings.HasPrefix(name, "-") {
					if f.flags == nil {
						f.flags = map[string]bool{}
					}
					f.flags[name] = true
				}
			}
		}
	}
	for _, v := range values {
		f.scanValue(v)
	}
	// command flags: --port N / --bind ADDR pairs
	f.scanFlags(values)
	sort.Strings(sf.External)
	sf.External = slices.Compact(sf.External)
}

// modelValues are the values of a service as loaded (interpolated, with
// no source positions): what AnalyzeProject reads.
func modelValues(s types.ServiceConfig) ([]scalarValue, map[string]scalarValue) {
	env := map[string]scalarValue{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = scalarValue{field: "environment." + k, key: k, value: *v}
		}
	}
	var values []scalarValue
	words := func(field string, argv []string) {
		prev, word := "", ""
		for _, a := range argv {
			values = append(values, scalarValue{field: field, value: a, prevFlag: prev, prevWord: word})
			prev, word = "", a
			if strings.HasPrefix(a, "-") && !strings.Contains(a, "=") {
				prev = a
			}
		}
	}
	words("command", s.Command)
	words("entrypoint", s.Entrypoint)
	if s.HealthCheck != nil && len(s.HealthCheck.Test) > 0 {
		words("healthcheck.test", s.HealthCheck.Test)
	}
	return values, env
}

func commandValues(f *load.SourceFile, v *yaml.Node, field string) []scalarValue {
	var out []scalarValue
	switch v.Kind {
	case yaml.ScalarNode:
		out = append(out, scalarValue{file: f, node: v, field: field, value: v.Value})
	case yaml.SequenceNode:
		prev, word := "", ""
		for _, item := range v.Content {
			if item.Kind == yaml.ScalarNode {
				out = append(out, scalarValue{file: f, node: item, field: field, value: item.Value, prevFlag: prev, prevWord: word})
				prev, word = "", item.Value
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

// wordBefore returns the word that an address at byte i of a command
// string follows: the flag of "--bind=ADDR" or "--bind ADDR", or a
// sub-command such as "runserver ADDR".
func wordBefore(val string, i int) string {
	before := val[:i]
	if strings.HasSuffix(before, "=") {
		w := lastWord(before)
		return strings.TrimSuffix(w, "=")
	}
	return lastWord(before)
}

// flagRole says what an address after flag (or after a sub-command word)
// is to the service: what the image table says for the programs that
// apply, else what the flag's name suggests; "" when nothing tells.
func (f *finder) flagRole(flag string) string {
	if flag == "" {
		return ""
	}
	switch f.flagKind(flag) {
	case flagAdvertise:
		return RoleAdvertise
	case flagBind:
		return RoleListen
	}
	for _, e := range f.known {
		if slices.Contains(e.ListenArgs, flag) {
			return RoleListen
		}
	}
	if !strings.HasPrefix(flag, "-") {
		return ""
	}
	return flagRole(flag)
}

// Kinds of command-line flags.
const (
	flagOther = iota
	flagBind
	flagPort
	flagAdvertise
)

// flagKind says what the table knows of a flag (a name with its dashes, or
// a -c setting name): a bind, port or advertise flag. A flag F written
// next to F.bind (or F-bind) is an advertised address: SeaweedFS -ip.
func (f *finder) flagKind(flag string) int {
	for _, e := range f.known {
		switch {
		case slices.Contains(e.AdvertiseFlags, flag):
			return flagAdvertise
		case slices.Contains(e.BindFlags, flag):
			return flagBind
		case slices.Contains(e.PortFlags, flag):
			return flagPort
		}
	}
	if strings.HasPrefix(flag, "-") && (f.flags[flag+".bind"] || f.flags[flag+"-bind"]) {
		return flagAdvertise
	}
	return flagOther
}

var varRe = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// addrRe finds host:port, scheme://host[:port] and transport:host:port
// tokens (tcp:localhost:15432, udp:[::1]:53, tcp:127.0.0.1:19001), with
// tcp:PORT read as every interface. Submatches: 1 the token, 2 a URL
// scheme, 3 a transport prefix, 4 the host, 5 the port.
var addrRe = regexp.MustCompile(`(?i)(?:^|[^a-z0-9_.\-@/\[])((?:([a-z][a-z0-9+.\-]*)://|(tcp[46]?|udp[46]?|sctp|tls|ssl):)?(?:[^\s/@'"]+@)?(\[[0-9a-f:.]+\]|[a-z0-9][a-z0-9_.\-]*)(?::(\d{1,5}))?)`)

// addrMatch is one addrRe match, by byte offsets into the value.
type addrMatch struct {
	start, end int // the token
	scheme     string
	host       string
	hostStart  int
	port       string
	portOnly   bool // transport:PORT, every interface
}

func findAddrs(val string) []addrMatch {
	var out []addrMatch
	for _, m := range addrRe.FindAllStringSubmatchIndex(val, -1) {
		a := addrMatch{start: m[2], end: m[3], host: val[m[8]:m[9]], hostStart: m[8]}
		switch {
		case m[4] >= 0:
			a.scheme = strings.ToLower(val[m[4]:m[5]])
		case m[6] >= 0:
			a.scheme = strings.ToLower(val[m[6]:m[7]])
		}
		if m[10] >= 0 {
			a.port = val[m[10]:m[11]]
		}
		if m[6] >= 0 && a.port == "" && isDigits(a.host) {
			// tcp:19000: a port on every interface
			a.port, a.host, a.portOnly = a.host, "", true
		}
		out = append(out, a)
	}
	return out
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

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

// roleOfKey says what an address in environment variable key is to the
// service. Keys naming what the service tells others (ADVERTISED, PUBLIC,
// BASE_URL ...) are advertised addresses, never rewritten; the table's bind
// variables (OLLAMA_HOST) are the service's own listen address.
func roleOfKey(key string) string {
	k := strings.ToUpper(key)
	if images().bindVars[k] != nil {
		return RoleListen
	}
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

// selfAdvertised reports whether an advertise key names the service's own
// address (KAFKA_ADVERTISED_LISTENERS, ANNOUNCE_IP) rather than a URL given
// to clients that may point at another service (NEXT_PUBLIC_API_URL,
// PUBLIC_URL, BASE_URL): only the former says which port it listens on.
func selfAdvertised(key string) bool {
	k := strings.ToUpper(key)
	return strings.Contains(k, "ADVERTIS") || strings.Contains(k, "ANNOUNCE")
}

func (f *finder) scanValue(v scalarValue) {
	sf, env := f.sf, f.env
	val := v.value
	role := RoleConnect
	if v.key != "" {
		role = roleOfKey(v.key)
	}
	if v.field == "healthcheck.test" {
		role = RoleConnect
		scanHealthcheck(sf, v)
	}
	isCommand := v.field == "command" || v.field == "entrypoint"
	found := false
	for _, m := range findAddrs(val) {
		tok := val[m.start:m.end]
		scheme, host, portStr := m.scheme, m.host, m.port
		if scheme == "" && portStr == "" {
			continue
		}
		if m.end < len(val) && val[m.end] == '$' || strings.HasPrefix(val[m.end:], ":$") || strings.Contains(tok, "$") {
			// the address or port comes from a variable: say so where the
			// host is this host, since the port cannot be resolved
			if IsLocalHost(host) && !strings.Contains(host, "$") {
				end := m.end
				if strings.HasPrefix(val[m.end:], ":$") {
					end = m.end + 1 + len(varRe.FindString(val[m.end+1:]))
				}
				sf.Refs = append(sf.Refs, AddressRef{Service: sf.Name, Field: v.field, Host: strings.Trim(host, "[]"), Scheme: scheme,
					Role: RoleConnect, Token: val[m.hostStart:end], Variable: varRe.FindString(val[m.hostStart:end]), Pos: v.pos(), File: v.file, Node: v.node})
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
		if strings.HasPrefix(scheme, "udp") {
			proto = "udp"
		}
		if isCommand && scheme == "" {
			flag := v.prevFlag
			if w := wordBefore(val, m.start); w != "" {
				flag = w
			} else if v.prevWord != "" && f.flagRole(v.prevWord) != "" {
				flag = v.prevWord
			}
			fr := f.flagRole(flag)
			if fr != "" && (IsLocalHost(host) || IsBindAll(host) || fr != RoleConnect) {
				r = fr
			}
			if strings.Contains(strings.ToLower(flag), "udp") {
				proto = "udp"
			}
		}
		if m.end < len(val) && val[m.end] == ':' && m.end+1 < len(val) && val[m.end+1] >= '0' && val[m.end+1] <= '9' {
			// host:port:port, a server-list entry (ZooKeeper peers): the
			// first port alone does not say whose it is
			r = RoleServerList
		}
		if IsBindAll(host) && r == RoleConnect {
			r = RoleListen
		}
		// the token to rewrite: host[:port] without scheme and userinfo
		hostTok := host
		if portStr != "" && !m.portOnly {
			hostTok += ":" + portStr
		}
		if m.portOnly {
			hostTok = portStr
		}
		ref := AddressRef{Service: sf.Name, Field: v.field, Host: strings.Trim(host, "[]"), Port: port, Scheme: scheme,
			Role: r, Token: hostTok, Pos: v.pos(), File: v.file, Node: v.node}
		if !IsLocalHost(host) {
			if r == RoleConnect && (strings.Contains(host, ".") || scheme != "") {
				sf.External = append(sf.External, strings.Trim(host, "[]"))
			}
		}
		sf.Refs = append(sf.Refs, ref)
		if r == RoleAdvertise && IsLocalHost(host) && v.key != "" && selfAdvertised(v.key) {
			sf.addListener(StaticListener{Protocol: "tcp", Port: port,
				Evidence: Evidence{Kind: kindOf(v.field), Where: v.where(), Detail: v.field + " advertises " + hostTok + " (the port it listens on, usually)"}})
		}
		if r == RoleListen {
			l := StaticListener{Protocol: proto, Port: port, Address: strings.Trim(host, "[]"),
				Evidence: Evidence{Kind: kindOf(v.field), Where: v.where(), Detail: v.field + " binds " + hostTok}}
			if !m.portOnly {
				l.Node, l.File, l.BindText = v.node, v.file, host
			}
			sf.addListener(l)
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
			Evidence: Evidence{Kind: "environment", Where: v.where(), Detail: v.key + "=" + val}})
		return
	}
	if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 && n < 65536 && (isPortKey(k) || images().portVars[k] != nil) {
		if e := images().portVars[k]; e != nil {
			if _, ok := f.bindVarOf(e); ok {
				return // the table's port of a bind variable: read with it
			}
		} else {
			prefix := strings.TrimSuffix(strings.TrimSuffix(k, "PORT"), "_")
			if _, ok := hostSibling(env, prefix); ok && !strings.Contains(k, "LISTEN") && !strings.Contains(k, "BIND") && !serverPrefix(prefix) {
				return // a client's port: handled with its host
			}
		}
		if roleOfKey(k) == RoleAdvertise {
			return
		}
		if first, _, ok := strings.Cut(k, "_"); ok && f.isOther(first) {
			return // another service's port (OTBR_WEB_PORT beside otbr)
		}
		if e := LookupImage(sf.Image); e != nil && slices.ContainsFunc(e.PortVars, func(pv string) bool { return strings.EqualFold(pv, k) }) {
			sf.portMoved = true
		}
		sf.addListener(StaticListener{Protocol: "tcp", Port: n,
			Evidence: Evidence{Kind: "environment", Where: v.where(), Detail: v.key + "=" + val}})
		return
	}
	if e := images().bindVars[k]; e != nil {
		f.tableBind(v, e)
		return
	}
	if isHostKey(k) && IsLocalHost(strings.TrimSpace(val)) {
		host := strings.TrimSpace(val)
		prefix := hostPrefix(k)
		ref := AddressRef{Service: sf.Name, Field: v.field, Host: strings.Trim(host, "[]"), Role: roleOfKey(k),
			Token: host, Pos: v.pos(), File: v.file, Node: v.node}
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

// bindVarOf returns the service's value of one of e's bind variables.
func (f *finder) bindVarOf(e *ImageInfo) (scalarValue, bool) {
	for _, name := range e.BindVars {
		for k, v := range f.env {
			if strings.EqualFold(k, name) {
				return v, true
			}
		}
	}
	return scalarValue{}, false
}

// tableBind reads a bind variable of the image table whose value has no
// port (OLLAMA_HOST=0.0.0.0, dn_rpc_address=iotdb-1): the port is the
// entry's port variable when set, else its documented port. The bind may
// be a host name, which a bridge network cannot bind: the listener keeps
// it, with its scope, for the planner to judge.
func (f *finder) tableBind(v scalarValue, e *ImageInfo) {
	host := strings.TrimSpace(v.value)
	a := ParseAddress(host)
	if a.Scope == ScopeUnknown {
		return
	}
	port, from := 0, ""
	for _, name := range e.PortVars {
		for k, pv := range f.env {
			if strings.EqualFold(k, name) {
				if n, err := strconv.Atoi(strings.TrimSpace(pv.value)); err == nil && n > 0 && n < 65536 {
					port, from = n, pv.key+"="+strings.TrimSpace(pv.value)
				}
			}
		}
	}
	if port == 0 && len(e.Ports) > 0 {
		if n, _, _, err := parsePortRange(e.Ports[0]); err == nil {
			port, from = n, fmt.Sprintf("%s's documented port %d (%s)", e.Name, n, e.Source())
		}
	}
	ref := AddressRef{Service: f.sf.Name, Field: v.field, Host: a.Host, Port: port, Role: RoleListen,
		Token: host, PortFrom: from, Pos: v.pos(), File: v.file, Node: v.node}
	if a.Scope == ScopeLoopback || a.Scope == ScopeAll || a.IsHostGateway() {
		f.sf.Refs = append(f.sf.Refs, ref)
	}
	if port == 0 {
		return
	}
	detail := v.key + "=" + host
	if from != "" {
		detail += " with " + from
	}
	f.sf.addListener(StaticListener{Protocol: "tcp", Port: port, Address: strings.Trim(host, "[]"), Node: v.node, File: v.file, BindText: host,
		Evidence: Evidence{Kind: "environment", Where: ref.Pos.String(), Detail: detail}})
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

// scanFlags reads --port/--bind style flags from command and entrypoint,
// and "-c name=value" settings (postgres -c listen_addresses=localhost
// -c port=5433), as the image table and the flags' names say.
func (f *finder) scanFlags(values []scalarValue) {
	sf := f.sf
	type tok struct {
		s  string
		sv scalarValue
	}
	for _, field := range []string{"command", "entrypoint"} {
		var toks []tok
		for _, v := range values {
			if v.field != field {
				continue
			}
			for _, w := range f.words(v.value) {
				toks = append(toks, tok{w, v})
			}
		}
		var port int
		var bind *StaticListener
		for i := 0; i < len(toks); i++ {
			name, val, hasVal := strings.Cut(toks[i].s, "=")
			if !strings.HasPrefix(name, "-") {
				if !hasVal || i == 0 || toks[i-1].s != "-c" {
					continue
				}
				// -c name=value: a setting, read as a flag of that name
			} else if !hasVal && i+1 < len(toks) && !strings.HasPrefix(toks[i+1].s, "-") {
				val = toks[i+1].s
			}
			sv := toks[i].sv
			valNode := sv
			if !hasVal && i+1 < len(toks) {
				valNode = toks[i+1].sv
			}
			flag := strings.ToLower(strings.TrimLeft(name, "-"))
			kind := f.flagKind(name)
			switch {
			case kind == flagAdvertise:
				// an address told to others (SeaweedFS -ip): not a bind
			case kind == flagPort || kind == flagOther && strings.HasSuffix(flag, "port") && !strings.Contains(flag, "advertis"):
				if n, err := strconv.Atoi(val); err == nil && n > 0 && n < 65536 {
					port = n
					if e := LookupImage(sf.Image); e != nil && slices.Contains(e.PortFlags, name) {
						sf.portMoved = true
					}
					sf.addListener(StaticListener{Protocol: "tcp", Port: n,
						Evidence: Evidence{Kind: field, Where: valNode.where(), Detail: fmt.Sprintf("%s %s %d", field, name, n)}})
				}
			case (kind == flagBind || strings.Contains(flag, "listen") || strings.Contains(flag, "bind")) && isColonPort(val):
				n, _ := strconv.Atoi(strings.TrimPrefix(val, ":"))
				sf.addListener(StaticListener{Protocol: "tcp", Port: n,
					Evidence: Evidence{Kind: field, Where: valNode.where(), Detail: fmt.Sprintf("%s %s=%s", field, name, val)}})
			case kind == flagBind || flag == "bind" || flag == "host" || flag == "listen" || flag == "bind-address" || flag == "listen-address" || flag == "address" || flag == "ip" || strings.HasSuffix(flag, ".bind"):
				h := val
				if hh, pp, err := net.SplitHostPort(val); err == nil {
					if n, err := strconv.Atoi(pp); err == nil && n > 0 && n < 65536 {
						if bindable(hh, kind == flagBind) {
							sf.addListener(StaticListener{Protocol: "tcp", Port: n, Address: strings.Trim(hh, "[]"), Node: valNode.node, File: valNode.file, BindText: hh,
								Evidence: Evidence{Kind: field, Where: valNode.where(), Detail: fmt.Sprintf("%s %s %s", field, name, val)}})
						}
						continue
					}
					h = hh
				}
				if bindable(h, kind == flagBind) {
					bind = &StaticListener{Protocol: "tcp", Address: strings.Trim(h, "[]"), Node: valNode.node, File: valNode.file, BindText: h,
						Evidence: Evidence{Kind: field, Where: valNode.where(), Detail: fmt.Sprintf("%s %s %s", field, name, h)}}
				}
			}
		}
		if bind != nil && port > 0 {
			bind.Port = port
			sf.addListener(*bind)
		}
	}
}

// bindable reports whether h, given to a bind flag, is an address the
// analysis records as a bind: this host's addresses for any flag whose
// name says bind, and any address for a flag the image table names (a
// host name there is what the program binds, which the planner must see).
func bindable(h string, fromTable bool) bool {
	if IsLocalHost(h) || IsBindAll(h) {
		return true
	}
	return fromTable && ParseAddress(h).Scope != ScopeUnknown
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
			Evidence: Evidence{Kind: "healthcheck", Where: v.where(), Detail: "healthcheck probes port " + port}})
	}
	for _, m := range healthHostPortRe.FindAllStringSubmatch(v.value, -1) {
		add(m[2])
	}
	for _, m := range healthFlagPortRe.FindAllStringSubmatch(v.value, -1) {
		add(m[1])
	}
}
