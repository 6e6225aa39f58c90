package migrate

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

// Publication policies.
const (
	PolicyAuto = "auto"
	PolicyAll  = "all"
	PolicyNone = "none"
)

// Options steer a migration.
type Options struct {
	Policy string // auto (default), all, none
	// Publish are SERVICE:PORT[/proto] entries that are always published.
	Publish []PortRef
	// PublishAddress, when set, publishes ports that would be published on
	// all interfaces on this address instead.
	PublishAddress string
	// Selected limits which services are migrated (from --profile); nil
	// means all.
	Selected map[string]bool
	// Force migrates these services even when they seem to need the host
	// network.
	Force map[string]bool
	// Inventory is runtime evidence; it overrides static guesses.
	Inventory *detect.Inventory
	// Committed is the inventory committed next to the compose files
	// (FindInventory, ReadCommittedInventory): used when Inventory is nil
	// and it is not stale (inventory.go).
	Committed *CommittedInventory
	// NoOutbound names the services an observation found making no
	// connection outside the stack (detect, over its window): only those
	// may go on an internal network, which has no route out (depnetworks.go).
	NoOutbound map[string]bool
	// LoopbackIPv6, when the engine has IPv6, publishes every port
	// published on 127.0.0.1 on [::1] too (publish.go).
	LoopbackIPv6 bool
	// Images tells exposed ports of local images; nil when no engine.
	Images analysis.ImageInspector
	// Target is "bridge", "swarm", or "" to choose: swarm when the files
	// attach the external host network or carry deploy: sections.
	Target plan.Target
	// PublishMode is the swarm publish mode: ingress (default) or host.
	PublishMode string
	// EndpointMode, when set, is written as deploy.endpoint_mode (vip or
	// dnsrr) of every migrated service (swarm).
	EndpointMode string
	// WorkDir is the folder paths are shown relative to; default ".".
	WorkDir string
	// ComposeCommand is how the runbook invokes compose, e.g.
	// "docker compose -f compose.yaml".
	ComposeCommand string
}

// PortRef is SERVICE:PORT[/proto].
type PortRef struct {
	Service  string
	Port     int
	Protocol string
}

