package scan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unhost/unhost/load"
)

func TestScanNeedsModel(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       bool
	}{
		{"plain", "services:\n  web: {image: nginx, ports: ['80:80']}\n", nil, false},
		{"host mode", "services:\n  a: {image: x, network_mode: host}\n", nil, true},
		{"host mode through an anchor", "x-h: &h {network_mode: host}\nservices:\n  a: {<<: *h, image: x}\n", nil, true},
		{"host mode through extends", "services:\n  b: {image: x, network_mode: host}\n  a: {extends: b}\n", nil, true},
		{"host mode by variable default", "services:\n  a: {image: x, network_mode: '${M:-host}'}\n", nil, true},
		{"mode from a variable", "services:\n  a: {image: x, network_mode: '${M}'}\n", nil, true},
		{"service chain", "services:\n  a: {image: x, network_mode: 'service:b'}\n  b: {image: y}\n", nil, true},
		{"swarm host network", "services:\n  a: {image: x, networks: [h]}\nnetworks:\n  h: {external: true, name: host}\n", nil, true},
		{"network named by a variable", "services:\n  a: {image: x, networks: [h]}\nnetworks:\n  h: {external: true, name: $NET}\n", nil, true},
		{"localhost", "services:\n  a: {image: x, environment: [DB=localhost:5432]}\n  db: {image: postgres}\n", nil, true},
		{"127.0.0.1", "services:\n  a: {image: x, command: --db 127.0.0.1:5432}\n  db: {image: postgres}\n", nil, true},
		{"localhost in the only service", "services:\n  a: {image: x, healthcheck: {test: curl -f http://localhost:8080/}}\n", nil, false},
		{"variable set in env", "services:\n  a: {image: x, environment: [DB=$DB]}\n", []string{"DB=db"}, true},
		{"variable not set", "services:\n  a: {image: x, environment: [DB=$DB]}\n", []string{"OTHER=1"}, false},
		{"include", "include: [other.yaml]\nservices:\n  a: {image: x}\n", nil, true},
		{"reset tag", "services:\n  a: {image: x, ports: !reset []}\n", nil, true},
		{"extends another file", "services:\n  a: {image: x, extends: {file: b.yaml, service: b}}\n", nil, true},
		{"neither image nor build", "services:\n  a: {ports: ['80:80']}\n", nil, true},
		{"build only", "services:\n  a: {build: ., ports: ['80:80']}\n", nil, false},
		{"service that is not a mapping", "services:\n  a: {image: x}\n  b:\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			abs := filepath.Join(dir, "compose.yaml")
			f := Classify("compose.yaml", abs, []byte(tc.yaml))
			if f == nil || f.Kind != KindCompose {
				t.Fatalf("not classified as compose: %+v", f)
			}
			if got := needsModel(f, tc.env); got != tc.want {
				t.Errorf("needsModel = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run(".env beside", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("DB=localhost\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f := Classify("compose.yaml", filepath.Join(dir, "compose.yaml"), []byte("services:\n  a: {image: x, environment: [DB=$DB]}\n"))
		if !needsModel(f, nil) {
			t.Error("a file with variables and a .env beside it is not loaded")
		}
	})
}

// TestScanGateAgrees scans every file of the corpus and the fixture tree
// that the cheap path takes both ways, from its structure and through
// compose-go, and wants the same findings.
func TestScanGateAgrees(t *testing.T) {
	var files []string
	for _, dir := range []string{corpusDir(t), filepath.Join("..", "testdata", "scan", "tree")} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && IsCandidateName(d.Name()) {
				files = append(files, p)
			}
			return nil
		})
	}
	// files made to take the cheap path through every way YAML and
	// Compose combine a service's ports
	synth := t.TempDir()
	for i, text := range []string{
		"services:\n  web: {image: nginx, ports: ['80:80', '10.0.0.2:81:81', {target: 82, published: '82'}, {target: 83, host_ip: 10.0.0.1}]}\n",
		"x-p: &p\n  ports: ['8080:80']\n  image: x\nservices:\n  a: {<<: *p}\n  b:\n    <<: *p\n    ports: ['9090:90']\n",
		"x-a: &a {ports: ['1:1'], image: x}\nx-b: &b {ports: ['2:2'], image: y}\nservices:\n  m: {<<: [*a, *b]}\n",
		"services:\n  base: {image: x, ports: ['7000:7000']}\n  child: {extends: base, ports: ['7001:7001']}\n  other: {extends: {service: base}}\n",
		"services:\n  n: {image: x, network_mode: none, ports: ['5:5']}\n  br: {image: x, network_mode: bridge, ports: ['6:6']}\n",
		"services:\n  p: {image: x, profiles: [debug], ports: ['3000-3005:3000-3005/udp']}\n  q: {build: ., expose: ['9']}\n",
		"services:\n  w: &w {image: x, ports: ['4:4']}\n  v: *w\n",
		"services:\n  h: {image: x, ports: ['8080:8080'], environment: [SELF=http://localhost:8080], healthcheck: {test: [CMD, curl, -f, 'http://127.0.0.1:8080/']}}\n",
	} {
		name := filepath.Join(synth, fmt.Sprintf("synth%d.yaml", i))
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	taken := 0
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(p)
		f := Classify(filepath.ToSlash(p), abs, data)
		if f == nil || f.Kind != KindCompose || needsModel(f, nil) {
			if strings.Contains(p, "synth") {
				t.Errorf("%s does not take the cheap path", p)
			}
			continue
		}
		taken++
		c, err := load.LoadCompose(context.Background(), load.ComposeOptions{Files: []string{abs}, ForScan: true, Parsed: []*load.SourceFile{f.Source}})
		if err != nil {
			t.Errorf("%s: the cheap path takes a file compose-go refuses: %v", p, err)
			continue
		}
		loaded, cheap := mergeFindings(scanLoaded(c)), mergeFindings(scanStructure(f))
		if !reflect.DeepEqual(loaded, cheap) {
			t.Errorf("%s: findings differ:\nloaded %+v\ncheap  %+v", p, loaded, cheap)
		}
	}
	if taken == 0 {
		t.Error("no file takes the cheap path: the test compares nothing")
	}
	t.Logf("%d of %d files take the cheap path", taken, len(files))
}
