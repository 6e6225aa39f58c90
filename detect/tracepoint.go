package detect

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// The watcher attaches a small BPF program, written with cilium/ebpf's asm
// package (no compiler, no object file), to the tracepoint
// sock:inet_sock_set_state. The program keeps three kinds of TCP state
// changes and copies each, with the current tgid and the socket's network
// namespace, to a ring buffer:
//
//   - CLOSE -> SYN_SENT runs in connect(2), in the client process: its tgid
//     names the client. The source port is not chosen yet, so the socket
//     address (skaddr) links it to the next event.
//   - SYN_SENT -> ESTABLISHED: the client's complete four-tuple (softirq, so
//     the tgid says nothing).
//   - SYN_RECV -> ESTABLISHED: the server side of an accepted connection
//     (softirq); the server is found by namespace and listening port.
//
// Field offsets are read from the tracepoint's format file in tracefs, and
// the offsets of sock_common.skc_net and net.ns.inum from the kernel's BTF,
// at run time.

const (
	// pollEvery is how often the reader looks at the ring: events are
	// written without a wakeup, which would cost a context switch each.
	pollEvery      = 20 * time.Millisecond
	bpfRBNoWakeup  = 1
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	ipprotoTCP     = 6
)

// tpField is one field of a tracepoint format.
type tpField struct{ offset, size int }

// tracefsDirs are where tracefs may be mounted.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// tracepointFormat reads the field offsets of sock:inet_sock_set_state. When
// tracefs is not mounted it mounts it at /sys/kernel/tracing (as perf and
// bpftrace do) and says so in the returned note.
func tracepointFormat() (map[string]tpField, string, error) {
	const rel = "events/sock/inet_sock_set_state/format"
	var note string
	data, err := readFirst(tracefsDirs, rel)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(tracefsDirs[0], "trace")); serr != nil {
			if merr := unix.Mount("nodev", tracefsDirs[0], "tracefs", 0, ""); merr != nil {
				return nil, "", fmt.Errorf("tracefs is not mounted and mounting it at %s failed: %w", tracefsDirs[0], merr)
			}
			note = "mounted tracefs at " + tracefsDirs[0] + " to attach to sock:inet_sock_set_state"
		}
		data, err = readFirst(tracefsDirs, rel)
	}
	if err != nil {
		return nil, note, fmt.Errorf("tracepoint sock:inet_sock_set_state: %w", err)
	}
	fields, err := parseTracepointFormat(data)
	return fields, note, err
}

func readFirst(dirs []string, rel string) ([]byte, error) {
	var first error
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, rel))
		if err == nil {
			return b, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// parseTracepointFormat parses "field:TYPE NAME[N];\toffset:O;\tsize:S;" lines.
func parseTracepointFormat(data []byte) (map[string]tpField, error) {
	fields := map[string]tpField{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var name string
		f := tpField{offset: -1, size: -1}
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			switch {
			case strings.HasPrefix(part, "field:"):
				decl := strings.Fields(strings.TrimPrefix(part, "field:"))
				if len(decl) == 0 {
					continue
				}
				name = decl[len(decl)-1]
				if i := strings.IndexByte(name, '['); i >= 0 {
					name = name[:i]
				}
				name = strings.TrimLeft(name, "*")
			case strings.HasPrefix(part, "offset:"):
				f.offset, _ = strconv.Atoi(strings.TrimPrefix(part, "offset:"))
			case strings.HasPrefix(part, "size:"):
				f.size, _ = strconv.Atoi(strings.TrimPrefix(part, "size:"))
			}
		}
		if name != "" && f.offset >= 0 && f.size > 0 {
			fields[name] = f
		}
	}
	want := map[string]int{"skaddr": 8, "oldstate": 4, "newstate": 4, "sport": 2, "dport": 2, "family": 2, "protocol": 2, "saddr": 4, "daddr": 4, "saddr_v6": 16, "daddr_v6": 16}
	for n, size := range want {
		f, ok := fields[n]
		if !ok {
			return nil, fmt.Errorf("tracepoint format has no field %q", n)
		}
		if f.size != size {
			return nil, fmt.Errorf("tracepoint field %q has size %d, want %d", n, f.size, size)
		}
		if f.offset%size != 0 && size <= 8 {
			return nil, fmt.Errorf("tracepoint field %q at unaligned offset %d", n, f.offset)
		}
	}
	return fields, nil
}

