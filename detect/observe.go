package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// Compose and swarm labels that identify a container's project and service.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
	LabelStackNamespace = "com.docker.stack.namespace"
	LabelSwarmService   = "com.docker.swarm.service.name"
)

// Sentinel errors. Observe wraps them with %w; test with errors.Is.
var (
	// ErrNoDaemon: no Docker engine answered.
	ErrNoDaemon = errors.New("no docker engine answers")
	// ErrPermission: other processes' /proc entries cannot be read (not
	// root, or /proc mounted with hidepid).
	ErrPermission = errors.New("cannot read other processes' sockets")
	// ErrPIDNamespace: the engine's PIDs are not processes of this PID
	// namespace (Docker Desktop's VM, a remote engine, unhost itself in a
	// container). Callers such as migrate should fall back to static
	// evidence and warn.
	ErrPIDNamespace = errors.New("engine pids are not in this pid namespace")
	// ErrNoContainers: a requested project has no running containers.
	ErrNoContainers = errors.New("no running containers")
)

// Docker is the part of the Engine API that detection uses;
// *client.Client implements it.
type Docker interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerTop(ctx context.Context, id string, args []string) (container.TopResponse, error)
}

var _ Docker = (*client.Client)(nil)

// Options configure Observe.
type Options struct {
	// Docker is the engine client. Nil means a client from the environment
	// (DOCKER_HOST etc.) with API version negotiation.
	Docker Docker
	// ProcRoot is the procfs root, "/proc" by default.
	ProcRoot string
	// CgroupRoot is where cgroup hierarchies are mounted, "/sys/fs/cgroup"
	// by default.
	CgroupRoot string
	// Projects are the Compose project (or stack) names to observe.
	Projects []string
	// All observes every project with at least one container on the host
	// network (or following one with network_mode service:/container:).
	All bool
	// Samples is how many times sockets are read (default 3), Interval the
	// pause between two samples (default 1s).
	Samples  int
	Interval time.Duration
	// Progress, if set, is called after each sample (with a Duration:
	// about every second, with seconds done and total).
	Progress func(done, total int)
	// Duration, if positive, selects watching: every TCP connection
	// established during the window is seen (MethodEBPF), or, where the
	// tracer cannot be attached, /proc is sampled every Interval for the
	// window (MethodProcfs). Samples is then ignored.
	Duration time.Duration
	// Method forces a method for a window: MethodEBPF (an error if the
	// tracer cannot be attached) or MethodProcfs. Empty: ebpf if possible.
	Method string
}

// defaults fills in defaults; the returned func releases what it created.
func (o *Options) defaults() (func(), error) {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.Samples == 0 {
		o.Samples = 3
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.Samples < 0 || o.Interval < 0 {
		return func() {}, fmt.Errorf("samples and interval must not be negative")
	}
	if o.Docker == nil {
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return func() {}, fmt.Errorf("docker client: %w: %w", ErrNoDaemon, err)
		}
		o.Docker = cli
		return func() { cli.Close() }, nil
	}
	return func() {}, nil
}

// Observe observes exactly one project (Options.Projects[0]) and returns its
// inventory.
func Observe(ctx context.Context, opts Options) (*Inventory, error) {
	if len(opts.Projects) != 1 || opts.All {
		return nil, fmt.Errorf("observe needs exactly one project, got %d", len(opts.Projects))
	}
	invs, err := ObserveAll(ctx, opts)
	if err != nil {
		return nil, err
	}
	return invs[0], nil
}

// ObserveAll observes the projects of opts (or all, with opts.All) in one
// pass of sampling and returns one inventory per project, sorted by project.
// Containers of other projects count as outside peers.
func ObserveAll(ctx context.Context, opts Options) ([]*Inventory, error) {
	switch opts.Method {
	case "", MethodProcfs, MethodEBPF:
	default:
		return nil, fmt.Errorf("unknown method %q (want %s or %s)", opts.Method, MethodEBPF, MethodProcfs)
	}
	if opts.Method == MethodEBPF && opts.Duration <= 0 {
		return nil, errors.New("method ebpf needs a duration")
	}
	release, err := opts.defaults()
	defer release()
	if err != nil {
		return nil, err
	}
	started := time.Now().UTC()
	ctrs, projects, err := discover(ctx, opts)
	if err != nil {
		return nil, err
	}
	o := newObserver(opts, ctrs)
	if err := o.prepare(ctx); err != nil {
		return nil, err
	}
	if opts.Duration > 0 {
		return o.window(ctx, projects, started)
	}
	for i := 0; i < opts.Samples; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(opts.Interval):
			}
		}
		if err := o.sample(ctx); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(i+1, opts.Samples)
		}
	}
	invs := make([]*Inventory, 0, len(projects))
	for _, p := range projects {
		inv := o.inventory(p)
		inv.ObservedAt = started.Truncate(time.Second)
		inv.Samples = opts.Samples
		inv.Interval = opts.Interval.String()
		invs = append(invs, inv)
	}
	return invs, nil
}

