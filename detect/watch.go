package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// How long the watcher waits for the two ends of a connection to meet
// before it decides, and how long an unmatched client end is kept.
const (
	matchDelay   = time.Second
	clientMaxAge = 10 * time.Second
	// listenerEvery is how often the watcher rereads the socket tables for
	// listeners that appear during the window.
	listenerEvery = 5 * time.Second
)

// attachTracer is newTracer; tests replace it to make attaching fail.
var attachTracer = newTracer

// window watches the projects for opts.Duration: with the tracer when it
// can be attached (and opts.Method allows), by sampling /proc every
// opts.Interval otherwise. A cancelled ctx ends the window early; the
// inventories are then marked partial.
func (o *observer) window(ctx context.Context, projects []string, started time.Time) ([]*Inventory, error) {
	opts := o.opts
	method := MethodProcfs
	var w *watcher
	if opts.Method != MethodProcfs {
		tr, err := attachTracer()
		switch {
		case err != nil && opts.Method == MethodEBPF:
			return nil, fmt.Errorf("watch with ebpf: %w", err)
		case err != nil:
			o.warn("cannot watch with ebpf (%v): sampled /proc every %s instead, so connections that opened and closed between two samples are missed", err, opts.Interval)
		default:
			defer tr.Close()
			if tr.note != "" {
				o.warn("%s", tr.note)
			}
			method = MethodEBPF
			w = newWatcher(o, tr)
			go w.read()
		}
	}
	// The first sample gives listeners, namespaces and connections open
	// before the window; the tracer sees every later one.
	if w != nil {
		o.sampled = map[connID]bool{}
		o.timeWait = false // the tracer sees those connections whole
	}
	if err := o.sample(ctx); err != nil {
		return nil, err
	}
	firstDone := time.Now()
	samples := 1
	if w != nil {
		o.countConns = false
		w.sampledUntil = firstDone
		w.index()
	}
	end := started.Add(opts.Duration)
	every := opts.Interval
	if w != nil {
		every = matchDelay / 4
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastListen := time.Now()
	partial := false
loop:
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			partial = true
			break loop
		case <-time.After(time.Until(end)):
			break loop
		case now := <-tick.C:
			if w == nil {
				if err := o.sample(ctx); err != nil {
					return nil, err
				}
				samples++
				continue
			}
			if now.Sub(lastListen) >= listenerEvery {
				if err := o.sample(ctx); err != nil {
					return nil, err
				}
				lastListen = now
				w.index()
			}
			w.process(now, false)
		}
		if opts.Progress != nil {
			opts.Progress(max(0, min(int(time.Since(started)/time.Second), int(opts.Duration/time.Second)-1)), int(opts.Duration/time.Second))
		}
	}
	ended := time.Now().UTC()
	if opts.Progress != nil && !partial {
		opts.Progress(int(opts.Duration/time.Second), int(opts.Duration/time.Second))
	}
	// One more read, also after Ctrl-C: listeners that appeared late, and
	// (sampling) connections open at the end.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := o.sample(fctx); err != nil {
		return nil, err
	}
	samples++
	if w != nil {
		w.index()
		w.stop()
		w.process(time.Now(), true)
		w.finish()
	}
	invs := make([]*Inventory, 0, len(projects))
	for _, p := range projects {
		inv := o.inventory(p)
		inv.Method = method
		inv.ObservedAt = started.Truncate(time.Second)
		inv.Duration = ended.Sub(started).Round(time.Millisecond).String()
		inv.Partial = partial
		if w == nil {
			inv.Samples = samples
			inv.Interval = opts.Interval.String()
		} else {
			inv.Samples = 0
			inv.Interval = ""
		}
		invs = append(invs, inv)
	}
	return invs, nil
}

// tupleKey identifies one end's view of a connection: source and
// destination as the client sees them. The namespace is set only for
// loopback destinations, where the same tuple may exist in several
// namespaces.
type tupleKey struct {
	src, dst netip.AddrPort
	netns    uint32
}

