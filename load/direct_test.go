package load

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/transform"
)

// directCases are files whose load differs from the plain one in a way a
// scan could meet: every default value, every shape decodedDocument turns
// away, unset variables.
var directCases = map[string]string{
	"defaults.yml": `services:
  a:
    image: x
    network_mode: host
    ports: ["80", "127.0.0.1:81:81/udp", {target: 82, published: "8082"}, {target: 83, protocol: ""}]
    build: {dockerfile: D}
    secrets: [s, {source: s}]
    volumes: ["./d:/d", {type: bind, source: ./e, target: /e, bind: {propagation: rprivate}}]
    gpus: [{driver: nvidia}]
    deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}, {capabilities: [gpu], device_ids: ["0"]}]}}}
  b:
    build: .
    pre_start: [{image: y, user: root}]
secrets:
  s: {file: ./s}
`,
	"twodocs.yml":  "services:\n  a: {image: x}\n---\nservices:\n  b: {image: y}\n",
	"trailing.yml": "---\nservices:\n  a: {image: x, ports: ['80']}\n...\n",
	"reset.yml":    "x-a: &a {ports: ['80']}\nservices:\n  a:\n    <<: *a\n    image: x\n    ports: !reset []\n",
	"override.yml": "services:\n  a:\n    image: x\n    ports: !override ['81']\n",
	"dupkey.yml":   "services:\n  a: {image: x}\n  a: {image: y}\n",
	"unset.yml":    "services:\n  a:\n    image: x\n    container_name: ${NAME}\n    ports: [\"${PORT}:80\"]\n",
	"include.yml":  "include: [sub/inc.yml]\nservices:\n  a: {image: x, network_mode: host}\n",
	"sub/inc.yml":  "services:\n  b:\n    build: {dockerfile: D}\n    ports: ['80']\n",
	"extends.yml":  "services:\n  base: {image: x, ports: ['90'], build: {dockerfile: E}}\n  c: {extends: base, network_mode: host}\n",
	"anchors.yml":  "x-p: &p ['80', '81']\nservices:\n  a: {image: x, ports: *p, network_mode: host}\n  b: {image: x, ports: *p}\n",
}

// TestLoadParsedSame loads every corpus file, every YAML file of the
// repository's testdata and the cases above with loadParsed's own way and
// with po.LoadProject, and wants the same project, or the same error.
func TestLoadParsedSame(t *testing.T) {
	files := sameCaseFiles(t)
	// both kinds of load: a scan's (relative paths, late defaults) and
	// migrate's (resolved paths, compose-go's defaults)
	for _, forScan := range []bool{true, false} {
		load := func(p string, parsed bool) (*Compose, error) {
			parsedLoads = parsed
			defer func() { parsedLoads = true }()
			return LoadCompose(context.Background(), ComposeOptions{Files: []string{p}, ForScan: forScan})
		}
		loaded := 0
		for _, p := range files {
			want, werr := load(p, false)
			got, gerr := load(p, true)
			if (werr == nil) != (gerr == nil) || werr != nil && anyService(werr.Error()) != anyService(gerr.Error()) {
				t.Errorf("%s (forScan %v): error %v, want %v", p, forScan, gerr, werr)
				continue
			}
			if werr != nil {
				continue
			}
			loaded++
			if !reflect.DeepEqual(got.Project, want.Project) {
				t.Errorf("%s (forScan %v): the project differs from compose-go's own load", p, forScan)
			}
			if !reflect.DeepEqual(got.Unset, want.Unset) || got.Lenient != want.Lenient || !reflect.DeepEqual(got.Warnings, want.Warnings) {
				t.Errorf("%s (forScan %v): unset %v lenient %v warnings %q, want %v %v %q", p, forScan, got.Unset, got.Lenient, got.Warnings, want.Unset, want.Lenient, want.Warnings)
			}
		}
		if loaded < len(directCases)-3 {
			t.Errorf("forScan %v: only %d files loaded: the comparison says little", forScan, loaded)
		}
	}
}

