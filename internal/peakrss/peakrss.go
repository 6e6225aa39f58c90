// Package peakrss reads a process's own peak resident memory (VmHWM), for
// tests that bound a child process's memory.
//
// The child's ru_maxrss, as wait4 reports it, is no such measure: os/exec
// starts a child with vfork (CLONE_VM), so until exec the child runs in the
// parent's address space, and the kernel keeps that high-water mark across
// exec. A test binary that has run many tests first would measure itself.
// VmHWM belongs to the address space the exec created.
package peakrss

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// marker starts the line Report writes and Parse reads.
const marker = "unhost-peak-rss-bytes "

// Self returns the calling process's peak resident memory, in bytes.
func Self() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/self/status has no VmHWM")
}

// Report writes the calling process's peak on a line of its own, for the
// parent to Parse.
func Report(w io.Writer) {
	n, err := Self()
	if err != nil {
		fmt.Fprintf(w, "\npeakrss: %v\n", err)
		return
	}
	fmt.Fprintf(w, "\n%s%d\n", marker, n)
}

// Parse finds what Report wrote in a child's output.
func Parse(out []byte) (int64, bool) {
	i := bytes.LastIndex(out, []byte(marker))
	if i < 0 {
		return 0, false
	}
	rest := out[i+len(marker):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.ParseInt(string(rest), 10, 64)
	return n, err == nil
}
