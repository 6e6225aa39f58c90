package detect

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Socket states as printed in /proc/net/{tcp,udp}{,6}.
const (
	stateEstablished = 0x01
	stateClose       = 0x07 // a bound, unconnected UDP socket
	stateTimeWait    = 0x06
	stateListen      = 0x0A
)

// sock is one line of a socket table, with addresses unmapped.
type sock struct {
	proto  string // "tcp" or "udp"
	local  netip.AddrPort
	remote netip.AddrPort
	state  uint64
	inode  uint64
	v6     bool // from the tcp6/udp6 table
}

// table names and protocols, in the order they are read.
var tables = []struct{ file, proto string }{
	{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"},
}

// readTables reads the four socket tables of the network namespace of the
// process whose procfs directory is pidDir (e.g. /proc/1234). A table that
// does not exist (no IPv6 in the kernel) is skipped. Lines that cannot be
// parsed are skipped and reported in warnings; they never fail the read.
func readTables(pidDir string) ([]sock, []string, error) {
	pfs, err := procfs.NewFS(pidDir)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", pidDir, err)
	}
	var warns []string
	var socks []sock
	for _, t := range tables {
		lines, err := readTable(pfs, t.file)
		path := filepath.Join(pidDir, "net", t.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			// procfs gives up on the whole table at the first bad line (and
			// may panic on a short UDP line): read it again line by line so
			// that one torn line costs one socket, not the table.
			var w []string
			socks, w, err = readTableTolerant(path, t.proto, strings.HasSuffix(t.file, "6"), socks)
			if err != nil {
				return nil, warns, fmt.Errorf("read %s: %w", path, err)
			}
			warns = append(warns, w...)
			continue
		}
		for _, l := range lines {
			socks = append(socks, sock{
				proto:  t.proto,
				local:  netip.AddrPortFrom(ipAddr(l.LocalAddr), uint16(l.LocalPort)),
				remote: netip.AddrPortFrom(ipAddr(l.RemAddr), uint16(l.RemPort)),
				state:  l.St,
				inode:  l.Inode,
				v6:     strings.HasSuffix(t.file, "6"),
			})
		}
	}
	return socks, warns, nil
}

type tableLine struct {
	LocalAddr, RemAddr net.IP
	LocalPort, RemPort uint64
	St, Inode          uint64
}

// readTable reads one table through procfs, turning a panic of the parser on
// a malformed line into an error.
func readTable(pfs procfs.FS, file string) (lines []tableLine, err error) {
	defer func() {
		if r := recover(); r != nil {
			lines, err = nil, fmt.Errorf("parse %s: %v", file, r)
		}
	}()
	var raw procfs.NetIPSocket
	switch file {
	case "tcp":
		var t procfs.NetTCP
		//lint:ignore SA1019 netlink (sock_diag) is not used; see NOTES.md
		t, err = pfs.NetTCP() //nolint:staticcheck // netlink is optional; see package doc
		raw = procfs.NetIPSocket(t)
	case "tcp6":
		var t procfs.NetTCP
		//lint:ignore SA1019 netlink (sock_diag) is not used; see NOTES.md
		t, err = pfs.NetTCP6() //nolint:staticcheck
		raw = procfs.NetIPSocket(t)
	case "udp":
		var t procfs.NetUDP
		t, err = pfs.NetUDP() //nolint:staticcheck
		raw = procfs.NetIPSocket(t)
	case "udp6":
		var t procfs.NetUDP
		t, err = pfs.NetUDP6() //nolint:staticcheck
		raw = procfs.NetIPSocket(t)
	}
	if err != nil {
		return nil, err
	}
	lines = make([]tableLine, 0, len(raw))
	for _, l := range raw {
		lines = append(lines, tableLine{LocalAddr: l.LocalAddr, RemAddr: l.RemAddr, LocalPort: l.LocalPort, RemPort: l.RemPort, St: l.St, Inode: l.Inode})
	}
	return lines, nil
}

func ipAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// readTableTolerant parses a socket table line by line, appending good lines
// to socks and returning one warning per line it could not parse.
func readTableTolerant(path, proto string, v6 bool, socks []sock) ([]sock, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return socks, nil, err
	}
	var warns []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if n == 1 {
			continue // header
		}
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		s, err := parseSockLine(text, proto, v6)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s line %d skipped: %v", path, n, err))
			continue
		}
		socks = append(socks, s)
	}
	if err := sc.Err(); err != nil {
		return socks, warns, err
	}
	return socks, warns, nil
}

// parseSockLine parses "sl local rem st tx:rx tr:when retr uid timeout inode ...".
func parseSockLine(line, proto string, v6 bool) (sock, error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return sock{}, fmt.Errorf("%d fields, want at least 10", len(f))
	}
	local, err := parseHexAddrPort(f[1])
	if err != nil {
		return sock{}, fmt.Errorf("local address: %w", err)
	}
	remote, err := parseHexAddrPort(f[2])
	if err != nil {
		return sock{}, fmt.Errorf("remote address: %w", err)
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return sock{}, fmt.Errorf("state: %w", err)
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return sock{}, fmt.Errorf("inode: %w", err)
	}
	return sock{proto: proto, local: local, remote: remote, state: st, inode: inode, v6: v6}, nil
}

// parseHexAddrPort parses "0100007F:1F90": an address printed as host-order
// 32-bit words (little-endian here), and a hex port.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no colon in %q", s)
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", a)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", p)
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
