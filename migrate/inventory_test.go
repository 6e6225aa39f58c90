package migrate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/plan"
)

func loadText(t *testing.T, text string) (*load.Compose, string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{p}, WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

const invCompose = "services:\n  app:\n    image: x/app\n    network_mode: host\n    command: [\"app\", \"--bind\", \"127.0.0.1\"]\n"

func invJSON(hash, listenAddr, peer string) string {
	src := ""
	if hash != "" {
		src = `"source": {"services_hash": "` + hash + `"},`
	}
	return `{"version": 1, "project": "p", ` + src + ` "observed_at": "2026-01-01T00:00:00Z", "method": "procfs", "samples": 1, "interval": "1s",
 "services": [{"service": "app", "containers": ["c"], "network_mode": "host",
   "listeners": [{"protocol": "tcp", "address": "` + listenAddr + `", "port": 8080}],
   "outside_clients": [{"port": 8080, "protocol": "tcp", "peers": ["` + peer + `"]}]}],
 "edges": []}`
}

func TestCommittedInventory(t *testing.T) {
	c, dir := loadText(t, invCompose)
	hash := ServicesHash(c)
	if p, err := FindInventory(dir); p != "" || err != nil {
		t.Fatalf("FindInventory with none: %q, %v", p, err)
	}
	cases := []struct {
		name, data string
		err, stale string
		warn       string
	}{
		{"fresh", invJSON(hash, "0.0.0.0", "private"), "", "", ""},
		{"no source", invJSON("", "0.0.0.0", "private"), "", "does not record what it was taken from", ""},
		{"other services", invJSON("sha256:0000", "0.0.0.0", "private"), "", "taken from other service definitions", ""},
		{"addresses become classes", invJSON(hash, "0.0.0.0", "203.0.113.7"), "", "", "address classes only"},
		{"bad port", strings.Replace(invJSON(hash, "0.0.0.0", "private"), `"port": 8080}`, `"port": 70000}`, 1), "a port from 1 to 65535", "", ""},
		{"bad address", invJSON(hash, "localhost", "private"), "not an IP address", "", ""},
		{"wrong version", strings.Replace(invJSON(hash, "0.0.0.0", "private"), `"version": 1`, `"version": 99`, 1), "version", "", ""},
		{"not json", "{", "inventory", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ci, err := checkInventory("inv.json", []byte(tc.data), hash)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.stale == "" && ci.Stale != "" || !strings.Contains(ci.Stale, tc.stale) {
				t.Errorf("stale = %q, want %q", ci.Stale, tc.stale)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(ci.Warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q lack %q", ci.Warnings, tc.warn)
			}
			for _, s := range ci.Inventory.Services {
				for _, oc := range s.OutsideClients {
					for _, p := range oc.Peers {
						if !peerClasses[p] {
							t.Errorf("peer %q is not an address class", p)
						}
					}
				}
			}
		})
	}
	// too large
	big := make([]byte, maxInventoryBytes+10)
	if err := os.MkdirAll(filepath.Join(dir, ".unhost"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, InventoryPath)
	if err := os.WriteFile(p, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if found, err := FindInventory(dir); found != p || err != nil {
		t.Fatalf("FindInventory = %q, %v", found, err)
	}
	if _, err := ReadCommittedInventory(p, c); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a huge inventory: %v", err)
	}
}

// TestCommittedInventoryReach: an inventory that claims 0.0.0.0 where the
// service binds 127.0.0.1 does not widen the port; a stale one is not used.
func TestCommittedInventoryReach(t *testing.T) {
	c, _ := loadText(t, invCompose)
	ci, err := checkInventory(".unhost/inventory.json", []byte(invJSON(ServicesHash(c), "0.0.0.0", "public")), ServicesHash(c))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Migrate(c, Options{Committed: ci})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.InventoryFile != ".unhost/inventory.json" || res.Plan.Evidence != plan.EvidenceRuntime {
		t.Errorf("plan: inventory %q, evidence %q", res.Plan.InventoryFile, res.Plan.Evidence)
	}
	out := string(res.Files[0].New)
	if !strings.Contains(out, `"127.0.0.1:8080:8080"`) || !strings.Contains(out, `"0.0.0.0"`) {
		t.Errorf("port widened or bind not rewritten:\n%s", out)
	}
	stale, err := checkInventory(".unhost/inventory.json", []byte(invJSON("sha256:1", "0.0.0.0", "public")), ServicesHash(c))
	if err != nil {
		t.Fatal(err)
	}
	res, err = Migrate(c, Options{Committed: stale})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.InventoryStale == "" || res.Plan.Evidence != plan.EvidenceStatic || res.Plan.Services[0].Finding != FindingListenersUnknown {
		t.Errorf("stale inventory: stale %q, evidence %q, app %s", res.Plan.InventoryStale, res.Plan.Evidence, res.Plan.Services[0].Action)
	}
}

// FuzzCheckInventory: a committed inventory is untrusted input. Whatever
// the bytes, checkInventory does not panic, and what it accepts holds
// valid ports and protocols and peers as address classes only.
func FuzzCheckInventory(f *testing.F) {
	f.Add([]byte(invJSON("sha256:1", "0.0.0.0", "private")))
	f.Add([]byte(invJSON("", "127.0.0.1", "198.51.100.4")))
	f.Add([]byte(`[` + invJSON("x", "::", "fe80::1") + `]`))
	f.Add([]byte(`{"version": 1, "services": [{"service": "a", "listeners": [{"protocol": "tcp", "address": "1.2.3.4", "port": 0}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ci, err := checkInventory("inv.json", data, "sha256:1")
		if err != nil {
			return
		}
		for _, s := range ci.Inventory.Services {
			for _, l := range s.Listeners {
				if l.Port < 1 || l.Port > 65535 || l.Protocol != "tcp" && l.Protocol != "udp" {
					t.Fatalf("accepted listener %+v", l)
				}
			}
			for _, oc := range s.OutsideClients {
				for _, p := range oc.Peers {
					if !peerClasses[p] && p != "unknown" {
						t.Fatalf("accepted peer %q", p)
					}
				}
			}
		}
	})
}