// ctr is one running container of interest.
type ctr struct {
	id, name         string
	project, service string
	networkMode      string // as Docker reports it
	statePid         int
	ips              []netip.Addr // addresses on its networks
	gateways         []netip.Addr
	published        []Published
	procsFile        string // cgroup.procs, or "" to ask the daemon (top)
	hostNet          bool   // in the host network namespace (directly or by following)
	followsID        string // container:ID target
}

func projectOf(labels map[string]string) (project, service string) {
	if p := labels[LabelComposeProject]; p != "" {
		return p, labels[LabelComposeService]
	}
	if ns := labels[LabelStackNamespace]; ns != "" {
		return ns, strings.TrimPrefix(labels[LabelSwarmService], ns+"_")
	}
	return "", ""
}

// discover lists running containers, picks those of the requested projects,
// and inspects them (in parallel).
func discover(ctx context.Context, opts Options) ([]*ctr, []string, error) {
	list, err := opts.Docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("status", "running"))})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return nil, nil, fmt.Errorf("%w: %w", ErrNoDaemon, err)
		}
		return nil, nil, fmt.Errorf("list containers: %w", err)
	}
	want := map[string]bool{}
	for _, p := range opts.Projects {
		want[p] = true
	}
	if opts.All {
		for _, c := range list {
			p, _ := projectOf(c.Labels)
			if p != "" && (c.HostConfig.NetworkMode == "host" || strings.HasPrefix(c.HostConfig.NetworkMode, "container:")) {
				want[p] = true
			}
		}
	}
	// Only the requested projects' containers are inspected and read: a
	// peer of another project is outside either way.
	var picked []container.Summary
	found := map[string]bool{}
	for _, c := range list {
		if p, _ := projectOf(c.Labels); want[p] {
			picked = append(picked, c)
			found[p] = true
		}
	}
	projects := make([]string, 0, len(want))
	for p := range want {
		projects = append(projects, p)
	}
	slices.Sort(projects)
	for _, p := range projects {
		if !found[p] {
			return nil, nil, fmt.Errorf("project %q: %w", p, ErrNoContainers)
		}
	}
	if len(projects) == 0 {
		return nil, nil, fmt.Errorf("no compose project with host-network containers: %w", ErrNoContainers)
	}
	ctrs := make([]*ctr, len(picked))
	errs := make([]error, len(picked))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range picked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ins, err := opts.Docker.ContainerInspect(ctx, s.ID)
			if err != nil {
				errs[i] = fmt.Errorf("inspect %.12s: %w", s.ID, err)
				return
			}
			ctrs[i] = fromInspect(ins)
		}()
	}
	wg.Wait()
	var out []*ctr
	for i, c := range ctrs {
		if errs[i] != nil {
			if cerrdefs.IsNotFound(errs[i]) {
				continue // removed since the list
			}
			return nil, nil, errs[i]
		}
		if c.statePid > 0 {
			out = append(out, c)
		}
	}
	// Resolve container:ID followers to the host network of their target.
	byID := map[string]*ctr{}
	for _, c := range out {
		byID[c.id] = c
	}
	for _, c := range out {
		for t, n := c, 0; t != nil && n < 10; n++ {
			if t.networkMode == "host" {
				c.hostNet = true
				break
			}
			t = byID[t.followsID]
		}
	}
	slices.SortFunc(out, func(a, b *ctr) int { return strings.Compare(a.name, b.name) })
	return out, projects, nil
}

