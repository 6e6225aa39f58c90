package detect

import (
	"net/netip"
	"time"
)

// The format is documented field by field in docs/inventory.md.

// InventoryVersion is the version of the inventory JSON format written by
// `unhost detect` and read by `unhost migrate --inventory`. Bump it when a
// field changes meaning; readers refuse versions they do not know.
const InventoryVersion = 1

// Inventory is what detection observed of one running Compose project (or
// swarm stack). It is plain data: every field is JSON-serialisable, and lists
// are sorted so that two observations of the same state compare equal.
type Inventory struct {
	Version    int       `json:"version"`
	Project    string    `json:"project"`
	ObservedAt time.Time `json:"observed_at"`
	// Method says how connections were seen: MethodProcfs (socket tables
	// sampled) or MethodEBPF (every TCP state change over a window).
	Method   string `json:"method"`
	Samples  int    `json:"samples"`
	Interval string `json:"interval"`
	// Duration is the length of the observation window (Go duration), set
	// when detect watched for a window (--duration), whatever the method.
	// When Partial is true, it is how long was actually watched.
	Duration string `json:"duration,omitempty"`
	// Partial is true when the window was cut short (Ctrl-C).
	Partial bool `json:"partial,omitempty"`
	// Services are sorted by name.
	Services []ServiceObservation `json:"services"`
	// Edges are client -> server connections seen between services of the
	// project, sorted by (from, to, port, protocol).
	Edges []Edge `json:"edges"`
	// Warnings are things the reader should know, e.g. sockets that could
	// not be attributed.
	Warnings []string `json:"warnings,omitempty"`
}

// ServiceObservation is what one service's containers were seen doing.
type ServiceObservation struct {
	Service    string   `json:"service"`
	Containers []string `json:"containers"`
	// NetworkMode is the container's HostConfig.NetworkMode: "host",
	// "service:NAME"/"container:ID" or a bridge network name.
	NetworkMode string `json:"network_mode"`
	// Listeners are TCP listening sockets and bound UDP sockets, sorted by
	// (protocol, port, address).
	Listeners []Listener `json:"listeners"`
	// Published are ports Docker publishes for bridge containers.
	Published []Published `json:"published,omitempty"`
	// OutsideClients lists ports of this service that had connections from
	// peers outside the project (another host, or a host process that is not
	// a container of the project).
	OutsideClients []OutsideClient `json:"outside_clients,omitempty"`
	// RecentClients (procfs only) lists ports of this service with closed
	// connections still in TIME_WAIT: the port was used in the last minute
	// or so, by a client that can no longer be identified.
	RecentClients []OutsideClient `json:"recent_clients,omitempty"`
}

// Listener is one listening socket.
type Listener struct {
	Protocol string `json:"protocol"` // "tcp" or "udp"
	// Address is the bind address as text: "0.0.0.0", "127.0.0.1", "::",
	// "::1", or a specific address. IPv4-mapped IPv6 addresses are unmapped.
	Address string `json:"address"`
	Port    int    `json:"port"`
	// DualStack is true for a "::" listener that also serves IPv4.
	DualStack bool   `json:"dual_stack,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Process   string `json:"process,omitempty"`
}

// Published is a port mapping from Docker's port table.
type Published struct {
	Protocol      string `json:"protocol"`
	HostIP        string `json:"host_ip"`
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
}

// Edge is a connection from a client service to a server service's port.
type Edge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	// Via is how the client addressed the server: "loopback", "host-address"
	// or "gateway".
	Via string `json:"via"`
	// Count is the number of distinct connections seen; FirstSeen and
	// LastSeen when the first and the last were seen (established, for
	// method ebpf; sampled, for procfs).
	Count     int       `json:"count,omitempty"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
}

// OutsideClient records that a port had clients from outside the project.
type OutsideClient struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	// Peers are the remote addresses seen (without ports), sorted.
	Peers []string `json:"peers"`
	// Count is the number of distinct connections seen, and Classes how
	// many of them came from each class of peer address: "loopback",
	// "private" (RFC 1918, unique local, link-local) or "public".
	Count     int            `json:"count,omitempty"`
	Classes   map[string]int `json:"classes,omitempty"`
	FirstSeen time.Time      `json:"first_seen,omitzero"`
	LastSeen  time.Time      `json:"last_seen,omitzero"`
}

// Methods of observation.
const (
	// MethodProcfs: socket tables of /proc/PID/net read at sample times,
	// attributed by fd inode.
	MethodProcfs = "procfs"
	// MethodEBPF: every TCP connection established during the window,
	// from the tracepoint sock:inet_sock_set_state.
	MethodEBPF = "ebpf"
)

// AddressClass is "loopback", "private" (RFC 1918, unique local, link-local,
// shared address space) or "public".
func AddressClass(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(), a.IsLinkLocalUnicast(), cgnat.Contains(a):
		return "private"
	default:
		return "public"
	}
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")
