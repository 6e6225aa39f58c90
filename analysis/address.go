package analysis

import (
	"net/netip"
	"strings"
)

// Scope is how widely an address in configuration reaches: what a listener
// bound to it can be reached from, or what a reference to it means.
type Scope int

// Scopes of an address. The zero value is ScopeUnknown: the text is empty
// of meaning to unhost (a variable, a malformed address).
const (
	ScopeUnknown Scope = iota
	// ScopeLoopback is 127.0.0.0/8, ::1, localhost and its aliases.
	ScopeLoopback
	// ScopeAll is every interface: 0.0.0.0, ::, *, or no address at all
	// (a listener given only a port binds every interface).
	ScopeAll
	// ScopeSpecific is one IP address that is neither loopback nor
	// unspecified (a LAN address, a docker0 gateway).
	ScopeSpecific
	// ScopeHostName is a name that is not an IP address and not a
	// loopback alias: a service, a container or a host name, resolved at
	// run time.
	ScopeHostName
)

var scopeNames = [...]string{"unknown", "loopback", "all-interfaces", "specific", "host-name"}

func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "unknown"
}

// MarshalText writes the scope's name, so JSON facts read as words.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// loopbackNames are the names that /etc/hosts of common distributions and
// Docker's generated /etc/hosts map to a loopback address.
var loopbackNames = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "localhost4": true, "localhost6": true,
	"ip6-localhost": true, "ip6-loopback": true,
}

// hostGatewayNames reach the host from a container (and so mean "this
// host" to a service that ran on the host network before).
var hostGatewayNames = map[string]bool{
	"host.docker.internal": true, "gateway.docker.internal": true,
}

// dockerGateway is the address of docker0 on a default engine.
var dockerGateway = netip.MustParseAddr("172.17.0.1")

// Address is an address as written in configuration, classified once.
type Address struct {
	Text  string     // as written, brackets included
	Host  string     // lower case, without brackets and IPv6 zone
	IP    netip.Addr // valid when Host is an IP address (IPv4-mapped IPv6 unmapped)
	Scope Scope
}

// ParseAddress classifies the host part of an address: "127.0.0.1",
// "[::1]", "0.0.0.0", "localhost", "db", "::ffff:127.0.0.1". "" and "*"
// mean every interface, as they do in bind flags; "0" is 0.0.0.0 as
// inet_aton reads it (gunicorn --bind 0:5000).
func ParseAddress(text string) Address {
	a := Address{Text: text}
	h := strings.ToLower(strings.TrimSpace(text))
	h = strings.TrimPrefix(h, "[")
	h = strings.TrimSuffix(h, "]")
	a.Host = h
	switch {
	case h == "" || h == "*" || h == "0":
		a.Scope = ScopeAll
		return a
	case loopbackNames[h]:
		a.Scope = ScopeLoopback
		return a
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		ip = ip.Unmap().WithZone("")
		a.IP = ip
		a.Host = ip.String()
		switch {
		case ip.IsLoopback():
			a.Scope = ScopeLoopback
		case ip.IsUnspecified():
			a.Scope = ScopeAll
		default:
			a.Scope = ScopeSpecific
		}
		return a
	}
	if validHostName(h) {
		a.Scope = ScopeHostName
	}
	return a
}

// validHostName reports whether h can be a DNS or service name: letters,
// digits, '-', '_' and '.', not starting with '-' or '.', and not all
// digits and dots (that would be a malformed IP address).
func validHostName(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '-' || h[0] == '.' {
		return false
	}
	letter := false
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r == '-', r == '_':
			letter = true
		case r >= '0' && r <= '9', r == '.':
		default:
			return false
		}
	}
	return letter
}

// IsHostGateway reports whether a reaches the host from a container:
// host.docker.internal, gateway.docker.internal or docker0's default
// address.
func (a Address) IsHostGateway() bool {
	return hostGatewayNames[a.Host] || a.IP == dockerGateway
}

// IsLoopback reports whether h is a loopback address or name.
func IsLoopback(h string) bool { return ParseAddress(h).Scope == ScopeLoopback }

// IsBindAll reports whether h binds every interface ("" included).
func IsBindAll(h string) bool { return ParseAddress(h).Scope == ScopeAll }

// IsLocalHost reports whether h means "this host" to a service on the
// host network: loopback, every interface, or the host gateway. "" and
// "0" are left out: they bind every interface when a bind flag says so,
// but as the host of "0:1000" in free text they are more often something
// else (chown 0:1000).
func IsLocalHost(h string) bool {
	a := ParseAddress(h)
	return a.Scope == ScopeLoopback || a.Scope == ScopeAll && a.Host != "" && a.Host != "0" || a.IsHostGateway()
}