// kernelOffsets finds, in the kernel's BTF, the byte offsets of the
// namespace pointer in struct sock_common, of the namespace inode number in
// struct net, and of a task's group leader and start time.
func kernelOffsets() (k kernelOffs, err error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return k, fmt.Errorf("kernel btf: %w", err)
	}
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return k, fmt.Errorf("kernel btf: %w", err)
	}
	var ok1, ok2 bool
	k.groupLeader, ok1 = memberOffset(task, "group_leader")
	k.startTime, ok2 = memberOffset(task, "start_time")
	if !ok1 || !ok2 {
		return k, errors.New("kernel btf: task_struct has no group_leader or start_time")
	}
	k.skcNet, k.nsInum, err = netOffsets(spec)
	return k, err
}

// kernelOffs are byte offsets of kernel struct members the program reads.
type kernelOffs struct {
	skcNet, nsInum         int // sock_common.skc_net, net.ns.inum
	groupLeader, startTime int // task_struct.group_leader, .start_time
}

func netOffsets(spec *btf.Spec) (skcNet, nsInum int, err error) {
	var sc *btf.Struct
	if err := spec.TypeByName("sock_common", &sc); err != nil {
		return 0, 0, fmt.Errorf("kernel btf: %w", err)
	}
	skcNet, ok := memberOffset(sc, "skc_net")
	if !ok {
		return 0, 0, errors.New("kernel btf: sock_common has no skc_net")
	}
	var net *btf.Struct
	if err := spec.TypeByName("net", &net); err != nil {
		return 0, 0, fmt.Errorf("kernel btf: %w", err)
	}
	nsInum, ok = memberOffset(net, "ns", "inum")
	if !ok {
		return 0, 0, errors.New("kernel btf: net has no ns.inum")
	}
	return skcNet, nsInum, nil
}

// memberOffset gives the byte offset of a (nested) member, looking through
// anonymous structs and unions.
func memberOffset(t btf.Type, path ...string) (int, bool) {
	if len(path) == 0 {
		return 0, true
	}
	var members []btf.Member
	switch v := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		members = v.Members
	case *btf.Union:
		members = v.Members
	default:
		return 0, false
	}
	for _, m := range members {
		if m.Name == path[0] {
			if m.Offset%8 != 0 {
				return 0, false
			}
			rest, ok := memberOffset(m.Type, path[1:]...)
			return int(m.Offset/8) + rest, ok
		}
	}
	for _, m := range members {
		if m.Name == "" {
			if off, ok := memberOffset(m.Type, path...); ok && m.Offset%8 == 0 {
				return int(m.Offset/8) + off, true
			}
		}
	}
	return 0, false
}

// tcpEvent is one state change kept by the program.
type tcpEvent struct {
	at       time.Time
	tgid     uint32
	start    uint64 // start time of the process (its group leader), ns since boot
	netns    uint32
	sk       uint64
	oldState int32
	newState int32
	src, dst netip.AddrPort
}

// Record layout written by the program on its stack.
const (
	recTgid  = 0  // u64 from bpf_get_current_pid_tgid
	recNetns = 8  // u32
	recStart = 16 // u64: start_time of the current thread group's leader
	recCtx   = 24 // the tracepoint record from copyFrom on
)

// tracer is an attached program and its ring buffer.
type tracer struct {
	fields   map[string]tpField
	copyFrom int
	events   *ebpf.Map
	drops    *ebpf.Map
	known    *ebpf.Map // processes already named: no wakeup for them
	prog     *ebpf.Program
	link     link.Link
	rd       *ringbuf.Reader
	note     string // what was done to attach (tracefs mounted)
}

// newTracer loads and attaches the program. It needs root (CAP_BPF and
// CAP_PERFMON) and a kernel with BTF; the error says what failed.
func newTracer() (*tracer, error) {
	fields, note, err := tracepointFormat()
	if err != nil {
		return nil, err
	}
	koffs, err := kernelOffsets()
	if err != nil {
		return nil, err
	}
	t := &tracer{fields: fields, note: note}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	t.events, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("ring buffer: %w", err)
	}
	t.drops, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("drop counter: %w", err)
	}
	t.known, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 16, ValueSize: 1, MaxEntries: 16384})
	if err != nil {
		return nil, fmt.Errorf("known processes: %w", err)
	}
	insns, copyFrom := t.program(koffs)
	t.copyFrom = copyFrom
	t.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.TracePoint, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("load program: %w", err)
	}
	t.link, err = link.Tracepoint("sock", "inet_sock_set_state", t.prog, nil)
	if err != nil {
		return nil, fmt.Errorf("attach to sock:inet_sock_set_state: %w", err)
	}
	t.rd, err = ringbuf.NewReader(t.events)
	if err != nil {
		return nil, fmt.Errorf("ring buffer reader: %w", err)
	}
	t.rd.SetDeadline(time.Now().Add(pollEvery))
	ok = true
	return t, nil
}

