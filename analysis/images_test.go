package analysis

import (
	"slices"
	"strings"
	"testing"
)

// TestImageTable checks that the embedded table parses and that every
// entry cites a source (loadImageTable refuses entries without one), and
// that an entry without a source or with a malformed port is refused.
func TestImageTable(t *testing.T) {
	tab, err := loadImageTable()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.entries) < 40 {
		t.Fatalf("only %d entries", len(tab.entries))
	}
	for _, e := range tab.entries {
		if len(e.Sources) == 0 || !strings.HasPrefix(e.Source(), "http") {
			t.Errorf("%s: no source", e.Name)
		}
		if e.HostNetwork != "" && len(e.Images) == 0 && len(e.Programs) == 0 {
			t.Errorf("%s: a host need that matches nothing", e.Name)
		}
	}
	bad := []ImageInfo{
		{Name: "x", Images: []string{"x"}, Ports: []string{"80"}},
		{Name: "x", Images: []string{"x"}, Ports: []string{"80"}, Sources: []string{"not a url"}},
		{Name: "x", Images: []string{"x"}, Ports: []string{"eighty"}, Sources: []string{"https://example.org"}},
		{Name: "x", Ports: []string{"80"}, Sources: []string{"https://example.org"}},
		{Name: "x", Images: []string{"x"}, Sources: []string{"https://example.org"}},
	}
	for i, b := range bad {
		if err := b.check(); err == nil {
			t.Errorf("bad entry %d accepted", i)
		}
	}
}

func TestImageName(t *testing.T) {
	tests := map[string]string{
		"redis":                     "redis",
		"redis:7-alpine":            "redis",
		"docker.io/library/redis:7": "redis",
		"library/postgres@sha256:" + strings.Repeat("a", 64): "postgres",
		"lscr.io/linuxserver/plex:latest":                    "linuxserver/plex",
		"docker.io/linuxserver/plex":                         "linuxserver/plex",
		"ghcr.io/koush/scrypted:18-jammy-full":               "ghcr.io/koush/scrypted",
		"Prom/Node-Exporter:v1.8.0":                          "prom/node-exporter",
		"localhost:5000/team/app:1":                          "localhost:5000/team/app",
		"quay.io/prometheus/node-exporter:latest":            "quay.io/prometheus/node-exporter",
		"${IMAGE}": "${image}",
	}
	for in, want := range tests {
		if got := ImageName(in); got != want {
			t.Errorf("ImageName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageHostNeed(t *testing.T) {
	tests := []struct {
		image string
		need  bool
	}{
		{"ghcr.io/koush/scrypted", true},
		{"mikebrady/shairport-sync:latest", true},
		{"esphome/esphome:2024.6", true},
		{"ghcr.io/home-assistant-libs/python-matter-server:stable", true},
		{"coturn/coturn:4.6", true},
		{"prom/node-exporter", true},
		{"quay.io/prometheus/node-exporter:v1.8.0", true},
		{"vergoh/vnstat", true},
		{"ghcr.io/servercontainers/samba", true},
		{"openthread/otbr", true},
		{"ros:humble", true},
		{"ghcr.io/home-assistant/home-assistant:stable", true},
		{"lscr.io/linuxserver/plex", true},
		{"jellyfin/jellyfin", true},
		{"postgres:16", false},
		{"ollama/ollama", false},
		{"", false},
	}
	for _, tt := range tests {
		why, src, ok := ImageHostNeed(tt.image)
		if ok != tt.need || ok && (why == "" || !strings.HasPrefix(src, "https://")) {
			t.Errorf("ImageHostNeed(%q) = %q, %q, %v; want need=%v", tt.image, why, src, ok, tt.need)
		}
	}
}

func TestKnownImagePorts(t *testing.T) {
	tests := map[string][]string{
		"postgres:16":             {"5432"},
		"docker.io/library/redis": {"6379"},
		"bitnami/kafka:3":         {"9092"},
		"ghcr.io/koush/scrypted":  {"10443", "11080"},
		"coturn/coturn":           {"3478", "3478/udp", "5349", "49152-65535/udp"},
		"example.org/unknown/app": nil,
	}
	for in, want := range tests {
		if got := KnownImagePorts(in); !slices.Equal(got, want) {
			t.Errorf("KnownImagePorts(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLookupProgram(t *testing.T) {
	for word, name := range map[string]string{"gunicorn": "Gunicorn", "/usr/local/bin/gunicorn": "Gunicorn", "manage.py": "Django development server", "weed": "SeaweedFS", "python": ""} {
		e := LookupProgram(word)
		got := ""
		if e != nil {
			got = e.Name
		}
		if got != name {
			t.Errorf("LookupProgram(%q) = %q, want %q", word, got, name)
		}
	}
}