func fromInspect(ins container.InspectResponse) *ctr {
	c := &ctr{id: ins.ID, name: strings.TrimPrefix(ins.Name, "/")}
	if ins.Config != nil {
		c.project, c.service = projectOf(ins.Config.Labels)
	}
	if ins.State != nil {
		c.statePid = ins.State.Pid
	}
	if ins.HostConfig != nil {
		c.networkMode = string(ins.HostConfig.NetworkMode)
		if id, ok := strings.CutPrefix(c.networkMode, "container:"); ok {
			c.followsID = id
		}
	}
	if ns := ins.NetworkSettings; ns != nil {
		// A swarm task's network mode is "default" whatever networks it is
		// on: name its first overlay network instead (ingress aside, it
		// only carries routing-mesh traffic).
		if c.networkMode == "default" && ins.Config != nil && ins.Config.Labels[LabelStackNamespace] != "" {
			var names []string
			for name := range ns.Networks {
				if name != "ingress" {
					names = append(names, name)
				}
			}
			if len(names) > 0 {
				slices.Sort(names)
				c.networkMode = names[0]
			}
		}
		for _, n := range ns.Networks {
			if n == nil {
				continue
			}
			for _, s := range []string{n.IPAddress, n.GlobalIPv6Address} {
				if a, err := netip.ParseAddr(s); err == nil {
					c.ips = append(c.ips, a)
				}
			}
			for _, s := range []string{n.Gateway, n.IPv6Gateway} {
				if a, err := netip.ParseAddr(s); err == nil {
					c.gateways = append(c.gateways, a)
				}
			}
		}
		for port, bindings := range ns.Ports {
			for _, b := range bindings {
				hp, err := strconv.Atoi(b.HostPort)
				if err != nil {
					continue
				}
				c.published = append(c.published, Published{Protocol: port.Proto(), HostIP: b.HostIP, HostPort: hp, ContainerPort: port.Int()})
			}
		}
	}
	return c
}

// observer accumulates samples.
type observer struct {
	opts       Options
	ctrs       []*ctr
	byID       map[string]*ctr
	bindV6Only bool
	selfNetns  string // our own network namespace, when ProcRoot has "self"
	warnings   map[string]bool

	listeners map[*ctr]map[listenerKey]Listener
	edges     map[edgeKey]*connStat
	outside   map[*ctr]map[outsideKey]*connStat
	recent    map[*ctr]map[outsideKey]*connStat // TIME_WAIT, procfs only

	now  time.Time       // time of the current sample
	nsOf map[*ctr]string // network namespace of each container, last sample
	// countConns is false when sampled connections must not be counted
	// (the watcher counts them from the tracer).
	countConns bool
	// timeWait: record TIME_WAIT sockets as recent clients (procfs).
	timeWait bool
	// sampled, when set, collects the connections that samples counted
	// (the watcher must not count them again).
	sampled map[connID]bool
}

// edgeKey identifies an edge of a project.
type edgeKey struct {
	project, from, to string
	port              int
	proto, via        string
}

// connID identifies a connection seen in a socket table: the server end, the
// client end and the server's namespace (loopback tuples repeat across
// namespaces).
type connID struct {
	server, client netip.AddrPort
	ns             string
}

// connStat counts the distinct connections of an edge or a port.
type connStat struct {
	count       int
	first, last time.Time
	peers       map[string]bool
	classes     map[string]int
	seen        map[connID]bool // sampled connections already counted
}

// add records one connection; a sampled connection (id set) seen before
// only moves last.
func (st *connStat) add(id *connID, peer netip.Addr, at time.Time) {
	if st.first.IsZero() || at.Before(st.first) {
		st.first = at
	}
	if at.After(st.last) {
		st.last = at
	}
	if id != nil {
		if st.seen == nil {
			st.seen = map[connID]bool{}
		}
		if st.seen[*id] {
			return
		}
		st.seen[*id] = true
	}
	st.count++
	if peer.IsValid() {
		if st.peers == nil {
			st.peers = map[string]bool{}
			st.classes = map[string]int{}
		}
		st.peers[peer.String()] = true
		st.classes[AddressClass(peer)]++
	}
}

// statFor returns the connStat of (c, k) in m, creating it.
func statFor(m map[*ctr]map[outsideKey]*connStat, c *ctr, k outsideKey) *connStat {
	if m[c] == nil {
		m[c] = map[outsideKey]*connStat{}
	}
	if m[c][k] == nil {
		m[c][k] = &connStat{}
	}
	return m[c][k]
}

func (o *observer) edgeStat(k edgeKey) *connStat {
	if o.edges[k] == nil {
		o.edges[k] = &connStat{}
	}
	return o.edges[k]
}

