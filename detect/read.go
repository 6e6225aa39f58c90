package detect

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Sort puts every list of the inventory in its documented order, so that two
// observations of the same state marshal to the same bytes.
func (inv *Inventory) Sort() {
	slices.SortFunc(inv.Services, func(a, b ServiceObservation) int { return strings.Compare(a.Service, b.Service) })
	for i := range inv.Services {
		s := &inv.Services[i]
		slices.Sort(s.Containers)
		slices.SortFunc(s.Listeners, func(a, b Listener) int {
			return cmp.Or(strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port), strings.Compare(a.Address, b.Address), cmp.Compare(a.PID, b.PID))
		})
		slices.SortFunc(s.Published, func(a, b Published) int {
			return cmp.Or(strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.HostPort, b.HostPort), strings.Compare(a.HostIP, b.HostIP), cmp.Compare(a.ContainerPort, b.ContainerPort))
		})
		for _, l := range [][]OutsideClient{s.OutsideClients, s.RecentClients} {
			slices.SortFunc(l, func(a, b OutsideClient) int {
				return cmp.Or(strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
			})
			for j := range l {
				slices.Sort(l[j].Peers)
			}
		}
	}
	slices.SortFunc(inv.Edges, func(a, b Edge) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol), strings.Compare(a.Via, b.Via))
	})
	slices.Sort(inv.Warnings)
}

// ReadInventory reads an inventory written by `unhost detect` (one JSON
// object, or an array holding exactly one) and refuses versions it does not
// know.
func ReadInventory(path string) (*Inventory, error) {
	invs, err := ReadInventories(path)
	if err != nil {
		return nil, err
	}
	if len(invs) != 1 {
		return nil, fmt.Errorf("%s holds %d projects; detect one project per file", path, len(invs))
	}
	return invs[0], nil
}

// ReadInventories reads a file with one inventory object or an array of
// them (what `unhost detect` writes for several projects).
func ReadInventories(path string) ([]*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	invs, err := ParseInventories(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return invs, nil
}

// ParseInventories parses one inventory object or an array of them, checking
// each one's version.
func ParseInventories(data []byte) ([]*Inventory, error) {
	trimmed := bytes.TrimSpace(data)
	var raws []json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("parse inventory: %w", err)
		}
	} else {
		raws = []json.RawMessage{trimmed}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("parse inventory: empty list")
	}
	var invs []*Inventory
	for _, r := range raws {
		var probe struct {
			Version *int `json:"version"`
		}
		if err := json.Unmarshal(r, &probe); err != nil {
			return nil, fmt.Errorf("parse inventory: %w", err)
		}
		if probe.Version == nil {
			return nil, fmt.Errorf("parse inventory: no version field")
		}
		if *probe.Version != InventoryVersion {
			return nil, fmt.Errorf("inventory version %d is not supported (this unhost reads version %d)", *probe.Version, InventoryVersion)
		}
		inv := &Inventory{}
		dec := json.NewDecoder(bytes.NewReader(r))
		if err := dec.Decode(inv); err != nil {
			return nil, fmt.Errorf("parse inventory: %w", err)
		}
		if inv.Project == "" {
			return nil, fmt.Errorf("parse inventory: no project")
		}
		invs = append(invs, inv)
	}
	return invs, nil
}

// WriteJSON writes invs as indented JSON: one object for one inventory, an
// array for several.
func WriteJSON(w io.Writer, invs []*Inventory) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(invs) == 1 {
		return enc.Encode(invs[0])
	}
	return enc.Encode(invs)
}

// WriteText writes a human-readable summary of invs.
func WriteText(w io.Writer, invs []*Inventory) error {
	var b strings.Builder
	for i, inv := range invs {
		if i > 0 {
			b.WriteString("\n")
		}
		how := fmt.Sprintf("%d samples every %s", inv.Samples, inv.Interval)
		if inv.Duration != "" {
			how = fmt.Sprintf("watched %s with %s", inv.Duration, inv.Method)
			if inv.Method == MethodProcfs {
				how += fmt.Sprintf(", %d samples every %s", inv.Samples, inv.Interval)
			}
			if inv.Partial {
				how += ", interrupted: partial"
			}
		}
		fmt.Fprintf(&b, "project %s (observed %s, %s)\n", inv.Project, inv.ObservedAt.Format("2006-01-02T15:04:05Z07:00"), how)
		for _, s := range inv.Services {
			fmt.Fprintf(&b, "  service %s  network_mode=%s  containers=%s\n", s.Service, s.NetworkMode, strings.Join(s.Containers, ","))
			for _, l := range s.Listeners {
				ds := ""
				if l.DualStack {
					ds = " (dual-stack)"
				}
				fmt.Fprintf(&b, "    listen %s %s%s  pid %d %s\n", l.Protocol, hostPort(l.Address, l.Port), ds, l.PID, l.Process)
			}
			for _, p := range s.Published {
				fmt.Fprintf(&b, "    published %s %s -> %d\n", p.Protocol, hostPort(p.HostIP, p.HostPort), p.ContainerPort)
			}
			for _, o := range s.OutsideClients {
				fmt.Fprintf(&b, "    outside clients on %s/%d: %s%s\n", o.Protocol, o.Port, strings.Join(o.Peers, ", "), countText(o.Count))
			}
			for _, o := range s.RecentClients {
				fmt.Fprintf(&b, "    recently used (TIME_WAIT) %s/%d from: %s%s\n", o.Protocol, o.Port, strings.Join(o.Peers, ", "), countText(o.Count))
			}
		}
		for _, e := range inv.Edges {
			fmt.Fprintf(&b, "  edge %s -> %s:%d/%s via %s%s\n", e.From, e.To, e.Port, e.Protocol, e.Via, countText(e.Count))
		}
		for _, wn := range inv.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", wn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// countText is " (N connections)", or nothing when no count is known.
func countText(n int) string {
	switch {
	case n == 1:
		return " (1 connection)"
	case n > 1:
		return fmt.Sprintf(" (%d connections)", n)
	}
	return ""
}

func hostPort(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	if addr == "" {
		addr = "*"
	}
	return fmt.Sprintf("%s:%d", addr, port)
}
