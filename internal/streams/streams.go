// Package streams holds the standard streams a command writes to, and the
// one check of whether a stream is a terminal (progress lines are drawn
// only on a terminal).
package streams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// IO is the set of streams one command run uses.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// System returns the process's standard streams.
func System() *IO { return &IO{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// Test returns streams writing to buffers, for tests, and the buffers.
func Test() (s *IO, out, errOut *bytes.Buffer) {
	out, errOut = &bytes.Buffer{}, &bytes.Buffer{}
	return &IO{In: &bytes.Buffer{}, Out: out, ErrOut: errOut}, out, errOut
}

// ErrIsTerminal reports whether progress may be drawn on ErrOut.
func (s *IO) ErrIsTerminal() bool { return IsTerminal(s.ErrOut) }

// IsTerminal reports whether w is an *os.File on a terminal (a device that
// answers the terminal ioctl, not merely any character device such as
// /dev/null).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
