package load

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/transform"
	"github.com/compose-spec/compose-go/v2/tree"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// parsedLoads turns loadParsed's own way off (tests compare the two).
var parsedLoads = true

// loadParsed loads the project as po.LoadProject does, but hands
// compose-go the files unhost has already parsed, as decoded YAML, so that
// compose-go does not parse them again (its second parse is a tenth of a
// scan's load). It does so only where the result is provably the same:
// the project name is already decided (po.Name: compose-go would parse the
// files once more to look for name:), paths stay relative (ForScan), and
// every file passes plainDocument. Otherwise it is loadProject.
func (c *Compose) loadParsed(ctx context.Context, po *cli.ProjectOptions, forScan bool) (*types.Project, error) {
	if !forScan || po.Name == "" || !parsedLoads {
		return loadProject(ctx, po)
	}
	wd, err := po.GetWorkingDir()
	if err != nil {
		return nil, err
	}
	if po.Environment == nil {
		po.Environment = types.Mapping{} // compose-go sets the project name in it
	}
	details := types.ConfigDetails{WorkingDir: wd, Environment: po.Environment}
	for _, f := range c.Files {
		cfg, ok := decodedDocument(f)
		if !ok {
			return loadProject(ctx, po)
		}
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f.Abs, Content: f.Data, Config: cfg})
	}
	// the options po.LoadProject passes: those unhost gave po (every
	// profile, no environment resolution, c.loadOpts), then the name,
	// which po.Name makes explicit; compose-go's Windows path conversion
	// applies only where paths are resolved, which ForScan turns off, and
	// po has no listeners
	opts := []func(*loader.Options){loader.WithProfiles([]string{"*"}), func(o *loader.Options) { o.SkipResolveEnvironment = true }}
	opts = append(opts, c.loadOpts...)
	opts = append(opts, func(o *loader.Options) { o.SetProjectName(po.Name, true) })
	defaults, lateDefaults := defaultKeys()
	if lateDefaults {
		opts = append(opts, func(o *loader.Options) { o.SkipDefaultValues = true })
	}
	var project *types.Project
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("compose loader failed: %v", r)
			}
		}()
		if !lateDefaults {
			project, err = loader.LoadWithContext(ctx, details, opts...)
			return
		}
		// loader.LoadWithContext in its two halves, with compose-go's
		// default values set between them instead of before validation
		// and normalisation (see setDefaults)
		var dict map[string]any
		if dict, err = loader.LoadModelWithContext(ctx, details, opts...); err != nil {
			return
		}
		if err = setDefaults(dict, defaults); err != nil {
			return
		}
		project, err = loader.ModelToProject(dict, loader.ToOptions(&details, opts), details)
	}()
	if err != nil {
		return nil, err
	}
	for _, f := range details.ConfigFiles {
		project.ComposeFiles = append(project.ComposeFiles, f.Filename)
	}
	return project, nil
}

// decodedDocument decodes f's parsed YAML as compose-go decodes the file's
// text (its ResetProcessor ends in Node.Decode of the same tree), when f
// holds one document without the tags (!reset, !override) and duplicate
// keys that compose-go's processor handles or refuses: then the two are
// the same value. Every call decodes afresh, since compose-go changes the
// value it loads.
func decodedDocument(f *SourceFile) (map[string]any, bool) {
	if f.Root == nil || !oneDocument(f.Data) || !plainTree(f.Root, map[*yaml.Node]bool{}) {
		return nil, false
	}
	var raw any
	if err := f.Root.Decode(&raw); err != nil {
		return nil, false
	}
	m, ok := raw.(map[string]any)
	return m, ok
}

// oneDocument reports whether data certainly holds one YAML document:
// no line starts with a document marker ("---" or "...") except a "---"
// before any content. It may say no to a file of one document (a marker
// inside a quoted string); the caller then lets compose-go parse it.
func oneDocument(data []byte) bool {
	content := false
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimRight(line, "\r")
		if marker(line, "---") || marker(line, "...") {
			if content || line[0] == '.' {
				return false
			}
			rest := bytes.TrimSpace(line[3:])
			if len(rest) > 0 && rest[0] != '#' {
				return false // content on the marker's line
			}
			content = true
			continue
		}
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if line[0] == '%' && !content {
			return false // a directive: leave it to compose-go
		}
		content = true
	}
	return true
}