func keyOf(src, dst netip.AddrPort, netns uint32) tupleKey {
	if !dst.Addr().IsLoopback() {
		netns = 0
	}
	return tupleKey{src, dst, netns}
}

// clientEnd is a client's established connection, attributed to a
// container of the observed projects (c nil: another process; known false:
// the process could not be identified).
type clientEnd struct {
	key   tupleKey
	c     *ctr
	known bool
	at    time.Time
}

// watcher turns tracer events into edges and outside clients.
type watcher struct {
	o  *observer
	tr *tracer

	mu         sync.Mutex
	clients    []clientEnd // from the reader, not yet processed
	servers    []tcpEvent
	readErr    error
	decodeErrs int
	done       chan struct{}

	// Owned by the reader goroutine.
	bySk  map[uint64]skInfo
	byPid map[procKey]pidInfo

	// Owned by the main goroutine.
	pendingClients map[tupleKey]clientEnd
	pendingServers []tcpEvent
	listen         map[nsPort][]tcpListener
	sampledUntil   time.Time
	unknownClients int
}

type skInfo struct {
	c     *ctr
	known bool
	at    time.Time
}

// procKey names a process: its pid and start time, since pids are reused.
type procKey struct {
	tgid  uint32
	start uint64
}

type pidInfo struct {
	c     *ctr
	known bool
}

type nsPort struct {
	ns   string
	port uint16
}

func newWatcher(o *observer, tr *tracer) *watcher {
	return &watcher{o: o, tr: tr, done: make(chan struct{}), bySk: map[uint64]skInfo{}, byPid: map[procKey]pidInfo{}, pendingClients: map[tupleKey]clientEnd{}}
}

// read runs in its own goroutine until stop: it decodes events and names
// the client process at SYN_SENT, while it still runs.
func (w *watcher) read() {
	defer close(w.done)
	lastPurge := time.Now()
	for {
		ev, err := w.tr.read()
		if errors.Is(err, ringbuf.ErrFlushed) {
			return // stop
		}
		if err != nil && ev.at.IsZero() {
			w.mu.Lock()
			w.readErr = err
			w.mu.Unlock()
			return
		}
		if err != nil {
			w.mu.Lock()
			w.decodeErrs++
			w.mu.Unlock()
			continue
		}
		switch {
		case ev.newState == tcpSynSent:
			c, known := w.container(ev.tgid, ev.start)
			w.bySk[ev.sk] = skInfo{c: c, known: known, at: ev.at}
		case ev.oldState == tcpSynSent && ev.newState == tcpEstablished:
			si, ok := w.bySk[ev.sk]
			delete(w.bySk, ev.sk)
			ce := clientEnd{key: keyOf(ev.src, ev.dst, ev.netns), c: si.c, known: ok && si.known, at: ev.at}
			w.mu.Lock()
			w.clients = append(w.clients, ce)
			w.mu.Unlock()
		case ev.oldState == tcpSynRecv && ev.newState == tcpEstablished:
			w.mu.Lock()
			w.servers = append(w.servers, ev)
			w.mu.Unlock()
		}
		if ev.at.Sub(lastPurge) > clientMaxAge {
			// Connections that never completed (refused, timed out).
			for sk, si := range w.bySk {
				if ev.at.Sub(si.at) > clientMaxAge {
					delete(w.bySk, sk)
				}
			}
			lastPurge = ev.at
		}
	}
}

// container names the container of a process from /proc/PID/cgroup, which
// ends in the container id under cgroupfs and systemd alike. Answers are
// kept by pid and start time (0 when the program could not read it: then
// only by pid).
func (w *watcher) container(tgid uint32, start uint64) (*ctr, bool) {
	pk := procKey{tgid, start}
	if pi, ok := w.byPid[pk]; ok {
		return pi.c, pi.known
	}
	data, err := os.ReadFile(filepath.Join(w.o.opts.ProcRoot, strconv.FormatUint(uint64(tgid), 10), "cgroup"))
	if err != nil {
		return nil, false // exited already; not cached, the pid may come back
	}
	var found *ctr
	for _, c := range w.o.ctrs {
		if bytes.Contains(data, []byte(c.id)) {
			found = c
			break
		}
	}
	w.byPid[pk] = pidInfo{c: found, known: true}
	if start != 0 {
		w.tr.markKnown(tgid, start)
	}
	return found, true
}