// recordEnd is the end of the last field the program copies.
func (t *tracer) recordEnd() int {
	end := 0
	for _, f := range t.fields {
		end = max(end, f.offset+f.size)
	}
	return end
}

// program assembles the BPF program. It returns the instructions and the
// tracepoint offset at which the copied part of the record starts.
//
// Events are written without waking the reader (it polls every pollEvery),
// except a connect by a process that user space has not named yet: it must
// read /proc/PID/cgroup before a short-lived client exits.
func (t *tracer) program(k kernelOffs) (asm.Instructions, int) {
	f := t.fields
	copyFrom := f["skaddr"].offset &^ 7
	if copyFrom < 8 {
		copyFrom = 8 // the common fields cannot be read
	}
	copyTo := (t.recordEnd() + 7) &^ 7
	recSize := recCtx + copyTo - copyFrom
	const scratch = -8 // 8 bytes
	const key = -24    // 16 bytes: tgid (u32), 0 (u32), start time (u64)
	rec := int16(key - recSize)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, int16(f["newstate"].offset), asm.Word),
		asm.LoadMem(asm.R3, asm.R6, int16(f["oldstate"].offset), asm.Word),
		asm.JEq.Imm(asm.R2, tcpSynSent, "keep"),
		asm.JNE.Imm(asm.R2, tcpEstablished, "exit"),
		asm.JEq.Imm(asm.R3, tcpSynSent, "keep"),
		asm.JEq.Imm(asm.R3, tcpSynRecv, "keep"),
		asm.Ja.Label("exit"),
		asm.LoadMem(asm.R2, asm.R6, int16(f["protocol"].offset), asm.Half).WithSymbol("keep"),
		asm.JNE.Imm(asm.R2, ipprotoTCP, "exit"),
		asm.FnGetCurrentPidTgid.Call(),
		asm.StoreMem(asm.RFP, rec+recTgid, asm.R0, asm.DWord),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, key, asm.R0, asm.DWord), // tgid, 0
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, rec+recNetns, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, rec+recStart, asm.R1, asm.DWord),
		// start = current->group_leader->start_time
		asm.FnGetCurrentTask.Call(),
		asm.JEq.Imm(asm.R0, 0, "nostart"),
		asm.Mov.Reg(asm.R3, asm.R0),
	}
	insns = append(insns, chase(int32(k.groupLeader), int32(k.startTime), rec+recStart, 8, scratch, "nostart")...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.RFP, rec+recStart, asm.DWord).WithSymbol("nostart"),
		asm.StoreMem(asm.RFP, key+8, asm.R1, asm.DWord),
		// R7: ring buffer flags. No wakeup, unless a connect by a process
		// not named yet.
		asm.Mov.Imm(asm.R7, bpfRBNoWakeup),
		asm.LoadMem(asm.R2, asm.R6, int16(f["newstate"].offset), asm.Word),
		asm.JNE.Imm(asm.R2, tcpSynSent, "flags"),
	)
	insns = append(insns, lookup(t.known, key)...)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, "flags"),
		asm.Mov.Imm(asm.R7, 0),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("flags"),
	)
	for off := copyFrom; off < copyTo; off += 8 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R6, int16(off), asm.DWord),
			asm.StoreMem(asm.RFP, rec+recCtx+int16(off-copyFrom), asm.R1, asm.DWord),
		)
	}
	insns = append(insns,
		// net = sk->__sk_common.skc_net.net
		// record.netns = net->ns.inum
		asm.LoadMem(asm.R3, asm.R6, int16(f["skaddr"].offset), asm.DWord),
		asm.JEq.Imm(asm.R3, 0, "out"),
	)
	insns = append(insns, chase(int32(k.skcNet), int32(k.nsInum), rec+recNetns, 4, scratch, "out")...)
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, t.events.FD()).WithSymbol("out"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(rec)),
		asm.Mov.Imm(asm.R3, int32(recSize)),
		asm.Mov.Reg(asm.R4, asm.R7),
		asm.FnRingbufOutput.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		// The ring was full: count the lost event.
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, scratch, asm.R1, asm.DWord),
	)
	insns = append(insns, lookup(t.drops, scratch)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	return insns, copyFrom
}