type listenerKey struct {
	proto string
	addr  netip.Addr
	port  uint16
}

type outsideKey struct {
	proto string
	port  uint16
}

func newObserver(opts Options, ctrs []*ctr) *observer {
	o := &observer{
		opts:       opts,
		ctrs:       ctrs,
		byID:       map[string]*ctr{},
		warnings:   map[string]bool{},
		listeners:  map[*ctr]map[listenerKey]Listener{},
		edges:      map[edgeKey]*connStat{},
		outside:    map[*ctr]map[outsideKey]*connStat{},
		recent:     map[*ctr]map[outsideKey]*connStat{},
		nsOf:       map[*ctr]string{},
		countConns: true,
		timeWait:   true,
	}
	for _, c := range ctrs {
		o.byID[c.id] = c
	}
	return o
}

func (o *observer) warn(format string, args ...any) { o.warnings[fmt.Sprintf(format, args...)] = true }

// prepare checks that the engine's pids are ours and readable, and finds each
// container's cgroup.procs.
func (o *observer) prepare(ctx context.Context) error {
	if b, err := os.ReadFile(filepath.Join(o.opts.ProcRoot, "sys", "net", "ipv6", "bindv6only")); err == nil {
		o.bindV6Only = strings.TrimSpace(string(b)) == "1"
	}
	o.selfNetns, _ = os.Readlink(filepath.Join(o.opts.ProcRoot, "self", "ns", "net"))
	for _, c := range o.ctrs {
		dir := filepath.Join(o.opts.ProcRoot, strconv.Itoa(c.statePid))
		if _, err := os.Stat(dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) && hidepid(o.opts.ProcRoot) && os.Geteuid() != 0 {
				return fmt.Errorf("pid %d of container %s is hidden: %s is mounted with hidepid and we are not root: %w", c.statePid, c.name, o.opts.ProcRoot, ErrPermission)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("pid %d of container %s is not under %s (docker desktop, a remote engine, or unhost in a container?): %w", c.statePid, c.name, o.opts.ProcRoot, ErrPIDNamespace)
			}
			return fmt.Errorf("container %s: %w", c.name, err)
		}
		ok, err := cgroupMentions(o.opts.ProcRoot, c.statePid, c.id)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.name, err)
		}
		if !ok {
			return fmt.Errorf("pid %d is not the process of container %s here: %w", c.statePid, c.name, ErrPIDNamespace)
		}
		if _, err := os.ReadDir(filepath.Join(dir, "fd")); err != nil {
			if isPermission(err) {
				return fmt.Errorf("read %s/fd: need root (or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH): %w", dir, ErrPermission)
			}
		}
		f, err := cgroupProcsFile(o.opts.ProcRoot, o.opts.CgroupRoot, c.statePid)
		if err != nil {
			o.warn("container %s: %v; asking the daemon for its processes (slower)", c.name, err)
		}
		c.procsFile = f
	}
	return ctx.Err()
}

// owner is who holds a socket inode.
type owner struct {
	c    *ctr
	pid  int
	comm string
}

// nsSock is a socket with the namespace whose table it came from.
type nsSock struct {
	ns string
	s  sock
}

// sample reads processes, their fds and each namespace's tables once.
func (o *observer) sample(ctx context.Context) error {
	o.now = time.Now().UTC()
	owners := map[uint64]owner{}
	nsPids := map[string][]int{}
	nsOf := map[*ctr]string{}
	for _, c := range o.ctrs {
		pids, err := o.pids(ctx, c)
		if err != nil {
			return err
		}
		for _, pid := range pids {
			p, err := readProc(o.opts.ProcRoot, pid)
			if err != nil {
				if isPermission(err) {
					return fmt.Errorf("read %s/%d: need root (or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH): %w", o.opts.ProcRoot, pid, ErrPermission)
				}
				continue // exited meanwhile
			}
			if pid == c.statePid || nsOf[c] == "" {
				nsOf[c] = p.netns
			}
			nsPids[p.netns] = append(nsPids[p.netns], pid)
			for _, ino := range p.inodes {
				owners[ino] = owner{c: c, pid: pid, comm: p.comm}
			}
		}
	}
	// One read of the four tables per namespace.
	nsNames := make([]string, 0, len(nsPids))
	for ns := range nsPids {
		nsNames = append(nsNames, ns)
	}
	slices.Sort(nsNames)
	socks := map[string][]sock{}
	for _, ns := range nsNames {
		var lastErr error
		read := false
		for _, pid := range nsPids[ns] {
			s, warns, err := readTables(filepath.Join(o.opts.ProcRoot, strconv.Itoa(pid)))
			for _, w := range warns {
				o.warn("%s", w)
			}
			if err != nil {
				lastErr = err
				continue
			}
			socks[ns] = s
			read = true
			break
		}
		if !read && lastErr != nil {
			o.warn("namespace %s: %v", ns, lastErr)
		}
	}
	if o.selfNetns != "" {
		for _, c := range o.ctrs {
			if c.networkMode == "host" && nsOf[c] != "" && nsOf[c] != o.selfNetns {
				o.warn("container %s is on the engine's host network, which is not this host's network namespace (rootless docker?): its ports are not host ports here", c.name)
			}
		}
	}
	for c, ns := range nsOf {
		o.nsOf[c] = ns
	}
	o.attribute(socks, owners, nsOf)
	return nil
}

