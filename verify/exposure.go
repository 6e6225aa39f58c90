package verify

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// CheckExposure compares a port's reach with the original and the plan.
const CheckExposure = "exposure"

// ExposureRow is one port of the before/plan/now table.
type ExposureRow struct {
	Service  string `json:"service"`
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	Before   string `json:"before"`
	Plan     string `json:"plan"`
	Now      string `json:"now"`
	Status   Status `json:"status"`
	Reason   string `json:"reason"`
}

// reach is how far a port can be reached from, and on which host port.
type reach struct {
	rank     int    // 0 stack-internal, 1 loopback, 2 one address, 3 all interfaces
	addr     string // the host address, for rank 2
	hostPort int
	assumed  bool // the bind address is not known: all interfaces assumed
}

func (r reach) String() string {
	var s string
	switch r.rank {
	case 0:
		return plan.ReachInternal
	case 1:
		s = plan.ReachLoopback
	case 2:
		s = r.addr
	default:
		s = plan.ReachAll
	}
	s += ":" + strconv.Itoa(r.hostPort)
	if r.assumed {
		s += " (assumed)"
	}
	return s
}

func reachOf(addr string, hostPort int) reach {
	a := strings.Trim(addr, "[]")
	switch {
	case analysis.IsBindAll(a):
		return reach{rank: 3, hostPort: hostPort}
	case analysis.IsLoopback(a):
		return reach{rank: 1, hostPort: hostPort}
	}
	if ip, err := netip.ParseAddr(a); err == nil && ip.IsUnspecified() {
		return reach{rank: 3, hostPort: hostPort}
	}
	return reach{rank: 2, addr: a, hostPort: hostPort}
}

type portKey struct {
	service, proto string
	port           int
}

// exposureOf is how far each port of the project's services reaches on the
// host: host-network services' listeners (by bind address), and the
// published ports of the others.
func exposureOf(facts *analysis.Facts, p *types.Project) map[portKey]reach {
	out := map[portKey]reach{}
	set := func(k portKey, r reach) {
		if old, ok := out[k]; !ok || r.rank > old.rank {
			out[k] = r
		}
	}
	keys := analysis.ProjectHostNetworkKeys(p)
	for name, s := range p.Services {
		if analysis.OnHostNetwork(s, keys) {
			sf := facts.Services[name]
			if sf == nil {
				continue
			}
			for _, l := range sf.Listeners {
				end := max(l.Port, l.PortEnd)
				if end-l.Port > 100 {
					end = l.Port
				}
				for q := l.Port; q <= end; q++ {
					r := reachOf(l.Address, q)
					r.assumed = l.Address == ""
					set(portKey{name, protoOr(strings.ToLower(l.Protocol)), q}, r)
				}
			}
			continue
		}
		for _, pt := range s.Ports {
			hp, err := strconv.Atoi(pt.Published)
			if err != nil {
				hp = 0 // ephemeral or a range: the host port is not fixed
			}
			set(portKey{name, protoOr(pt.Protocol), int(pt.Target)}, reachOf(pt.HostIP, hp))
		}
	}
	return out
}

// planDecision is what the plan decided for a port.
type planDecision struct {
	internal bool
	reach    reach
	reason   string
}

func planDecisions(p *plan.Plan) map[portKey]planDecision {
	out := map[portKey]planDecision{}
	if p == nil {
		return out
	}
	for _, s := range p.Services {
		for _, l := range s.Listeners {
			if l.Decision != plan.DecisionPublish && l.Decision != plan.DecisionInternal {
				continue
			}
			end := max(l.Port, l.PortEnd)
			if end-l.Port > 100 {
				end = l.Port
			}
			for q := l.Port; q <= end; q++ {
				d := planDecision{internal: l.Decision == plan.DecisionInternal, reason: l.Reason}
				if !d.internal {
					d.reach = publishReach(l.Publish, q)
				}
				out[portKey{s.Name, protoOr(strings.ToLower(l.Protocol)), q}] = d
			}
		}
	}
	return out
}

// publishReach reads a ports: entry as the plan writes it:
// [HOST_IP:]HOST_PORT:TARGET[/proto].
func publishReach(spec string, target int) reach {
	spec, _, _ = strings.Cut(spec, "/")
	parts := strings.Split(spec, ":")
	host, hp := "", target
	switch {
	case len(parts) >= 3:
		host = strings.Join(parts[:len(parts)-2], ":")
		hp, _ = strconv.Atoi(parts[len(parts)-2])
	case len(parts) == 2:
		hp, _ = strconv.Atoi(parts[0])
	}
	return reachOf(host, hp)
}

