package verify

import (
	"bufio"
	"bytes"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadedPart strips a static Go program down to what Linux loads and
// runs what is left: it must still serve.
func TestLoadedPart(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "testserver")
	build := exec.Command("go", "build", "-o", full, "../internal/testserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	bin, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	part, err := loadedPart(bytes.NewReader(bin), int64(len(bin)))
	if err != nil {
		t.Fatal(err)
	}
	if len(part) >= len(bin)*9/10 {
		t.Errorf("%d of %d bytes kept: the debug information should go", len(part), len(bin))
	}
	f, err := elf.NewFile(bytes.NewReader(part))
	if err != nil {
		t.Fatalf("the stripped program is no ELF file: %v", err)
	}
	if len(f.Sections) != 0 {
		t.Errorf("%d section headers left", len(f.Sections))
	}
	again, err := loadedPart(bytes.NewReader(part), int64(len(part)))
	if err != nil || !bytes.Equal(again, part) {
		t.Errorf("stripping again changed it (%v)", err)
	}

	stripped := filepath.Join(dir, "stripped")
	if err := os.WriteFile(stripped, part, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(stripped, "-tcp", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the stripped program printed nothing: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening tcp ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok\n" {
		t.Errorf("the stripped program answered %q", body)
	}

	for _, bad := range [][]byte{nil, []byte("#!/bin/sh\n"), bin[:40]} {
		if _, err := loadedPart(bytes.NewReader(bad), int64(len(bad))); err == nil {
			t.Errorf("%q: no error", bad[:min(len(bad), 10)])
		}
	}
}
