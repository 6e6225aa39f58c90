package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/load"
)

// A committed inventory (issue 10, "Evidence committed next to the
// files"): what `unhost detect` observed on the production host, committed
// as .unhost/inventory.json next to the compose files, so that a bot with
// neither Docker nor secrets has runtime evidence. It is untrusted input,
// like the files: read bounded, validated, its peers reduced to address
// classes, checked against the services it was taken from (stale when they
// changed), and it never makes a port reachable wider than the service's
// own bind allowed (capInventoryReach).

// InventoryPath is where a committed inventory lives, relative to the
// folder of the compose files.
const InventoryPath = ".unhost/inventory.json"

// Bounds of a committed inventory.
const (
	maxInventoryBytes     = 4 << 20
	maxInventoryServices  = 1000
	maxInventoryListeners = 4096
	maxInventoryEdges     = 100000
)

// Peer address classes: a committed inventory stores these, never
// addresses.
var peerClasses = map[string]bool{"loopback": true, "private": true, "public": true, "link-local": true}

// InventorySource is what an inventory was taken from. detect writes it as
// the inventory's "source" key (a field the detect package adds; read here
// from the raw JSON until then).
type InventorySource struct {
	// ServicesHash is ServicesHash of the project detect observed.
	ServicesHash string `json:"services_hash"`
	// Images are the image IDs of the observed services' containers.
	Images map[string]string `json:"images,omitempty"`
}

// CommittedInventory is a committed inventory, checked.
type CommittedInventory struct {
	Path      string
	Inventory *detect.Inventory
	// Stale says why the inventory does not describe these files ("" when
	// it does); a stale inventory is not used as evidence.
	Stale string
	// Warnings are what validation changed or could not check.
	Warnings []string
}

// FindInventory returns the committed inventory next to the compose files
// in dir, or "" when there is none. A symlink is not followed out of dir.
func FindInventory(dir string) (string, error) {
	p := filepath.Join(dir, InventoryPath)
	fi, err := os.Lstat(p)
	switch {
	case os.IsNotExist(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("%s: %w", p, err)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s: not a regular file", p)
	}
	return p, nil
}

// ReadCommittedInventory reads and checks the inventory at path against
// the loaded project.
func ReadCommittedInventory(path string, c *load.Compose) (*CommittedInventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInventoryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	if len(data) > maxInventoryBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes: not an inventory unhost reads", path, maxInventoryBytes)
	}
	return checkInventory(path, data, ServicesHash(c))
}

// checkInventory parses and validates a committed inventory; hash is the
// ServicesHash of the files it is to describe.
func checkInventory(path string, data []byte, hash string) (*CommittedInventory, error) {
	invs, err := detect.ParseInventories(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(invs) != 1 {
		return nil, fmt.Errorf("%s: holds %d projects; commit one inventory per project", path, len(invs))
	}
	inv := invs[0]
	ci := &CommittedInventory{Path: path, Inventory: inv}
	if err := validateInventory(inv); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ci.Warnings = append(ci.Warnings, classifyPeers(inv)...)
	var raw struct {
		Source *InventorySource `json:"source"`
	}
	_ = json.Unmarshal(data, &raw) // checked by ParseInventories already
	switch {
	case raw.Source == nil || raw.Source.ServicesHash == "":
		ci.Stale = "it does not record what it was taken from (no source.services_hash): regenerate it with `unhost detect`"
	case raw.Source.ServicesHash != hash:
		ci.Stale = fmt.Sprintf("it was taken from other service definitions (%s, the files now give %s): run `unhost detect` again after deploying them", short(raw.Source.ServicesHash), short(hash))
	}
	return ci, nil
}

func short(h string) string {
	if len(h) > 19 {
		return h[:19]
	}
	return h
}

// validateInventory checks every field against its bounds.
func validateInventory(inv *detect.Inventory) error {
	if len(inv.Services) > maxInventoryServices {
		return fmt.Errorf("%d services: more than %d", len(inv.Services), maxInventoryServices)
	}
	if len(inv.Edges) > maxInventoryEdges {
		return fmt.Errorf("%d edges: more than %d", len(inv.Edges), maxInventoryEdges)
	}
	port := func(p int) bool { return p >= 1 && p <= 65535 }
	proto := func(p string) bool { return p == "tcp" || p == "udp" }
	for _, s := range inv.Services {
		if s.Service == "" || len(s.Service) > 255 {
			return fmt.Errorf("a service without a valid name")
		}
		if len(s.Listeners) > maxInventoryListeners {
			return fmt.Errorf("service %s: %d listeners: more than %d", s.Service, len(s.Listeners), maxInventoryListeners)
		}
		for _, l := range s.Listeners {
			if !port(l.Port) || !proto(l.Protocol) {
				return fmt.Errorf("service %s: listener %s %d: want tcp or udp and a port from 1 to 65535", s.Service, l.Protocol, l.Port)
			}
			if _, err := netip.ParseAddr(strings.Trim(l.Address, "[]")); err != nil {
				return fmt.Errorf("service %s: listener address %q: not an IP address", s.Service, l.Address)
			}
		}
		for _, oc := range s.OutsideClients {
			if !port(oc.Port) || !proto(oc.Protocol) {
				return fmt.Errorf("service %s: outside clients of %s %d: want tcp or udp and a port from 1 to 65535", s.Service, oc.Protocol, oc.Port)
			}
		}
	}
	for _, e := range inv.Edges {
		if !port(e.Port) || !proto(e.Protocol) || e.From == "" || e.To == "" {
			return fmt.Errorf("edge %s -> %s %s %d: want two services, tcp or udp and a port from 1 to 65535", e.From, e.To, e.Protocol, e.Port)
		}
	}
	return nil
}

// classifyPeers reduces the outside clients' peers to address classes, in
// place: a committed file must not carry client addresses.
func classifyPeers(inv *detect.Inventory) []string {
	var warnings []string
	for i := range inv.Services {
		for j := range inv.Services[i].OutsideClients {
			oc := &inv.Services[i].OutsideClients[j]
			seen := map[string]bool{}
			var out []string
			addrs := false
			for _, p := range oc.Peers {
				c := p
				if !peerClasses[p] {
					c = addressClass(p)
					addrs = true
				}
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
			sort.Strings(out)
			oc.Peers = out
			if addrs {
				warnings = append(warnings, fmt.Sprintf("inventory: %s port %d lists client addresses: read as address classes only (commit inventories with classes, not addresses)", inv.Services[i].Service, oc.Port))
			}
		}
	}
	return warnings
}

// addressClass is the class of a peer address: loopback, private,
// link-local or public ("unknown" when it is not an address).
func addressClass(s string) string {
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "unknown"
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	}
	return "public"
}

// ServicesHash identifies the resolved service definitions an inventory
// describes: a SHA-256 over each service's name, image, network mode,
// ports, expose, command, entrypoint and environment, in name order.
// detect records it as source.services_hash when it writes an inventory
// to commit.
func ServicesHash(c *load.Compose) string {
	all := c.Project.AllServices()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	type entry struct {
		Name        string            `json:"name"`
		Image       string            `json:"image"`
		NetworkMode string            `json:"network_mode"`
		Ports       any               `json:"ports"`
		Expose      []string          `json:"expose"`
		Command     []string          `json:"command"`
		Entrypoint  []string          `json:"entrypoint"`
		Environment map[string]string `json:"environment"`
	}
	var list []entry
	for _, n := range names {
		s := all[n]
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			} else {
				env[k] = ""
			}
		}
		list = append(list, entry{n, s.Image, s.NetworkMode, s.Ports, s.Expose, s.Command, s.Entrypoint, env})
	}
	b, _ := json.Marshal(list) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// capInventoryReach narrows observed listeners to the bind the service's