// stop detaches the program, lets the reader drain the ring and waits for
// it.
func (w *watcher) stop() {
	if err := w.tr.flush(); err != nil {
		w.o.warn("ebpf: stopping: %v", err)
	}
	<-w.done
}

// index rebuilds the listener index from the observer's listeners.
func (w *watcher) index() {
	w.listen = map[nsPort][]tcpListener{}
	for c, ls := range w.o.listeners {
		ns := w.o.nsOf[c]
		for k := range ls {
			if k.proto == "tcp" {
				np := nsPort{ns, k.port}
				w.listen[np] = append(w.listen[np], tcpListener{addr: k.addr, port: k.port, c: c})
			}
		}
	}
}

// process matches server ends older than matchDelay (all, when final) with
// client ends.
func (w *watcher) process(now time.Time, final bool) {
	w.mu.Lock()
	clients, servers := w.clients, w.servers
	w.clients, w.servers = nil, nil
	w.mu.Unlock()
	for _, ce := range clients {
		w.pendingClients[ce.key] = ce
	}
	w.pendingServers = append(w.pendingServers, servers...)
	keep := w.pendingServers[:0]
	for _, se := range w.pendingServers {
		if !final && now.Sub(se.at) < matchDelay {
			keep = append(keep, se)
			continue
		}
		w.resolve(se)
	}
	w.pendingServers = keep
	for k, ce := range w.pendingClients {
		if final || now.Sub(ce.at) > clientMaxAge {
			delete(w.pendingClients, k)
		}
	}
}

// resolve attributes one accepted connection: the server by namespace and
// listening port, the client by the client end with the same tuple.
func (w *watcher) resolve(se tcpEvent) {
	ns := fmt.Sprintf("net:[%d]", se.netns)
	local, remote := se.src, se.dst
	var server *ctr
	for _, l := range w.listen[nsPort{ns, local.Port()}] {
		if l.addr == local.Addr() || l.addr.IsUnspecified() {
			server = l.c
			break
		}
	}
	if server == nil {
		return // not a port of an observed container
	}
	if w.o.sampled != nil && !se.at.After(w.sampledUntil) && w.o.sampled[connID{server: local, client: remote, ns: ns}] {
		return // counted by the first sample
	}
	ce, ok := w.pendingClients[keyOf(remote, local, se.netns)]
	if ok {
		delete(w.pendingClients, ce.key)
	}
	switch {
	case ok && ce.c == server:
		// inside one container
	case ok && ce.c != nil && ce.c.project == server.project:
		k := edgeKey{project: server.project, from: ce.c.service, to: server.service, port: int(local.Port()), proto: "tcp", via: via(local.Addr(), ce.c, server, w.o.nsOf)}
		w.o.edgeStat(k).add(nil, netip.Addr{}, se.at.UTC())
	default:
		if ok && !ce.known {
			w.unknownClients++
		}
		statFor(w.o.outside, server, outsideKey{"tcp", local.Port()}).add(nil, remote.Addr(), se.at.UTC())
	}
}

// finish turns what the watcher could not do into warnings.
func (w *watcher) finish() {
	if w.readErr != nil {
		w.o.warn("ebpf: reading events stopped early: %v; edges after that are missing", w.readErr)
	}
	if w.decodeErrs > 0 {
		w.o.warn("ebpf: %d events could not be decoded", w.decodeErrs)
	}
	if n := w.tr.dropped(); n > 0 {
		w.o.warn("ebpf: the ring buffer overflowed and %d state changes were lost; counts are low and some edges may be missing", n)
	}
	if w.unknownClients > 0 {
		w.o.warn("ebpf: %d connections came from processes that exited before they could be named; they are counted as outside clients", w.unknownClients)
	}
}