// pids lists a container's processes from its cgroup, or from the daemon.
func (o *observer) pids(ctx context.Context, c *ctr) ([]int, error) {
	if c.procsFile != "" {
		pids, err := readPidList(c.procsFile)
		if err == nil {
			return pids, nil
		}
		if isPermission(err) {
			return nil, fmt.Errorf("read %s: need root: %w", c.procsFile, ErrPermission)
		}
		// The container may have stopped; try the daemon.
	}
	top, err := o.opts.Docker.ContainerTop(ctx, c.id, nil)
	if err != nil {
		o.warn("container %s: no processes: %v", c.name, err)
		return nil, nil
	}
	col := slices.Index(top.Titles, "PID")
	var pids []int
	for _, row := range top.Processes {
		if col >= 0 && col < len(row) {
			if p, err := strconv.Atoi(row[col]); err == nil {
				pids = append(pids, p)
			}
		}
	}
	return pids, nil
}

// attribute turns one sample's sockets into listeners, edges, outside
// clients and (with TIME_WAIT) recent clients.
func (o *observer) attribute(socks map[string][]sock, owners map[uint64]owner, nsOf map[*ctr]string) {
	tcpListen := map[string][]tcpListener{}
	udpListen := map[string][]tcpListener{}     // bound UDP sockets of observed containers
	v4Wild := map[string]map[listenerKey]bool{} // ns -> 0.0.0.0 listeners
	conns := map[[2]netip.AddrPort][]nsSock{}
	for ns, ss := range socks {
		v4Wild[ns] = map[listenerKey]bool{}
		for _, s := range ss {
			if isListening(s) {
				var c *ctr
				if ow, ok := owners[s.inode]; ok && s.inode != 0 {
					c = ow.c
				}
				if s.proto == "tcp" {
					tcpListen[ns] = append(tcpListen[ns], tcpListener{s.local.Addr(), s.local.Port(), c})
				} else if c != nil {
					udpListen[ns] = append(udpListen[ns], tcpListener{s.local.Addr(), s.local.Port(), c})
				}
				if s.local.Addr() == netip.IPv4Unspecified() {
					v4Wild[ns][listenerKey{s.proto, s.local.Addr(), s.local.Port()}] = true
				}
			}
			if s.proto == "tcp" && s.state == stateEstablished {
				k := [2]netip.AddrPort{s.local, s.remote}
				conns[k] = append(conns[k], nsSock{ns, s})
			}
		}
	}
	listenerAt := func(ns string, a netip.AddrPort) (tcpListener, bool) {
		for _, l := range tcpListen[ns] {
			if l.port == a.Port() && (l.addr == a.Addr() || l.addr.IsUnspecified()) {
				return l, true
			}
		}
		return tcpListener{}, false
	}
	for ns, ss := range socks {
		for _, s := range ss {
			if s.proto == "tcp" && s.state == stateTimeWait && o.timeWait {
				o.timeWaitEntry(ns, s, listenerAt)
				continue
			}
			if s.inode == 0 {
				continue // TIME_WAIT, SYN_RECV: no owner
			}
			ow, ok := owners[s.inode]
			if !ok {
				continue
			}
			switch {
			case isListening(s):
				l := Listener{Protocol: s.proto, Address: s.local.Addr().String(), Port: int(s.local.Port()), PID: ow.pid, Process: ow.comm}
				if s.v6 && s.local.Addr() == netip.IPv6Unspecified() {
					l.DualStack = !o.bindV6Only && !v4Wild[ns][listenerKey{s.proto, netip.IPv4Unspecified(), s.local.Port()}]
				}
				k := listenerKey{s.proto, s.local.Addr(), s.local.Port()}
				m := o.listeners[ow.c]
				if m == nil {
					m = map[listenerKey]Listener{}
					o.listeners[ow.c] = m
				}
				if old, ok := m[k]; !ok || l.PID < old.PID {
					m[k] = l
				}
			case s.proto == "udp" && s.state == stateEstablished:
				// A connected UDP socket: its peer is fixed, so a client of
				// a service's bound UDP port can be named.
				server := udpServer(udpListen, ns, s.remote, ow.c)
				if server == nil || server == ow.c || server.project != ow.c.project {
					continue
				}
				id := connID{server: s.remote, client: s.local, ns: ns}
				k := edgeKey{project: ow.c.project, from: ow.c.service, to: server.service, port: int(s.remote.Port()), proto: "udp", via: via(s.remote.Addr(), ow.c, server, nsOf)}
				o.edgeStat(k).add(&id, netip.Addr{}, o.now)
			case s.proto == "tcp" && s.state == stateEstablished && o.countConns:
				if _, ok := listenerAt(ns, s.local); !ok {
					continue
				}
				id := connID{server: s.local, client: s.remote, ns: ns}
				if o.sampled != nil {
					o.sampled[id] = true
				}
				peer, found := findPeer(conns, ns, s)
				var pw owner
				if found {
					pw, found = owners[peer.s.inode]
				}
				switch {
				case found && pw.c == ow.c:
					// inside one container
				case found && pw.c.project == ow.c.project:
					k := edgeKey{project: ow.c.project, from: pw.c.service, to: ow.c.service, port: int(s.local.Port()), proto: "tcp", via: via(s.local.Addr(), pw.c, ow.c, nsOf)}
					o.edgeStat(k).add(&id, netip.Addr{}, o.now)
				default:
					statFor(o.outside, ow.c, outsideKey{"tcp", s.local.Port()}).add(&id, s.remote.Addr(), o.now)
				}
			}
		}
	}
}