func marker(line []byte, m string) bool {
	return bytes.HasPrefix(line, []byte(m)) && (len(line) == 3 || line[3] == ' ' || line[3] == '\t')
}

// plainTree reports whether no node under n carries a !reset or !override
// tag and no mapping repeats a key.
func plainTree(n *yaml.Node, seen map[*yaml.Node]bool) bool {
	if n == nil || seen[n] {
		return true
	}
	seen[n] = true
	if n.Tag == "!reset" || n.Tag == "!override" {
		return false
	}
	if n.Kind == yaml.AliasNode {
		return plainTree(n.Alias, seen)
	}
	if n.Kind == yaml.MappingNode {
		keys := make(map[string]bool, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			if keys[n.Content[i].Value] {
				return false
			}
			keys[n.Content[i].Value] = true
		}
	}
	for _, c := range n.Content {
		if !plainTree(c, seen) {
			return false
		}
	}
	return true
}

// defaultKeys returns, by top-level key (services, jobs), the keys of a
// service under which compose-go's default values apply
// (transform.DefaultValues), and whether they all have that shape:
// "services.*.KEY" or deeper. Then setDefaults can work on those keys
// alone.
func defaultKeys() (map[string]map[string]bool, bool) {
	out := map[string]map[string]bool{}
	for pattern := range transform.DefaultValues {
		parts := strings.Split(string(pattern), ".")
		if len(parts) < 3 || parts[0] == tree.PathMatchAll || parts[1] != tree.PathMatchAll || parts[2] == tree.PathMatchAll || parts[2] == tree.PathMatchList {
			return nil, false
		}
		if out[parts[0]] == nil {
			out[parts[0]] = map[string]bool{}
		}
		out[parts[0]][parts[2]] = true
	}
	return out, true
}

// setDefaults sets compose-go's default values (transform.SetDefaultValues)
// on a loaded model, walking only the keys they apply under: compose-go
// walks every value of the model and matches its path against every
// pattern, which costs a tenth of a scan's load. It runs on the validated,
// normalised model, not before validation and normalisation as in
// compose-go, and gives the same model: the defaults (a port's protocol
// and mode, a build's context, a secret's target, a bind's
// create_host_path, a device request's count) are added only where absent;
// no check of validation.Validate reads them (a device request's count is
// added only where neither count nor device_ids is set, so the check that
// the two exclude each other says the same); and normalisation sets a
// build's absent context to the same "." and reads nothing else of them.
// TestLateDefaults compares the two on the corpus.
func setDefaults(dict map[string]any, keys map[string]map[string]bool) error {
	sub := map[string]any{}
	type slot struct {
		container map[string]any
		reduced   map[string]any
	}
	var slots []slot
	for top, ks := range keys {
		containers, ok := dict[top].(map[string]any)
		if !ok {
			if _, present := dict[top]; present {
				sub[top] = dict[top] // not a mapping: let compose-go say what it makes of it
			}
			continue
		}
		reducedTop := map[string]any{}
		for name, c := range containers {
			container, ok := c.(map[string]any)
			if !ok {
				reducedTop[name] = c
				continue
			}
			reduced := map[string]any{}
			for k := range ks {
				if v, ok := container[k]; ok {
					reduced[k] = v
				}
			}
			reducedTop[name] = reduced
			slots = append(slots, slot{container, reduced})
		}
		sub[top] = reducedTop
	}
	if _, err := transform.SetDefaultValues(sub); err != nil {
		return err
	}
	// the default functions change values in place; copy back what they
	// return all the same
	for _, s := range slots {
		for k, v := range s.reduced {
			s.container[k] = v
		}
	}
	return nil
}
