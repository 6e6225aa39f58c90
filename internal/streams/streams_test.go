package streams

import (
	"os"
	"testing"
)

func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	// /dev/null is a character device but not a terminal: the check that
	// looked at ModeCharDevice drew progress into it.
	if IsTerminal(null) {
		t.Error("/dev/null taken for a terminal")
	}
	s, out, _ := Test()
	if IsTerminal(s.Out) || s.ErrIsTerminal() || IsTerminal(out) {
		t.Error("a buffer taken for a terminal")
	}
	if IsTerminal(nil) {
		t.Error("nil taken for a terminal")
	}
	var f *os.File
	if IsTerminal(f) {
		t.Error("nil *os.File taken for a terminal")
	}
}