// udpServer finds the observed container whose bound UDP socket a connected
// UDP socket of client (in namespace ns) sends to: in the same namespace
// (always, for loopback), else a container that has the address (a bridge
// container addressed directly) or a host-network one reached through the
// client's gateway.
func udpServer(udpListen map[string][]tcpListener, ns string, remote netip.AddrPort, client *ctr) *ctr {
	match := func(l tcpListener) bool {
		return l.port == remote.Port() && (l.addr == remote.Addr() || l.addr.IsUnspecified())
	}
	for _, l := range udpListen[ns] {
		if match(l) {
			return l.c
		}
	}
	if remote.Addr().IsLoopback() {
		return nil
	}
	nss := make([]string, 0, len(udpListen))
	for other := range udpListen {
		nss = append(nss, other)
	}
	slices.Sort(nss)
	for _, other := range nss {
		for _, l := range udpListen[other] {
			if other != ns && match(l) && (slices.Contains(l.c.ips, remote.Addr()) || (l.c.hostNet && slices.Contains(client.gateways, remote.Addr()))) {
				return l.c
			}
		}
	}
	return nil
}

// timeWaitEntry records a TIME_WAIT socket of namespace ns that has one end
// on a listening port of a service: that port was used recently. A TIME_WAIT
// socket has no owner, so the client cannot be named. The other end matches
// a listener only when it is a loopback address or the listener's own
// address (an outgoing connection to port 80 elsewhere says nothing about
// a local listener on 0.0.0.0:80).
func (o *observer) timeWaitEntry(ns string, s sock, listenerAt func(string, netip.AddrPort) (tcpListener, bool)) {
	server, peer := s.local, s.remote
	l, ok := listenerAt(ns, server)
	if !ok && (s.remote.Addr().IsLoopback() || s.remote.Addr() == s.local.Addr()) {
		server, peer = s.remote, s.local
		l, ok = listenerAt(ns, server)
	}
	if !ok || l.c == nil {
		return
	}
	id := connID{server: server, client: peer, ns: ns}
	statFor(o.recent, l.c, outsideKey{"tcp", server.Port()}).add(&id, peer.Addr(), o.now)
}

