package verify

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// The lease container needs a program that does what HoldLease does: read
// standard input until it ends, then exit. unhost itself (the probe
// binary, over 20 MB) would do, but loading an image of it is most of what
// a run spends before its lease holds, and nothing of the run may exist
// before its lease does. So the lease runs this program instead: a
// complete static Linux executable of a few hundred bytes, written here
// instruction by instruction, which the engine loads in a moment. The
// probe image then loads while compose starts the stack.
//
// For an architecture without a listing here (leaseProgram returns nil),
// the lease runs the probe image's `unhost probe lease` as before.
//
// The listings are checked by TestLeaseProgram: each is disassembled
// (golang.org/x/arch) and compared with the assembly written beside it,
// and the one for the machine the test runs on is run.

// leaseBase is where the program's one segment is loaded.
const leaseBase = 0x400000

// leaseInstr is one machine instruction and its assembly (the
// disassembler's syntax: GNU for amd64, Go's for arm64), for the test.
type leaseInstr struct {
	code []byte
	asm  string
}

// leaseCode is the program per GOARCH: read(0, sp, 64) until it returns
// 0 (end of input) or an error, then exit(0). The buffer is the top of the
// initial stack (argc, argv, ...), which is mapped and never read again.
var leaseCode = map[string]struct {
	machine elf.Machine
	instrs  []leaseInstr
}{
	"amd64": {elf.EM_X86_64, []leaseInstr{
		{[]byte{0x31, 0xc0}, "xor %eax,%eax"},                    // read is syscall 0
		{[]byte{0x31, 0xff}, "xor %edi,%edi"},                    // fd 0
		{[]byte{0x48, 0x89, 0xe6}, "mov %rsp,%rsi"},              // buffer
		{[]byte{0xba, 0x40, 0x00, 0x00, 0x00}, "mov $0x40,%edx"}, // 64 bytes
		{[]byte{0x0f, 0x05}, "syscall"},
		{[]byte{0x48, 0x85, 0xc0}, "test %rax,%rax"},
		{[]byte{0x7f, 0xed}, "jg .-0x13"},                        // read more: back 19 bytes, to the first instruction
		{[]byte{0x31, 0xff}, "xor %edi,%edi"},                    // status 0
		{[]byte{0xb8, 0x3c, 0x00, 0x00, 0x00}, "mov $0x3c,%eax"}, // exit is syscall 60
		{[]byte{0x0f, 0x05}, "syscall"},
	}},
	"arm64": {elf.EM_AARCH64, []leaseInstr{
		{le32(0xd2800000), "MOVD $0, R0"},  // fd 0
		{le32(0x910003e1), "MOVD RSP, R1"}, // buffer
		{le32(0xd2800802), "MOVD $64, R2"}, // 64 bytes
		{le32(0xd28007e8), "MOVD $63, R8"}, // read is syscall 63
		{le32(0xd4000001), "SVC $0"},
		{le32(0xf100001f), "CMP $0, R0"},
		{le32(0x54ffff4c), "BGT -6(PC)"},   // read more: back 6 instructions, to the first
		{le32(0xd2800000), "MOVD $0, R0"},  // status 0
		{le32(0xd2800ba8), "MOVD $93, R8"}, // exit is syscall 93
		{le32(0xd4000001), "SVC $0"},
	}},
}

func le32(v uint32) []byte {
	return binary.LittleEndian.AppendUint32(nil, v)
}

// leaseProgram returns the lease program for goarch as a static ELF
// executable: a header, a loadable segment (the whole file, read and
// execute), a non-executable stack, the code. nil: none for goarch.
func leaseProgram(goarch string) []byte {
	lc, ok := leaseCode[goarch]
	if !ok {
		return nil
	}
	var code []byte
	for _, in := range lc.instrs {
		code = append(code, in.code...)
	}
	const ehsize, phsize, phnum = 64, 56, 2
	size := uint64(ehsize + phsize*phnum + len(code))
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(lc.machine), Version: uint32(elf.EV_CURRENT),
		Entry: leaseBase + ehsize + phsize*phnum, Phoff: ehsize,
		Ehsize: ehsize, Phentsize: phsize, Phnum: phnum,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	progs := []elf.Prog64{
		{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: leaseBase, Paddr: leaseBase, Filesz: size, Memsz: size, Align: 0x1000},
		{Type: uint32(elf.PT_GNU_STACK), Flags: uint32(elf.PF_R | elf.PF_W), Align: 16},
	}
	var b bytes.Buffer
	// Writes to a bytes.Buffer of fixed-size values cannot fail.
	_ = binary.Write(&b, binary.LittleEndian, h)
	_ = binary.Write(&b, binary.LittleEndian, progs)
	b.Write(code)
	return b.Bytes()
}
