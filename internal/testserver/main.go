// Command testserver is a small static program for test images. It binds the
// sockets it is told to and holds client connections, so that tests can
// observe known sockets from the outside.
//
//	testserver -tcp 0.0.0.0:7001 -tcp 127.0.0.1:7002 -tcp [::]:7003 \
//	           -udp 0.0.0.0:7004 -connect 127.0.0.1:7001
//
// Flags (each may be repeated):
//
//	-tcp ADDR      listen on TCP ADDR and answer HTTP on it. An IPv4 ADDR
//	               (0.0.0.0:N) gives an IPv4-only socket, [::]:N a
//	               dual-stack one: every path gets
//	               "200 OK" with body "ok\n". Connections that send nothing
//	               are held open (no read timeout), so -connect clients of
//	               another testserver stay ESTABLISHED.
//	-tcp6only ADDR like -tcp, but the socket is IPV6_V6ONLY (ADDR must be IPv6).
//	-udp ADDR      bind UDP ADDR and echo every datagram back to its sender.
//	-connect ADDR  open a TCP connection to ADDR and hold it; when it is
//	               refused or closed, retry every 200ms.
//
// For each socket it prints one line to stdout once the socket is ready:
// "listening tcp ADDR", "listening udp ADDR", "connected ADDR LOCALADDR".
// Tests can wait for these lines in the container log. It exits on SIGTERM or
// SIGINT, and with status 2 on bad flags or a socket it cannot bind.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

type addrList []string

func (a *addrList) String() string     { return strings.Join(*a, ",") }
func (a *addrList) Set(s string) error { *a = append(*a, s); return nil }

var stdout sync.Mutex

func say(format string, args ...any) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	var tcp, tcp6only, udp, connect addrList
	flag.Var(&tcp, "tcp", "listen on TCP `addr` and answer HTTP (repeatable)")
	flag.Var(&tcp6only, "tcp6only", "listen on IPv6-only TCP `addr` and answer HTTP (repeatable)")
	flag.Var(&udp, "udp", "bind UDP `addr` and echo datagrams (repeatable)")
	flag.Var(&connect, "connect", "hold a TCP connection to `addr`, reconnecting (repeatable)")
	logRequests := flag.Bool("log-requests", false, "print each accepted TCP connection (conn UNIXNANO) and each HTTP request (request UNIXNANO METHOD PATH) on stdout")
	check := flag.String("check", "", "connect to TCP `addr` once and exit 0 if that works, 1 if not (for healthchecks)")
	flag.Parse()
	if *check != "" {
		c, err := net.DialTimeout("tcp", *check, 2*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testserver: check %s: %v\n", *check, err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "testserver: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *logRequests {
			fmt.Printf("request %d %s %s\n", time.Now().UnixNano(), r.Method, r.URL.Path)
		}
		_, _ = w.Write([]byte("ok\n"))
	})}
	if *logRequests {
		srv.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				fmt.Printf("conn %d\n", time.Now().UnixNano())
			}
		}
	}
	for _, a := range tcp {
		serveTCP(srv, network("tcp", a), a, net.ListenConfig{})
	}
	for _, a := range tcp6only {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		serveTCP(srv, "tcp6", a, lc)
	}
	for _, a := range udp {
		pc, err := net.ListenPacket(network("udp", a), a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testserver: %v\n", err)
			os.Exit(2)
		}
		say("listening udp %s", pc.LocalAddr())
		go echo(pc)
	}
	for _, a := range connect {
		go hold(ctx, a)
	}
	<-ctx.Done()
}

// network returns "tcp4"/"udp4" for an IPv4 address, so that 0.0.0.0 gives an
// IPv4 socket (Go would otherwise open a dual-stack [::] socket for it), and
// proto for anything else: "[::]:N" then gives a dual-stack socket.
func network(proto, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return proto
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		return proto + "4"
	}
	return proto
}

func serveTCP(srv *http.Server, network, addr string, lc net.ListenConfig) {
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testserver: %v\n", err)
		os.Exit(2)
	}
	say("listening tcp %s", ln.Addr())
	go func() { _ = srv.Serve(ln) }()
}

func echo(pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

// hold keeps one connection to addr open until ctx ends, reconnecting when
// the connection is refused or closed by the peer.
func hold(ctx context.Context, addr string) {
	var d net.Dialer
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			say("connected %s %s", addr, c.LocalAddr())
			// Wait until the peer closes; discard whatever it sends.
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