// tcpListener is a listening TCP socket of a sample, with its owner (nil
// when it is not a process of an observed container).
type tcpListener struct {
	addr netip.Addr
	port uint16
	c    *ctr
}

func isListening(s sock) bool {
	return (s.proto == "tcp" && s.state == stateListen) || (s.proto == "udp" && s.state == stateClose && s.remote.Port() == 0)
}

// findPeer finds the other end of an established connection: the socket
// whose local and remote are swapped. Loopback peers must be in the same
// namespace; others may be in any namespace read (a bridge container
// reaching a host-network service through its gateway).
func findPeer(conns map[[2]netip.AddrPort][]nsSock, ns string, s sock) (nsSock, bool) {
	cands := conns[[2]netip.AddrPort{s.remote, s.local}]
	for _, c := range cands {
		if c.ns == ns {
			return c, true
		}
	}
	if s.local.Addr().IsLoopback() {
		return nsSock{}, false
	}
	for _, c := range cands {
		if c.s.inode != 0 {
			return c, true
		}
	}
	return nsSock{}, false
}

// via says how the client addressed the server.
func via(dialed netip.Addr, client, server *ctr, nsOf map[*ctr]string) string {
	switch {
	case dialed.IsLoopback():
		return "loopback"
	case nsOf[client] != nsOf[server] && slices.Contains(client.gateways, dialed):
		return "gateway"
	case !server.hostNet && slices.Contains(server.ips, dialed):
		return "container-address"
	default:
		return "host-address"
	}
}

// inventory builds the sorted inventory of one project from what was seen.
func (o *observer) inventory(project string) *Inventory {
	inv := &Inventory{Version: InventoryVersion, Project: project, Method: MethodProcfs, Services: []ServiceObservation{}, Edges: []Edge{}}
	svcs := map[string]*ServiceObservation{}
	for _, c := range o.ctrs {
		if c.project != project {
			continue
		}
		s := svcs[c.service]
		if s == nil {
			s = &ServiceObservation{Service: c.service, NetworkMode: o.networkMode(c), Listeners: []Listener{}}
			svcs[c.service] = s
		}
		s.Containers = append(s.Containers, c.name)
		for _, l := range o.listeners[c] {
			s.Listeners = append(s.Listeners, l)
		}
		s.Published = append(s.Published, c.published...)
		s.OutsideClients = mergeClients(s.OutsideClients, o.outside[c])
		s.RecentClients = mergeClients(s.RecentClients, o.recent[c])
	}
	for _, s := range svcs {
		inv.Services = append(inv.Services, *s)
	}
	for k, st := range o.edges {
		if k.project != project {
			continue
		}
		inv.Edges = append(inv.Edges, Edge{From: k.from, To: k.to, Port: k.port, Protocol: k.proto, Via: k.via, Count: st.count, FirstSeen: st.first, LastSeen: st.last})
	}
	for w := range o.warnings {
		inv.Warnings = append(inv.Warnings, w)
	}
	inv.Sort()
	return inv
}

// mergeClients adds one container's per-port stats to a service's list
// (containers of one service add up).
func mergeClients(list []OutsideClient, m map[outsideKey]*connStat) []OutsideClient {
	for k, st := range m {
		i := slices.IndexFunc(list, func(oc OutsideClient) bool { return oc.Port == int(k.port) && oc.Protocol == k.proto })
		if i < 0 {
			list = append(list, OutsideClient{Port: int(k.port), Protocol: k.proto})
			i = len(list) - 1
		}
		oc := &list[i]
		for p := range st.peers {
			if !slices.Contains(oc.Peers, p) {
				oc.Peers = append(oc.Peers, p)
			}
		}
		oc.Count += st.count
		for cl, n := range st.classes {
			if oc.Classes == nil {
				oc.Classes = map[string]int{}
			}
			oc.Classes[cl] += n
		}
		if oc.FirstSeen.IsZero() || st.first.Before(oc.FirstSeen) {
			oc.FirstSeen = st.first
		}
		if st.last.After(oc.LastSeen) {
			oc.LastSeen = st.last
		}
	}
	return list
}

// networkMode gives "service:NAME" for a container that follows another of
// its project, and Docker's network mode otherwise.
func (o *observer) networkMode(c *ctr) string {
	if c.followsID != "" {
		if t := o.byID[c.followsID]; t != nil && t.project == c.project {
			return "service:" + t.service
		}
	}
	return c.networkMode
}