// ParsePortRef parses SERVICE:PORT[/proto].
func ParsePortRef(s string) (PortRef, error) {
	svc, p, ok := strings.Cut(s, ":")
	if !ok || svc == "" || p == "" {
		return PortRef{}, fmt.Errorf("%q: want SERVICE:PORT", s)
	}
	proto := "tcp"
	if pp, pr, ok := strings.Cut(p, "/"); ok {
		p, proto = pp, strings.ToLower(pr)
		if proto != "tcp" && proto != "udp" {
			return PortRef{}, fmt.Errorf("%q: protocol must be tcp or udp", s)
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return PortRef{}, fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	}
	return PortRef{Service: svc, Port: n, Protocol: proto}, nil
}

// listener is a planning view of a port a migrated service listens on.
type listener struct {
	proto         string
	port, portEnd int
	addr          string
	assumed       bool
	runtime       bool
	outside       bool // signs of outside clients
	outsideWhy    string
	publishHint   string // host_ip of an ignored ports: entry
	evidence      []analysis.Evidence
	bind          *analysis.StaticListener // literal loopback bind, if any
	via           string
	usedBy        map[string]bool // services of the stack using it
	decision      plan.Decision
	why           string
	publishIP     string
	rewriteBind   bool
	blocker       string
	narrow        bool // published on loopback only, narrower than before (publish.go)
}

func (l *listener) count() int {
	if l.portEnd > l.port {
		return l.portEnd - l.port + 1
	}
	return 1
}

func (l *listener) covers(proto string, port int) bool {
	if proto != "" && l.proto != proto {
		return false
	}
	if l.portEnd > l.port {
		return port >= l.port && port <= l.portEnd
	}
	return l.port == port
}

// svc is a planning view of one service.
type svc struct {
	facts       *analysis.ServiceFacts
	name        string
	action      plan.Action
	reason      string
	evidence    []analysis.Evidence
	listeners   []*listener
	follows     string // for network_mode: service:X
	external    bool
	externalWhy string
	networks    []string
	netReason   string
	hostRefs    bool   // references a host service: needs extra_hosts
	finding     string // why it is kept, for the plan (gate.go)
}

type planner struct {
	c     *load.Compose
	all   map[string]types.ServiceConfig // c.Project.AllServices(), which builds a new map each call
	facts *analysis.Facts
	opts  Options
	svcs  map[string]*svc
	names []string
	pos   map[string]int // index of each service in names
	plan  *plan.Plan
	// decided by the steps, carried out by the edits
	rewrites []refRewrite
	binds    []*listener
	pins     []pin
	usageErr error // a usage error found while deciding (gate.go)
	// followers indexes network_mode: service:X by X (followersOf)
	followers map[string][]string
	clashed   bool // two services hold one host port: write nothing (clash.go)
	// ambiguous references name one of several siblings (siblings.go)
	ambiguous map[*analysis.AddressRef][]string
	// indexes the steps keep
	ownIdx   *ownerIndex
	refSeen  map[refKey]bool
	warnSeen map[string]bool
	nodes    map[string][]load.NodeRef
}

// anyFileHas reports whether the text of any file holds s: a cheap test
// that lets a step skip what cannot apply (no "$": no variable; no "<<"
// and no "extends": no shared definition).
func (p *planner) anyFileHas(s string) bool {
	for _, f := range p.c.Files {
		if bytes.Contains(f.Data, []byte(s)) {
			return true
		}
	}
	return false
}

// serviceNodes is load's ServiceNodes, looked up once per service (each
// lookup walks the files' services: mappings).
func (p *planner) serviceNodes(name string) []load.NodeRef {
	nr, ok := p.nodes[name]
	if !ok {
		nr = p.c.ServiceNodes(name)
		p.nodes[name] = nr
	}
	return nr
}

// refRewrite is a reference to rewrite in a scalar.
type refRewrite struct {
	ref *analysis.AddressRef
	to  string // replacement token
}

func (p *planner) migrated(name string) bool {
	s := p.svcs[name]
	return s != nil && s.action == plan.ActionMigrate
}

// onHostBefore reports whether the service sees the host's network stack
// before the migration (directly or by following a service that does).
func (p *planner) onHostBefore(name string) bool {
	s := p.svcs[p.netOwner(name)]
	return s != nil && s.facts.HostNetwork()
}

// onHostAfter reports whether the service is on the host network after the
// migration (directly or by following a service that is).
func (p *planner) onHostAfter(name string) bool {
	return p.onHostBefore(name) && !p.migrated(p.netOwner(name))
}

// netOwner returns the service whose network namespace name uses.
func (p *planner) netOwner(name string) string {
	for i := 0; i < 10; i++ {
		s := p.svcs[name]
		if s == nil || s.follows == "" {
			return name
		}
		name = s.follows
	}
	return name
}

// Migrate computes the migration plan and the edits. It runs in steps,
// each deciding from what the ones before decided:
//
//  1. evidence: the listeners of every host-network service (static facts,
//     then the inventory), and which services move (evidence.go);
//  2. references: what each address in configuration points at, and which
//     are rewritten (references.go, outside.go);
//  3. publication: which listeners are published, where (publication.go);
//  4. networks: which networks each migrated service joins, and which
//     services that stay must now say network_mode: host themselves
//     (networks.go, pins.go).
//
// The plan is then complete (finish.go), and only then is text edited
// (rewrite.go): what the edits cannot do comes back as their own list,
// recorded in the plan as blockers and manual steps.
func Migrate(c *load.Compose, opts Options) (*Result, error) {
	p, err := newPlanner(c, opts)
	if err != nil {
		return nil, err
	}
	if err := p.evidence(); err != nil {
		return nil, err
	}
	p.references()
	if err := p.publication(); err != nil {
		return nil, err
	}
	if err := p.networks(); err != nil {
		return nil, err
	}
	p.finish()
	// 5. edits
	files, failures, err := p.buildEdits()
	if err != nil {
		return nil, err
	}
	p.recordEditFailures(failures)
	if p.clashed { // a file with a port clash is never written (clash.go)
		files = nil
	}
	restoreEdited(p.plan, files)
	p.plan.Changed = len(files) > 0
	return &Result{Plan: p.plan, Files: files, Facts: p.facts}, nil
}

// evidence is step 1: the listeners of every host-network service
// (a committed inventory, static facts, then the inventory given), and
// which services move (evidence.go, gate.go).
func (p *planner) evidence() error {
	p.useCommitted()
	p.gatherListeners()
	p.applyInventory()
	p.supplementFacts() // facts the analysis does not give yet (binds.go)
	p.decideServices()
	return p.usageErr // --force without evidence (gate.go)
}

// references is step 2: what each address in configuration points at.
func (p *planner) references() {
	p.resolveReferences()
	p.resolveOutside()
}

// publication is step 3: which listeners are published, and where; the
// reach invariant is checked on its result.
func (p *planner) publication() error {
	if err := p.decidePublication(); err != nil {
		return err
	}
	return p.checkReach()
}

// networks is step 4: the networks each migrated service joins, and the
// services that must now say network_mode: host themselves.
func (p *planner) networks() error {
	p.decideNetworks()
	p.joinDependencyNetworks() // depends_on networks (depnetworks.go)
	return p.decidePins()
}

// newPlanner settles the options and the services' planning views.
func newPlanner(c *load.Compose, opts Options) (*planner, error) {
	if opts.Policy == "" {
		opts.Policy = PolicyAuto
	}
	p := &planner{c: c, all: c.Project.AllServices(), svcs: map[string]*svc{}, pos: map[string]int{}, refSeen: map[refKey]bool{}, warnSeen: map[string]bool{}, nodes: map[string][]load.NodeRef{}}
	p.facts = analysis.Analyze(c, opts.Images)
	if opts.Target == "" {
		opts.Target = plan.TargetBridge
		if analysis.IsSwarm(c) {
			opts.Target = plan.TargetSwarm
		}
	}
	if opts.Target == plan.TargetSwarm && opts.PublishMode == "" {
		opts.PublishMode = "ingress"
	}
	p.opts = opts
	p.plan = &plan.Plan{Version: plan.Version, Project: c.Project.Name, Target: opts.Target, Policy: opts.Policy,
		PublishAddress: opts.PublishAddress, Evidence: plan.EvidenceStatic, ImageMetadata: p.facts.ImageMetadata}
	for _, f := range c.Files {
		p.plan.Files = append(p.plan.Files, f.Path)
	}
	p.names = p.facts.Names()
	for i, n := range p.names {
		f := p.facts.Services[n]
		s := &svc{facts: f, name: n, action: plan.ActionUnchanged}
		if strings.HasPrefix(f.NetworkMode, "service:") {
			s.follows = strings.TrimPrefix(f.NetworkMode, "service:")
		}
		p.svcs[n] = s
		p.pos[n] = i
	}
	if err := p.checkOptions(); err != nil {
		return nil, err
	}
	for _, w := range c.Warnings {
		p.warn(w)
	}
	for _, v := range c.Unset {
		p.warn(fmt.Sprintf("variable %s is unset: analysed with a placeholder; its ${...} text is kept as written", v))
	}
	return p, nil
}

// warn adds a warning once, redacted.
func (p *planner) warn(s string) {
	s = Redact(s)
	if p.warnSeen[s] {
		return
	}
	p.warnSeen[s] = true
	p.plan.Warnings = append(p.plan.Warnings, s)
}

// UsageError is an error in what the user asked for (exit 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func (p *planner) swarm() bool { return p.opts.Target == plan.TargetSwarm }

func (p *planner) checkOptions() error {
	if p.swarm() && p.opts.PublishAddress != "" {
		return &UsageError{"--publish-address: swarm publishes on every node address (it ignores host_ip); use --publish-mode host and the nodes' firewalls instead"}
	}
	if p.swarm() && p.opts.EndpointMode == "dnsrr" && p.opts.PublishMode != "host" {
		return &UsageError{"--endpoint-mode dnsrr cannot serve ports published through the ingress routing mesh: add --publish-mode host"}
	}
	if !p.swarm() && (p.opts.EndpointMode != "" || p.opts.PublishMode != "") {
		return &UsageError{"--endpoint-mode and --publish-mode are for --target swarm"}
	}
	// --publish and --force naming no service are the command's to
	// report (it knows every project of --all); what is checked here
	// depends on the target, which may have been chosen from the files
	return nil
}
