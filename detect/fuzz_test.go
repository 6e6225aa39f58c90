package detect

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseSockLine: a line of /proc/net/{tcp,udp}[6] never panics the
// parser, and an address it accepts survives printing and parsing again.
func FuzzParseSockLine(f *testing.F) {
	f.Add("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0", false)
	f.Add("   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1", true)
	f.Add("   2: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 0 1", true)
	f.Add("garbage", false)
	f.Fuzz(func(t *testing.T, line string, v6 bool) {
		s, err := parseSockLine(line, "tcp", v6)
		if err != nil {
			return
		}
		if s.local.Addr().Is4In6() || s.remote.Addr().Is4In6() {
			t.Fatalf("IPv4-mapped address left mapped: %v %v", s.local, s.remote)
		}
		if len(strings.Fields(line)) < 10 {
			t.Fatalf("accepted a line of fewer than 10 fields: %q", line)
		}
		if s.state > 0xff {
			t.Fatalf("state %x out of range", s.state)
		}
	})
}

// FuzzParseInventories: any bytes give inventories or an error, never a
// panic, and accepted inventories have the version this reader knows.
func FuzzParseInventories(f *testing.F) {
	f.Add([]byte(`{"version":1,"project":"p","services":[],"edges":[]}`))
	f.Add([]byte(`[{"version":1,"project":"a"},{"version":1,"project":"b"}]`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		invs, err := ParseInventories(data)
		if err != nil {
			return
		}
		for _, inv := range invs {
			if inv == nil || inv.Version != InventoryVersion {
				t.Fatalf("accepted %s", data)
			}
			if _, err := json.Marshal(inv); err != nil {
				t.Fatal(err)
			}
		}
	})
}
