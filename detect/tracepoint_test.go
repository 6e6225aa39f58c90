package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// The format of sock:inet_sock_set_state on kernel 6.18.
const inetSockSetStateFormat = `name: inet_sock_set_state
ID: 2287
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:const void * skaddr;	offset:8;	size:8;	signed:0;
	field:int oldstate;	offset:16;	size:4;	signed:1;
	field:int newstate;	offset:20;	size:4;	signed:1;
	field:__u16 sport;	offset:24;	size:2;	signed:0;
	field:__u16 dport;	offset:26;	size:2;	signed:0;
	field:__u16 family;	offset:28;	size:2;	signed:0;
	field:__u16 protocol;	offset:30;	size:2;	signed:0;
	field:__u8 saddr[4];	offset:32;	size:4;	signed:0;
	field:__u8 daddr[4];	offset:36;	size:4;	signed:0;
	field:__u8 saddr_v6[16];	offset:40;	size:16;	signed:0;
	field:__u8 daddr_v6[16];	offset:56;	size:16;	signed:0;

print fmt: "family=%s"
`

func TestParseTracepointFormat(t *testing.T) {
	for _, tc := range []struct {
		name, text, err string
	}{
		{"kernel 6.18", inetSockSetStateFormat, ""},
		{"missing field", strings.Replace(inetSockSetStateFormat, "daddr_v6", "other", 1), `no field "daddr_v6"`},
		{"wrong size", strings.Replace(inetSockSetStateFormat, "offset:24;\tsize:2", "offset:24;\tsize:4", 1), `"sport" has size 4`},
		{"unaligned", strings.Replace(inetSockSetStateFormat, "offset:16;\tsize:4", "offset:18;\tsize:4", 1), "unaligned"},
		{"empty", "", "no field"},
	} {
		f, err := parseTracepointFormat([]byte(tc.text))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && (f["skaddr"] != tpField{8, 8} || f["daddr_v6"] != tpField{56, 16} || f["newstate"] != tpField{20, 4}):
			t.Errorf("%s: fields %+v", tc.name, f)
		}
	}
}

func FuzzParseTracepointFormat(f *testing.F) {
	f.Add([]byte(inetSockSetStateFormat))
	f.Add([]byte("field:int x;\toffset:-1;\tsize:99999999999999999999;"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := parseTracepointFormat(data)
		if err == nil && len(fields) < 11 {
			t.Errorf("accepted a format with %d fields", len(fields))
		}
	})
}

// decode reads the record layout the program writes: tgid, namespace, then
// the tracepoint record from skaddr on.
func TestDecodeRecord(t *testing.T) {
	fields, err := parseTracepointFormat([]byte(inetSockSetStateFormat))
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracer{fields: fields, copyFrom: 8}
	rec := make([]byte, recCtx+72-8)
	ne := binary.NativeEndian
	ne.PutUint64(rec[recTgid:], 4242<<32|4243)
	ne.PutUint32(rec[recNetns:], 4026531833)
	ne.PutUint64(rec[recStart:], 123456789)
	put := func(field string, put func([]byte)) { put(rec[recCtx+fields[field].offset-8:]) }
	put("skaddr", func(b []byte) { ne.PutUint64(b, 0xffff0000dead) })
	put("oldstate", func(b []byte) { ne.PutUint32(b, tcpSynSent) })
	put("newstate", func(b []byte) { ne.PutUint32(b, tcpEstablished) })
	put("sport", func(b []byte) { ne.PutUint16(b, 40000) })
	put("dport", func(b []byte) { ne.PutUint16(b, 8080) })
	put("family", func(b []byte) { ne.PutUint16(b, 10) })
	src := netip.MustParseAddr("::ffff:127.0.0.1").As16()
	dst := netip.MustParseAddr("fd00::1").As16()
	put("saddr_v6", func(b []byte) { copy(b, src[:]) })
	put("daddr_v6", func(b []byte) { copy(b, dst[:]) })
	ev, err := tr.decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if ev.tgid != 4242 || ev.start != 123456789 || ev.netns != 4026531833 || ev.sk != 0xffff0000dead || ev.oldState != tcpSynSent || ev.newState != tcpEstablished ||
		ev.src != netip.MustParseAddrPort("127.0.0.1:40000") || ev.dst != netip.MustParseAddrPort("[fd00::1]:8080") {
		t.Errorf("decoded %+v", ev)
	}
	if _, err := tr.decode(rec[:20]); err == nil {
		t.Error("short record decoded")
	}
	put("family", func(b []byte) { ne.PutUint16(b, 1) })
	if _, err := tr.decode(rec); err == nil {
		t.Error("record of family 1 decoded")
	}
}

func TestAddressClass(t *testing.T) {
	for a, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"10.1.2.3": "private", "172.17.0.2": "private", "192.168.1.50": "private", "fd00::1": "private",
		"169.254.1.1": "private", "fe80::1": "private", "100.64.0.1": "private",
		"8.8.8.8": "public", "2001:db8::1": "public",
	} {
		if got := AddressClass(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: %s, want %s", a, got, want)
		}
	}
}

// The tracer attaches here (root, kernel with BTF), sees a loopback
// connection from this process with its tgid and namespace, and stops at
// once when flushed, even with no further event to wake its reader.
func TestTracerAttachAndStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("attaching a BPF program needs root")
	}
	tr, err := newTracer()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	c.Close()
	netns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var sawSyn, sawClient, sawServer bool
	for !(sawSyn && sawClient && sawServer) {
		ev, err := tr.read()
		if err != nil {
			t.Fatal(err)
		}
		mine := fmt.Sprintf("net:[%d]", ev.netns) == netns
		switch {
		case ev.newState == tcpSynSent && ev.tgid == uint32(os.Getpid()) && mine && ev.dst.String() == ln.Addr().String():
			sawSyn = true
			if ev.start == 0 {
				t.Error("no process start time at SYN_SENT")
			}
		case ev.oldState == tcpSynSent && ev.src == local && mine:
			sawClient = true
		case ev.oldState == tcpSynRecv && ev.dst == local && mine:
			sawServer = true
		}
	}
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := tr.read(); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := tr.flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ringbuf.ErrFlushed) {
			t.Errorf("reader ended with %v, want ErrFlushed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("reader still blocked 2 s after flush")
	}
}
