// Command shortconn is a static test program for detect's engine tests: it
// serves and makes short TCP connections, the kind sampling misses.
//
//	shortconn -listen 127.0.0.1:7001 -call 127.0.0.1:7002 -every 5s
//
// -listen ADDR (repeatable) accepts connections, writes "ok\n" and closes
// them at once. -call ADDR (repeatable) connects to ADDR every -every (first
// at start), reads to EOF and closes: a connection that lives for well under
// a millisecond on loopback. It prints "listening ADDR" once a listener is
// ready and "called ADDR" after each call, and exits on SIGTERM.
//
// -load ADDR makes -rate connections a second to ADDR for -for (four
// paced workers), then prints one JSON line with the latency percentiles of
// a connection (dial, read to EOF, close) in microseconds, and exits.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var listen, call list
	flag.Var(&listen, "listen", "serve short connections on `addr` (repeatable)")
	flag.Var(&call, "call", "connect to `addr` every -every (repeatable)")
	every := flag.Duration("every", 5*time.Second, "pause between two calls")
	load := flag.String("load", "", "make -rate connections a second to `addr` for -for, print latencies, exit")
	rate := flag.Int("rate", 2000, "connections a second, with -load")
	dur := flag.Duration("for", 5*time.Second, "how long, with -load")
	flag.Parse()
	if *load != "" {
		os.Exit(runLoad(*load, *rate, *dur))
	}
	for _, a := range listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "shortconn: %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("listening %s\n", a)
		go serve(ln)
	}
	for _, a := range call {
		go func() {
			for {
				if err := callOnce(a); err != nil {
					fmt.Fprintf(os.Stderr, "shortconn: %v\n", err)
				} else {
					fmt.Printf("called %s\n", a)
				}
				time.Sleep(*every)
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("ok\n"))
		c.Close()
	}
}

// runLoad paces four workers to rate connections a second in total.
func runLoad(addr string, rate int, d time.Duration) int {
	const workers = 4
	gap := time.Duration(int64(time.Second) * workers / int64(rate))
	type result struct {
		lat  []time.Duration
		errs int
	}
	results := make(chan result, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		go func() {
			var r result
			next := start.Add(time.Duration(w) * gap / workers)
			for next.Before(start.Add(d)) {
				time.Sleep(time.Until(next))
				t0 := time.Now()
				if err := callOnce(addr); err != nil {
					r.errs++
				} else {
					r.lat = append(r.lat, time.Since(t0))
				}
				next = next.Add(gap)
			}
			results <- r
		}()
	}
	var all []time.Duration
	errs := 0
	for w := 0; w < workers; w++ {
		r := <-results
		all = append(all, r.lat...)
		errs += r.errs
	}
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "shortconn: no connection succeeded")
		return 1
	}
	slices.Sort(all)
	pct := func(p float64) int64 { return all[int(p*float64(len(all)-1))].Microseconds() }
	fmt.Printf("{\"n\":%d,\"errors\":%d,\"seconds\":%.3f,\"p50_us\":%d,\"p99_us\":%d}\n", len(all), errs, time.Since(start).Seconds(), pct(0.50), pct(0.99))
	return 0
}

func callOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, err = io.ReadAll(c)
	return err
}
