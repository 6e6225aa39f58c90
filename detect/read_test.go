package detect

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleInventory(project string) *Inventory {
	inv := &Inventory{
		Version: InventoryVersion, Project: project, ObservedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Method: "procfs", Samples: 3, Interval: "1s",
		Services: []ServiceObservation{{Service: "web", Containers: []string{"p-web-1"}, NetworkMode: "host",
			Listeners: []Listener{{Protocol: "tcp", Address: "::", Port: 80, DualStack: true, PID: 7, Process: "nginx"}}}},
		Edges: []Edge{{From: "api", To: "web", Port: 80, Protocol: "tcp", Via: "loopback"}},
	}
	return inv
}

func TestInventoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, invs := range [][]*Inventory{{sampleInventory("a")}, {sampleInventory("a"), sampleInventory("b")}} {
		var buf bytes.Buffer
		if err := WriteJSON(&buf, invs); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "inv.json")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadInventories(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, invs) {
			t.Errorf("round trip of %d inventories:\n got %+v\nwant %+v", len(invs), got, invs)
		}
		one, err := ReadInventory(path)
		if len(invs) == 1 && (err != nil || !reflect.DeepEqual(one, invs[0])) {
			t.Errorf("ReadInventory: %v", err)
		}
		if len(invs) > 1 && err == nil {
			t.Errorf("ReadInventory of %d projects: no error", len(invs))
		}
	}
}

func TestParseInventoriesRejects(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"future version": {`{"version": 2, "project": "p"}`, "inventory version 2 is not supported"},
		"no version":     {`{"project": "p"}`, "no version field"},
		"no project":     {`{"version": 1}`, "no project"},
		"empty list":     {`[]`, "empty list"},
		"not json":       {`services: []`, "parse inventory"},
		"bad in list":    {`[{"version":1,"project":"a"},{"version":0,"project":"b"}]`, "version 0 is not supported"},
	} {
		_, err := ParseInventories([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, tc.want)
		}
	}
}

func TestWriteTextWindow(t *testing.T) {
	inv := &Inventory{Version: 1, Project: "p", Method: MethodEBPF, Duration: "3s", Partial: true,
		Services: []ServiceObservation{{Service: "a", NetworkMode: "host",
			OutsideClients: []OutsideClient{{Port: 80, Protocol: "tcp", Peers: []string{"127.0.0.1"}, Count: 2}},
			RecentClients:  []OutsideClient{{Port: 81, Protocol: "tcp", Peers: []string{"10.0.0.1"}, Count: 1}}}},
		Edges: []Edge{{From: "b", To: "a", Port: 80, Protocol: "tcp", Via: "loopback", Count: 7}},
	}
	var b strings.Builder
	if err := WriteText(&b, []*Inventory{inv}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"watched 3s with ebpf, interrupted: partial",
		"outside clients on tcp/80: 127.0.0.1 (2 connections)",
		"recently used (TIME_WAIT) tcp/81 from: 10.0.0.1 (1 connection)",
		"edge b -> a:80/tcp via loopback (7 connections)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}
