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
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
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
	flag.Parse()
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