// own configuration gives (hook after planner.applyInventory): an
// inventory, committed or not, never makes a port reachable wider than
// that bind.
func (p *planner) capInventoryReach() {
	for _, n := range p.names {
		s := p.svcs[n]
		if !s.facts.HostNetwork() {
			continue
		}
		binds := commandBinds(p.c.ServiceNodes(n))
		for _, l := range s.listeners {
			if !l.runtime || !reachWider(l.addr) {
				continue
			}
			for i := range s.facts.Listeners {
				sl := &s.facts.Listeners[i]
				if sl.Port == l.port && sl.Protocol == l.proto && isBindAddress(sl.Address) && !reachWider(sl.Address) {
					p.narrowObserved(s, l, sl)
					break
				}
			}
			if reachWider(l.addr) && len(binds) == 1 {
				b := binds[0]
				b.Port = l.port
				p.narrowObserved(s, l, &b)
			}
		}
	}
}

// reachWider reports whether addr is an all-interfaces bind.
func reachWider(addr string) bool {
	return addr == "" || addr == "0.0.0.0" || addr == "::" || addr == "*"
}

func (p *planner) narrowObserved(s *svc, l *listener, sl *analysis.StaticListener) {
	p.warn(fmt.Sprintf("%s: the inventory says port %d/%s listens on %s, but its configuration binds %s (%s): the narrower bind is kept", s.name, l.port, l.proto, l.addr, sl.Address, sl.Evidence.Where))
	l.addr = sl.Address
	if sl.Node != nil {
		l.bind = sl
	}
	l.evidence = append(l.evidence, sl.Evidence)
}

// useCommitted takes a committed inventory as the runtime evidence when no
// other was given and it describes these files (hook at the start of
// Migrate, before applyInventory). The plan says which file it was and
// whether it was stale.
func (p *planner) useCommitted() {
	ci := p.opts.Committed
	if ci == nil {
		return
	}
	p.plan.InventoryFile = filepath.ToSlash(ci.Path)
	for _, w := range ci.Warnings {
		p.warn(w)
	}
	switch {
	case p.opts.Inventory != nil:
		p.warn("committed inventory " + p.plan.InventoryFile + " not used: --inventory gave one")
	case ci.Stale != "":
		p.plan.InventoryStale = ci.Stale
		p.warn("committed inventory " + p.plan.InventoryFile + " is stale and not used: " + ci.Stale)
	default:
		p.opts.Inventory = ci.Inventory
	}
}

// isBindAddress reports whether a configured address is one a socket can
// bind (an IP address or localhost), not a word the analysis took for one.
func isBindAddress(a string) bool {
	if analysis.IsLoopback(a) {
		return true
	}
	_, err := netip.ParseAddr(strings.Trim(a, "[]"))
	return err == nil
}
