package verify

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// TestLeaseProgram checks each lease program: that it is an ELF file the
// way Linux loads it, that its bytes are the instructions its listing
// says (disassembled), and, for the machine the test runs on, that it
// holds while its input is open and exits 0 once it ends.
func TestLeaseProgram(t *testing.T) {
	if leaseProgram("riscv64") != nil {
		t.Error("a lease program for an architecture without a listing")
	}
	for arch, lc := range leaseCode {
		t.Run(arch, func(t *testing.T) {
			prog := leaseProgram(arch)
			f, err := elf.NewFile(bytes.NewReader(prog))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != lc.machine || f.Type != elf.ET_EXEC || f.Class != elf.ELFCLASS64 {
				t.Errorf("header: %v %v %v", f.Machine, f.Type, f.Class)
			}
			if len(f.Progs) != 2 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Filesz != uint64(len(prog)) || f.Progs[1].Type != elf.PT_GNU_STACK || f.Progs[1].Flags&elf.PF_X != 0 {
				t.Fatalf("segments: %+v", f.Progs)
			}
			off := int(f.Entry - leaseBase)
			if off <= 0 || off >= len(prog) {
				t.Fatalf("entry %#x outside the file", f.Entry)
			}
			code := prog[off:]
			for i, in := range lc.instrs {
				if !bytes.HasPrefix(code, in.code) {
					t.Fatalf("instruction %d: the program does not hold %x", i, in.code)
				}
				got, n := disassemble(t, arch, code)
				if n != len(in.code) || got != in.asm {
					t.Errorf("instruction %d (%x): disassembles to %q (%d bytes), the listing says %q", i, in.code, got, n, in.asm)
				}
				code = code[len(in.code):]
			}
			if len(code) != 0 {
				t.Errorf("%d bytes after the last instruction", len(code))
			}
			if arch == runtime.GOARCH {
				runLeaseProgram(t, prog)
			}
		})
	}
}

func disassemble(t *testing.T, arch string, code []byte) (string, int) {
	t.Helper()
	switch arch {
	case "amd64":
		in, err := x86asm.Decode(code, 64)
		if err != nil {
			t.Fatal(err)
		}
		return x86asm.GNUSyntax(in, 0, nil), in.Len
	case "arm64":
		in, err := arm64asm.Decode(code)
		if err != nil {
			t.Fatal(err)
		}
		return arm64asm.GoSyntax(in, 0, nil, nil), 4
	}
	t.Fatalf("no disassembler for %s", arch)
	return "", 0
}

// runLeaseProgram runs prog with a pipe on its standard input: it must
// still run after more input than its buffer, and exit 0 once the pipe is
// closed.
func runLeaseProgram(t *testing.T, prog []byte) {
	path := filepath.Join(t.TempDir(), "lease")
	if err := os.WriteFile(path, prog, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if _, err := in.Write([]byte(strings.Repeat("lease ", 100))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the lease program ended while its input was open: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	in.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the lease program at the end of its input: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the lease program did not end with its input")
	}
}
