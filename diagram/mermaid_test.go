package diagram

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unhost/unhost/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// planFiles are migrate's golden plans: real plans of every shape.
func planFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "migrate", "*", "golden", "plan.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no plans under ../testdata/migrate: %v", err)
	}
	return files
}

func readPlan(t *testing.T, path string) *plan.Plan {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &p
}

// tricky is a plan with names and texts that need escaping, a service
// named like a Mermaid keyword, and observed edges.
func tricky() (*plan.Plan, Options) {
	p := &plan.Plan{
		Version: plan.Version, Project: "shop\n\"quoted\"", Target: plan.TargetBridge,
		Services: []plan.ServicePlan{
			{Name: "end", Action: plan.ActionMigrate, Networks: []string{"default"},
				Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 8080, Address: "0.0.0.0", Decision: plan.DecisionPublish, Publish: "127.0.0.1:8080:8080"}}},
			{Name: "web_1", Action: plan.ActionMigrate, Networks: []string{"default", "back"},
				Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 9000, PortEnd: 9002, Address: "::", Decision: plan.DecisionInternal}}},
			{Name: "web.1", Action: plan.ActionKeepHost,
				Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 1883, Address: "0.0.0.0", Decision: plan.DecisionUnchanged}}},
			{Name: "db", Action: plan.ActionMigrate, Networks: []string{"back"},
				Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: 5432, Address: "0.0.0.0", Decision: plan.DecisionInternal}}},
			{Name: "legacy", Action: plan.ActionUnchanged},
		},
		Networks: []plan.NetworkPlan{{Name: "back", Internal: true, Services: []string{"db", "web_1"}}},
		Exposure: []plan.Exposure{
			{Service: "end", Protocol: "tcp", Port: "8080", Before: "all interfaces", After: "loopback (published)"},
			{Service: "db", Protocol: "tcp", Port: "5432", Before: "all interfaces <assumed> | \"x\" & #1", After: "stack-internal"},
		},
		References: []plan.Reference{
			{From: "web_1", To: "db", Port: 5432, Kind: plan.RefService, Action: "rewrite"},
			{From: "web.1", To: "end", Port: 8080, Kind: plan.RefService, Action: "rewrite"},
			{From: "end", To: "host", Port: 1883, Kind: plan.RefHostService, Action: "rewrite", After: "host.docker.internal:1883"},
			{From: "db", To: "host", Port: 25, Kind: plan.RefHostService, Action: "rewrite", After: "host.docker.internal:25"},
		},
	}
	return p, Options{Window: "15s", Edges: []Edge{
		{From: "web_1", To: "db", Port: 5432, Count: 12},
		{From: "end", To: "web_1", Port: 9000, Count: 3},
		{From: "legacy", To: "nowhere", Port: 1},
	}}
}

func TestGolden(t *testing.T) {
	cases := map[string]string{}
	for _, f := range planFiles(t) {
		cases[filepath.Base(filepath.Dir(filepath.Dir(f)))] = Mermaid(readPlan(t, f))
	}
	p, o := tricky()
	cases["tricky"] = MermaidWith(p, o)
	for name, got := range cases {
		golden := filepath.Join("testdata", name+".mmd")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./diagram -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
		}
	}
}

// The subset of Mermaid that Mermaid emits, checked line by line.
var (
	idRe      = `[A-Za-z][A-Za-z0-9_]*`
	labelRe   = `"((?:[^"#<>&|` + "`" + `]|#[a-z]+;|#[0-9]+;|<br/>)*)"`
	nodeLine  = regexp.MustCompile(`^\s*(` + idRe + `)(?:\[` + labelRe + `\]|\(\(` + labelRe + `\)\))$`)
	subLine   = regexp.MustCompile(`^\s*subgraph (` + idRe + `)\[` + labelRe + `\]$`)
	linkLine  = regexp.MustCompile(`^\s*(` + idRe + `) (?:-->|-\.->)\|` + labelRe + `\| (` + idRe + `)$`)
	classDef  = regexp.MustCompile(`^\s*classDef ` + idRe + ` [a-z-]+:[#0-9a-z ]+(?:,[a-z-]+:[#0-9a-z ]+)*$`)
	classLine = regexp.MustCompile(`^\s*class (` + idRe + `(?:,` + idRe + `)*) ` + idRe + `$`)
	reserved  = map[string]bool{"end": true, "subgraph": true, "graph": true, "flowchart": true, "class": true, "classDef": true, "style": true, "click": true, "linkStyle": true}
)