// compareExposure compares the migrated files' published ports with the
// originals (--original, else the files the plan names) and the plan's
// decisions: nothing reaches wider than before; what was reachable before,
// or what the plan publishes, is published with the reach the plan
// decided; a port is narrower than before only where the plan decided so.
func compareExposure(ctx context.Context, opts Options, st *stack, p *plan.Plan) ([]ExposureRow, string, error) {
	files := opts.Originals
	if len(files) == 0 && p != nil {
		verified := map[string]bool{}
		for _, f := range st.Project.ComposeFiles {
			if abs, err := filepath.Abs(f); err == nil {
				verified[abs] = true
			}
		}
		for _, f := range p.Files {
			if !filepath.IsAbs(f) && opts.PlanFile != "" {
				if _, err := os.Stat(f); err != nil {
					f = filepath.Join(filepath.Dir(opts.PlanFile), f)
				}
			}
			if abs, err := filepath.Abs(f); err == nil && verified[abs] {
				// migrate --write rewrote them: they are not the originals.
				return nil, "exposure was not checked: the plan's files are the files verified here (rewritten in place); give the files before migration with --original", nil
			}
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, "exposure was not checked: give the files before migration with --original (or a plan that names them with --plan)", nil
	}
	orig, err := loadStack(ctx, loadOptions{Files: files, EnvFiles: opts.EnvFiles, Profiles: opts.Profiles})
	if err != nil {
		if len(opts.Originals) == 0 {
			return nil, fmt.Sprintf("exposure was not checked: the plan's original files do not load (%v): give them with --original", err), nil
		}
		return nil, "", fmt.Errorf("--original: %w", err)
	}
	before := exposureOf(orig.Facts, orig.Project)
	now := exposureOf(st.Facts, st.Project)
	decided := planDecisions(p)
	keys := map[portKey]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	for k := range decided {
		keys[k] = true
	}
	var rows []ExposureRow
	for k := range keys {
		b, hadB := before[k]
		n, hasN := now[k]
		d, hasD := decided[k]
		row := ExposureRow{Service: k.service, Protocol: k.proto, Port: k.port, Before: plan.ReachInternal, Now: plan.ReachInternal, Plan: "-", Status: Pass}
		if hadB {
			row.Before = b.String()
		}
		if hasN {
			row.Now = n.String()
		}
		if hasD {
			if d.internal {
				row.Plan = plan.ReachInternal
			} else {
				row.Plan = d.reach.String()
			}
		}
		fail := func(format string, args ...any) {
			if row.Status != Fail {
				row.Status, row.Reason = Fail, fmt.Sprintf("%s %d/%s: ", k.service, k.port, k.proto)+fmt.Sprintf(format, args...)
			}
		}
		switch {
		case n.rank > b.rank:
			fail("reachable wider now (%s) than before (%s)", row.Now, row.Before)
		case hasD && !d.internal && (n.rank != d.reach.rank || n.rank == 2 && n.addr != d.reach.addr):
			fail("the plan publishes it on %s, but now it is %s", row.Plan, row.Now)
		case hasD && d.internal && n.rank > 0:
			fail("the plan keeps it inside the stack, but now it is published on %s", row.Now)
		case b.rank > 0 && n.rank < b.rank && !hasD:
			fail("reachable on %s before, %s now, and no plan records that decision (give --plan, or publish it)", row.Before, row.Now)
		case b.rank > 0 && n.rank > 0 && b.hostPort != 0 && n.hostPort != 0 && n.hostPort != b.hostPort && !hasD:
			fail("reachable on host port %d before, %d now: its clients would not find it", b.hostPort, n.hostPort)
		}
		if row.Status == Pass {
			switch {
			case n.rank < b.rank:
				row.Reason = fmt.Sprintf("narrower than before, as the plan decided: %s", d.reason)
			case n.rank == b.rank && n.rank > 0:
				row.Reason = "reachable as before"
			case n.rank == 0 && b.rank == 0:
				row.Reason = "inside the stack, as before"
			default:
				row.Reason = "as the plan decided"
			}
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
	return rows, "", nil
}
