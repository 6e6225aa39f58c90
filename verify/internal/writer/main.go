// Command writer is a test program for verify: it writes the file named by
// its argument, like a service writing its data directory, then runs until
// SIGTERM. When the write fails it prints the error and exits 1.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: writer FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte("written by the service\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", os.Args[1])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
