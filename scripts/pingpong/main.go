// Command pingpong is a plain TCP ping-pong, a check on the method of
// `unhost verify --bench` (scripts/bench-paths.sh runs both on the same
// network paths). It shares no code with verify/netbench on purpose: only
// the standard library's net package.
//
//	pingpong serve [-echo 127.0.0.1:0] [-sink 127.0.0.1:0]
//	pingpong client -echo HOST:PORT -sink HOST:PORT [-n 10000] [-warmup 500]
//	                [-size 64] [-conns 1000] [-tput 300ms] [-tputs 5] [-raw]
//
// serve echoes every byte it reads on the echo port; on the sink port it
// reads until EOF, then writes the count of bytes as decimal text. Both
// read and write plainly, 64 KiB at a time (io.Copy would splice the echo
// and read the sink 8 KiB at a time, io.Discard's buffer). It
// prints "echo ADDR" and "sink ADDR" (the bound addresses) once listening.
//
// client makes, in this order: -warmup untimed then -n timed round trips of
// a -size-byte message over one connection to the echo port (write it,
// read it back whole); -conns times connect + write 1 byte + read it back +
// close, each on a new connection; -tputs streams of -tput each to the
// sink port (Mbit/s = bytes the sink counted * 8 / time to its answer). It
// prints one JSON object: p50 and p99 (nearest rank) in µs, the median
// throughput and, with -raw, every sample. Go sets TCP_NODELAY by default,
// as on every connection of unhost's probe.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pingpong serve|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "client":
		err = client(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: want serve or client", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pingpong:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	echo := fs.String("echo", "127.0.0.1:0", "echo listen `address`")
	sink := fs.String("sink", "127.0.0.1:0", "sink listen `address`")
	_ = fs.Parse(args)
	le, err := net.Listen("tcp", *echo)
	if err != nil {
		return err
	}
	ls, err := net.Listen("tcp", *sink)
	if err != nil {
		return err
	}
	fmt.Printf("echo %s\nsink %s\n", le.Addr(), ls.Addr())
	go accept(ls, func(c net.Conn) {
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		fmt.Fprintf(c, "%d\n", n)
	})
	accept(le, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			if k > 0 {
				if _, err := c.Write(buf[:k]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return nil
}

func accept(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "pingpong: accept:", err)
			os.Exit(1)
		}
		go func() { defer c.Close(); handle(c) }()
	}
}

func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	echo := fs.String("echo", "", "echo server `address`")
	sink := fs.String("sink", "", "sink server `address`")
	n := fs.Int("n", 10000, "timed round trips")
	warmup := fs.Int("warmup", 500, "untimed round trips first")
	size := fs.Int("size", 64, "message size in bytes")
	conns := fs.Int("conns", 1000, "connect + 1-byte echo samples")
	tput := fs.Duration("tput", 300*time.Millisecond, "length of one throughput stream")
	tputs := fs.Int("tputs", 5, "throughput streams")
	raw := fs.Bool("raw", false, "print every sample too")
	_ = fs.Parse(args)
	if *echo == "" || *sink == "" || *n < 1 || *size < 1 || *conns < 1 || *tputs < 1 {
		return fmt.Errorf("client needs -echo, -sink and positive counts")
	}

	// Round trips over one connection.
	c, err := net.Dial("tcp", *echo)
	if err != nil {
		return err
	}
	msg, back := make([]byte, *size), make([]byte, *size)
	rtt := make([]float64, 0, *n)
	for i := range *warmup + *n {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return err
		}
		if i >= *warmup {
			rtt = append(rtt, us(time.Since(start)))
		}
	}
	c.Close()

	// Connection setup: connect, one byte there and back, close.
	conn := make([]float64, 0, *conns)
	for range *conns {
		start := time.Now()
		c, err := net.Dial("tcp", *echo)
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, back[:1]); err != nil {
			return err
		}
		conn = append(conn, us(time.Since(start)))
		c.Close()
	}

	// Throughput of one stream, -tputs times.
	var mbits []float64
	buf := make([]byte, 64<<10)
	for range *tputs {
		c, err := net.Dial("tcp", *sink)
		if err != nil {
			return err
		}
		var sent int64
		start := time.Now()
		for time.Since(start) < *tput {
			k, err := c.Write(buf)
			sent += int64(k)
			if err != nil {
				return err
			}
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("sink count: %w", err)
		}
		took := time.Since(start)
		c.Close()
		if got, _ := strconv.ParseInt(line[:len(line)-1], 10, 64); got != sent {
			return fmt.Errorf("sink counted %d bytes, %d sent", got, sent)
		}
		mbits = append(mbits, float64(sent)*8/took.Seconds()/1e6)
	}

	out := map[string]any{
		"rtt_p50_us": rank(rtt, 50), "rtt_p99_us": rank(rtt, 99), "rtt_samples": len(rtt),
		"connect_p50_us": rank(conn, 50), "connect_p99_us": rank(conn, 99), "connect_samples": len(conn),
		"throughput_mbit_s": rank(mbits, 50),
	}
	if *raw {
		out["rtt_us"], out["connect_us"], out["mbit_s"] = rtt, conn, mbits
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// rank is the p-th percentile by nearest rank: the sample of rank
// ceil(p/100*N) in sorted order. It sorts v.
func rank(v []float64, p int) float64 {
	sort.Float64s(v)
	return v[max(1, (p*len(v)+99)/100)-1]
}
