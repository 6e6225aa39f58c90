package peakrss

import (
	"bytes"
	"testing"
)

func TestReportParse(t *testing.T) {
	n, err := Self()
	if err != nil || n <= 0 {
		t.Fatalf("Self = %d, %v", n, err)
	}
	var b bytes.Buffer
	b.WriteString("some output")
	Report(&b)
	got, ok := Parse(b.Bytes())
	if !ok || got < n {
		t.Errorf("Parse = %d, %v; want at least %d", got, ok, n)
	}
	if _, ok := Parse([]byte("no marker")); ok {
		t.Error("Parse found a peak in output without one")
	}
}