// checkStructure validates one diagram: a flowchart header, every line in
// the subset, ids valid and not keywords, labels escaped, every link joins
// defined nodes, every class names defined nodes, subgraphs closed.
func checkStructure(text string) error {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if !strings.HasSuffix(text, "\n") || len(lines) == 0 || lines[0] != "flowchart LR" {
		return fmt.Errorf("not a flowchart LR ending in a newline")
	}
	defined := map[string]bool{}
	type ref struct {
		line int
		id   string
	}
	var uses []ref
	depth := 0
	for i, l := range lines[1:] {
		n := i + 2
		trim := strings.TrimSpace(l)
		if m := subLine.FindStringSubmatch(l); m != nil {
			if defined[m[1]] || reserved[m[1]] {
				return fmt.Errorf("line %d: subgraph id %q reused or reserved", n, m[1])
			}
			defined[m[1]] = true
			depth++
			continue
		}
		switch {
		case trim == "end":
			depth--
			if depth < 0 {
				return fmt.Errorf("line %d: end without subgraph", n)
			}
		case strings.HasPrefix(trim, "%%"):
		case nodeLine.MatchString(l):
			id := nodeLine.FindStringSubmatch(l)[1]
			if defined[id] || reserved[id] {
				return fmt.Errorf("line %d: node id %q defined twice or reserved", n, id)
			}
			defined[id] = true
		case linkLine.MatchString(l):
			m := linkLine.FindStringSubmatch(l)
			uses = append(uses, ref{n, m[1]}, ref{n, m[3]})
		case classDef.MatchString(l):
		case classLine.MatchString(l):
			for _, id := range strings.Split(classLine.FindStringSubmatch(l)[1], ",") {
				uses = append(uses, ref{n, id})
			}
		default:
			return fmt.Errorf("line %d: not in the emitted subset (or a label is not escaped): %q", n, l)
		}
	}
	if depth != 0 {
		return fmt.Errorf("%d subgraphs not closed", depth)
	}
	for _, u := range uses {
		if !defined[u.id] {
			return fmt.Errorf("line %d: %q is not a defined node", u.line, u.id)
		}
	}
	return nil
}

func TestStructure(t *testing.T) {
	for _, f := range planFiles(t) {
		if err := checkStructure(Mermaid(readPlan(t, f))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	p, o := tricky()
	if err := checkStructure(MermaidWith(p, o)); err != nil {
		t.Errorf("tricky: %v", err)
	}
}

// The checker itself must reject what it is there to catch.
func TestStructureRejects(t *testing.T) {
	for name, text := range map[string]string{
		"unclosed subgraph": "flowchart LR\n  subgraph g_a[\"a\"]\n    s_a[\"a\"]\n",
		"stray end":         "flowchart LR\n  s_a[\"a\"]\n  end\n",
		"undefined node":    "flowchart LR\n  s_a[\"a\"]\n  s_a -->|\"1\"| s_b\n",
		"raw quote":         "flowchart LR\n  s_a[\"a\"b\"]\n",
		"raw angle":         "flowchart LR\n  s_a[\"<script>\"]\n",
		"bad id":            "flowchart LR\n  1a[\"a\"]\n",
		"keyword id":        "flowchart LR\n  end[\"a\"]\n",
		"class of nothing":  "flowchart LR\n  s_a[\"a\"]\n  class s_b kept\n",
		"no header":         "s_a[\"a\"]\n",
	} {
		if err := checkStructure(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEscapeAndIdent(t *testing.T) {
	for in, want := range map[string]string{
		`a"b`: "a#quot;b", "<br>": "#60;br#62;", "a|b": "a#124;b", "#1 & 2": "#35;1 #38; 2", "x\ny": "x y", "héllo → ok": "héllo → ok",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{"web_1", "web.1", "web-1", "web1", "end", "Ωmega"} {
		id := ident(name)
		if !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(id) {
			t.Errorf("ident(%q) = %q", name, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("ident(%q) = ident(%q) = %q", name, other, id)
		}
		seen[id] = name
	}
}

func FuzzMermaid(f *testing.F) {
	f.Add("web", "db", "default", "all interfaces", 8080)
	f.Add("end", `a"b|c`, "x<y>", "#quot;", 0)
	f.Fuzz(func(t *testing.T, a, b, network, reach string, port int) {
		p := &plan.Plan{Project: a,
			Services: []plan.ServicePlan{
				{Name: a, Action: plan.ActionMigrate, Networks: []string{network},
					Listeners: []plan.ListenerPlan{{Protocol: "tcp", Port: port, Decision: plan.DecisionPublish}}},
				{Name: b, Action: plan.ActionKeepHost},
			},
			Exposure:   []plan.Exposure{{Service: a, Protocol: "tcp", Port: fmt.Sprint(port), Before: reach, After: reach}},
			References: []plan.Reference{{From: b, To: a, Port: port, Kind: plan.RefService}},
		}
		if a == b {
			return // a plan never holds one service twice
		}
		if err := checkStructure(MermaidWith(p, Options{Edges: []Edge{{From: a, To: b, Port: port, Count: 1}}, Window: reach})); err != nil {
			t.Error(err)
		}
	})
}