// chase emits: p = *(u64 *)(R3 + off1), read through scratch; when that
// read fails or p is NULL, jump to fail; else read size bytes at p + off2
// into the stack at dst.
func chase(off1, off2 int32, dst int16, size int32, scratch int16, fail string) asm.Instructions {
	insns := probeRead(off1, scratch, 8)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, fail),
		asm.LoadMem(asm.R3, asm.RFP, scratch, asm.DWord),
		asm.JEq.Imm(asm.R3, 0, fail),
	)
	return append(insns, probeRead(off2, dst, size)...)
}

// lookup emits R0 = bpf_map_lookup_elem(m, fp + key).
func lookup(m *ebpf.Map, key int16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.FnMapLookupElem.Call(),
	}
}

// probeRead emits bpf_probe_read_kernel(fp + dst, size, R3 + off).
func probeRead(off int32, dst int16, size int32) asm.Instructions {
	return asm.Instructions{
		asm.Add.Imm(asm.R3, off),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, int32(dst)),
		asm.Mov.Imm(asm.R2, size),
		asm.FnProbeReadKernel.Call(),
	}
}

// read blocks for the next event. After flush it returns the events
// already in the ring, then ringbuf.ErrFlushed.
func (t *tracer) read() (tcpEvent, error) {
	rec, err := t.rd.Read()
	for errors.Is(err, os.ErrDeadlineExceeded) {
		// The ring is drained; most events do not wake us: poll.
		t.rd.SetDeadline(time.Now().Add(pollEvery))
		rec, err = t.rd.Read()
	}
	if err != nil {
		return tcpEvent{}, err
	}
	ev, err := t.decode(rec.RawSample)
	ev.at = time.Now()
	return ev, err
}

// flush detaches the program and makes read drain the ring and return
// ringbuf.ErrFlushed. (SetDeadline would not do: it waits for the lock
// that a blocked read holds, until the next event.)
func (t *tracer) flush() error {
	var errs []error
	if t.link != nil {
		errs = append(errs, t.link.Close())
		t.link = nil
	}
	return errors.Join(append(errs, t.rd.Flush())...)
}

// markKnown tells the program that a process has been named, so that its
// connects no longer wake the reader. A full map only costs wakeups.
func (t *tracer) markKnown(tgid uint32, start uint64) {
	var k [16]byte
	binary.NativeEndian.PutUint32(k[0:], tgid)
	binary.NativeEndian.PutUint64(k[8:], start)
	_ = t.known.Put(k, uint8(1))
}

// dropped is how many events the ring buffer could not take.
func (t *tracer) dropped() uint64 {
	var n uint64
	if err := t.drops.Lookup(uint32(0), &n); err != nil {
		return 0
	}
	return n
}

// decode parses one record.
func (t *tracer) decode(b []byte) (tcpEvent, error) {
	var ev tcpEvent
	need := recCtx + t.recordEnd() - t.copyFrom
	if len(b) < need {
		return ev, fmt.Errorf("short tracepoint record: %d bytes, want %d", len(b), need)
	}
	ne := binary.NativeEndian
	ev.tgid = uint32(ne.Uint64(b[recTgid:]) >> 32)
	ev.start = ne.Uint64(b[recStart:])
	ev.netns = ne.Uint32(b[recNetns:])
	at := func(name string) []byte {
		f := t.fields[name]
		o := recCtx + f.offset - t.copyFrom
		return b[o : o+f.size]
	}
	ev.sk = ne.Uint64(at("skaddr"))
	ev.oldState = int32(ne.Uint32(at("oldstate")))
	ev.newState = int32(ne.Uint32(at("newstate")))
	sport := ne.Uint16(at("sport")) // host order in this tracepoint
	dport := ne.Uint16(at("dport"))
	var src, dst netip.Addr
	switch ne.Uint16(at("family")) {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(at("saddr")))
		dst = netip.AddrFrom4([4]byte(at("daddr")))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(at("saddr_v6"))).Unmap()
		dst = netip.AddrFrom16([16]byte(at("daddr_v6"))).Unmap()
	default:
		return ev, fmt.Errorf("tracepoint record with family %d", ne.Uint16(at("family")))
	}
	ev.src = netip.AddrPortFrom(src, sport)
	ev.dst = netip.AddrPortFrom(dst, dport)
	return ev, nil
}

// Close detaches the program and frees its maps.
func (t *tracer) Close() error {
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	if t.link != nil {
		errs = append(errs, t.link.Close())
	}
	if t.prog != nil {
		errs = append(errs, t.prog.Close())
	}
	for _, m := range []*ebpf.Map{t.events, t.drops, t.known} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
