package load

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadErrorPositions checks that load errors name file:line:col and
// the field, on one line, with compose's reason.
func TestLoadErrorPositions(t *testing.T) {
	cases := []struct {
		name  string
		files []string // compose.yaml, then override files
		want  string
	}{
		{"port out of range", []string{"services:\n  web:\n    ports: ['99999:80']\n    image: x\n"},
			"compose.yaml:3:14: services.web.ports[0]: invalid hostPort: 99999"},
		{"container port out of range", []string{"services:\n  web:\n    image: x\n    ports:\n      - \"8080:80\"\n      - 70000\n"},
			"compose.yaml:6:9: services.web.ports[1]: invalid containerPort: 70000"},
		{"port not a number", []string{"services:\n  web:\n    image: x\n    ports: [\"abc:80\"]\n"},
			"compose.yaml:4:14: services.web.ports[0]: invalid hostPort: abc"},
		{"unknown key", []string{"services:\n  web:\n    image: x\n    foo: bar\n"},
			"compose.yaml:4:5: services.web.foo: not a compose key"},
		{"undefined network", []string{"services:\n  web:\n    image: x\n    networks: [front, nope]\nnetworks:\n  front: {}\n"},
			"compose.yaml:4:23: services.web.networks: undefined network \"nope\""},
		{"undefined service", []string{"services:\n  web:\n    image: x\n    depends_on:\n      - db\n"},
			"compose.yaml:5:9: services.web.depends_on: undefined service \"db\""},
		{"bad size", []string{"services:\n  web:\n    image: x\n    mem_limit: lots\n"},
			"compose.yaml:4:16: services.web.mem_limit: invalid size: 'lots'"},
		{"host mode with networks", []string{"services:\n  web:\n    image: x\n    network_mode: host\n    networks: [default]\n"},
			"compose.yaml:5:5: services.web.networks: network_mode and networks are mutually exclusive"},
		{"bad duration", []string{"services:\n  web:\n    image: x\n    healthcheck:\n      interval: soon\n"},
			"compose.yaml:5:17: services.web.healthcheck.interval: time: invalid duration \"soon\""},
		{"wrong type", []string{"services:\n  web:\n    image: x\n    environment: 5\n"},
			"compose.yaml:4:18: services.web.environment: must be a mapping"},
		{"extends a missing service", []string{"services:\n  web:\n    image: x\n    extends: nope\n"},
			"compose.yaml:4:14: services.web.extends: service \"nope\" not found"},
		{"bad port in an override file", []string{"services:\n  web:\n    image: x\n", "services:\n  web:\n    ports:\n      - 1.2.3.4:99999:80\n"},
			"compose.override.yaml:4:9: services.web.ports[0]: invalid hostPort: 99999"},
		{"unknown key in an override file", []string{"services:\n  web:\n    image: x\n", "services:\n  web:\n    imag: y\n"},
			"compose.override.yaml:3:5: services.web.imag: not a compose key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for i, text := range tc.files {
				name := "compose.yaml"
				if i > 0 {
					name = "compose.override.yaml"
				}
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				files = append(files, p)
			}
			_, err := LoadCompose(context.Background(), ComposeOptions{Files: files, WorkDir: dir})
			if err == nil {
				t.Fatal("loaded")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got %q\nwant %q", got, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Error("not one line")
			}
		})
	}
}

func TestPaths(t *testing.T) {
	for in, want := range map[string]string{
		"services[web].ports[0]":      "services.web.ports[0]",
		"services[web].healthcheck.x": "services.web.healthcheck.x",
	} {
		if got := bracketPath(in); got != want {
			t.Errorf("bracketPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := dottedPath("services.web.ports.0.published"); got != "services.web.ports[0].published" {
		t.Errorf("dottedPath = %q", got)
	}
}