// sameCaseFiles writes the cases above to a temporary folder and returns
// them with every corpus file and every YAML file of the testdata.
func sameCaseFiles(t *testing.T) []string {
	dir := t.TempDir()
	var files []string
	for name, text := range directCases {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	corpus, _ := filepath.Glob("../../shared/corpus/*.y*ml*")
	files = append(files, corpus...)
	_ = filepath.WalkDir("../testdata", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (filepath.Ext(p) == ".yml" || filepath.Ext(p) == ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if len(corpus) == 0 {
		t.Log("../../shared/corpus is not here: only the cases and testdata are compared")
	}
	return files
}

// TestReloadParsedSame re-checks every file that loads, as written and
// with a service added that compose refuses, with compose-go decoding
// unhost's parse and with compose-go parsing the text itself, and wants
// the same model, or the same error.
func TestReloadParsedSame(t *testing.T) {
	reload := func(c *Compose, contents map[string][]byte, parsed bool) (map[string]any, error) {
		parsedLoads = parsed
		defer func() { parsedLoads = true }()
		return c.Reload(context.Background(), contents)
	}
	checked, refused := 0, 0
	for _, p := range sameCaseFiles(t) {
		c, err := LoadCompose(context.Background(), ComposeOptions{Files: []string{p}})
		if err != nil {
			continue
		}
		f := c.Files[0]
		bad := strings.Replace(string(f.Data), "services:\n", "services:\n  zz-unhost-bad: {image: x, ports: {bad: 1}}\n", 1)
		for _, text := range []string{string(f.Data), bad} {
			contents := map[string][]byte{f.Abs: []byte(text)}
			want, werr := reload(c, contents, false)
			got, gerr := reload(c, contents, true)
			if (werr == nil) != (gerr == nil) || werr != nil && anyService(werr.Error()) != anyService(gerr.Error()) {
				t.Errorf("%s: error %v, want %v", p, gerr, werr)
				continue
			}
			if werr != nil {
				refused++
				continue
			}
			checked++
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: the model differs from compose-go's own parse", p)
			}
		}
	}
	t.Logf("%d re-checks compared, %d refused both ways", checked, refused)
	if checked < len(directCases)-3 || refused == 0 {
		t.Errorf("%d files re-checked, %d refused: the comparison says little", checked, refused)
	}
}

// consistencyRe matches the service compose-go's consistency check names:
// it iterates a map, so which of several bad services it names changes
// from run to run.
var consistencyRe = regexp.MustCompile(`service "?[A-Za-z0-9_.-]+"? (has neither|declares mutually exclusive|refers to)`)

func anyService(msg string) string { return consistencyRe.ReplaceAllString(msg, "service S $1") }

func TestDecodedDocumentRefuses(t *testing.T) {
	for _, name := range []string{"twodocs.yml", "reset.yml", "override.yml", "dupkey.yml"} {
		f, err := ParseSource(name, name, []byte(directCases[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := decodedDocument(f); ok {
			t.Errorf("%s: decoded from unhost's parse, want compose-go to parse it", name)
		}
	}
	f, err := ParseSource("trailing.yml", "trailing.yml", []byte(directCases["trailing.yml"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodedDocument(f); ok {
		t.Error("a file ending in a document end marker decoded from unhost's parse")
	}
}

func TestOneDocument(t *testing.T) {
	for text, want := range map[string]bool{
		"a: 1\n":                 true,
		"---\na: 1\n":            true,
		"# c\n--- # x\na: 1\n":   true,
		"a: 1\n---\n":            false,
		"a: 1\n...\n":            false,
		"--- a\n":                false,
		"%YAML 1.2\n---\na: 1\n": false,
		"a: |\n  ---\n  x\n":     true,
		"a: 1\n----\n":           true,
		"a: 1\n---\nb: 2\n":      false,
		"\r\n---\r\na: 1\r\n":    true,
	} {
		if got := oneDocument([]byte(text)); got != want {
			t.Errorf("oneDocument(%q) = %v, want %v", text, got, want)
		}
	}
}

// TestDefaultPatterns: compose-go's default values do not overlap, so
// setDefaults may apply them one by one; and overlap says so where they
// would.
func TestDefaultPatterns(t *testing.T) {
	if _, ok := defaultPatterns(); !ok {
		t.Fatalf("compose-go's default values overlap: %v", transform.DefaultValues)
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"services.*.ports.*", "services.*.ports.*", true},
		{"services.*.build", "services.*.build.x", true},
		{"services.*.ports.*", "jobs.*.ports.*", false},
		{"services.*.ports.*", "services.*.volumes.*.bind", false},
		{"*.a", "services.b", false},
		{"*.a", "services.*", true},
	} {
		if got := overlap(strings.Split(c.a, "."), strings.Split(c.b, ".")); got != c.want {
			t.Errorf("overlap(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
