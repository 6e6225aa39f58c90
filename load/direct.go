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
	"github.com/compose-spec/compose-go/v2/utils"
	"go.yaml.in/yaml/v4"
)

// parsedLoads turns loadParsed's own way off (tests compare the two).
var parsedLoads = true

// loadParsed loads the project as po.LoadProject does, but hands
// compose-go the files unhost has already parsed, as decoded YAML, so that
// compose-go does not parse them again (its second parse is a tenth of a
// scan's load). It does so only where the result is provably the same:
// the project name is already decided (po.Name: compose-go would parse the
// files once more to look for name:) and every file passes
// decodedDocument. Otherwise it is loadProject. A scan's load (forScan)
// keeps paths relative and sets compose-go's default values on the loaded
// model (setDefaults); any other load resolves paths, so the defaults
// (such as a build's context ".") are set where compose-go sets them,
// before the paths are resolved.
func (c *Compose) loadParsed(ctx context.Context, po *cli.ProjectOptions, forScan bool) (*types.Project, error) {
	if po.Name == "" || !parsedLoads {
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
	// which po.Name makes explicit, and compose-go's Windows path
	// conversion where paths are resolved (ForScan turns that off; it
	// changes nothing off Windows, where no path has a volume name); po
	// has no listeners
	opts := []func(*loader.Options){loader.WithProfiles([]string{"*"}), func(o *loader.Options) { o.SkipResolveEnvironment = true }}
	opts = append(opts, c.loadOpts...)
	opts = append(opts, func(o *loader.Options) { o.SetProjectName(po.Name, true) })
	opts = append(opts, func(o *loader.Options) {
		if o.ResolvePaths {
			o.ConvertWindowsPaths = utils.StringToBool(po.Environment["COMPOSE_CONVERT_WINDOWS_PATHS"])
		}
	})
	defaults, lateDefaults := defaultPatterns()
	lateDefaults = lateDefaults && forScan
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
// value it loads. The decoder's own duplicate-key check, which compares
// every pair of keys of a mapping (quadratic in the 5,000 keys of a large
// services:), is left out: plainTree has refused every repeated key.
func decodedDocument(f *SourceFile) (map[string]any, bool) {
	if f.Root == nil || !oneDocument(f.Data) || !plainTree(f.Root, map[*yaml.Node]bool{}) {
		return nil, false
	}
	var raw any
	if err := f.Root.Load(&raw, yaml.WithUniqueKeys(false)); err != nil {
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

// defaultPatterns returns compose-go's default values
// (transform.DefaultValues) as split patterns, and whether setDefaults may
// apply them one after the other: no two patterns can match the same path
// or a path and one of its descendants. compose-go applies the first
// pattern that matches a value and does not look below it, so overlapping
// patterns would make the order matter.
func defaultPatterns() ([]defaultPattern, bool) {
	var out []defaultPattern
	for pattern, fn := range transform.DefaultValues {
		out = append(out, defaultPattern{parts: strings.Split(string(pattern), "."), fn: fn})
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if overlap(out[i].parts, out[j].parts) {
				return nil, false
			}
		}
	}
	return out, true
}

type defaultPattern struct {
	parts []string
	fn    transform.Func
}

// overlap reports whether some path matches a, or lies below a path that
// matches a, and matches b (or the other way round).
func overlap(a, b []string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] && a[i] != tree.PathMatchAll && b[i] != tree.PathMatchAll {
			return false
		}
	}
	return true
}

// setDefaults sets compose-go's default values (transform.SetDefaultValues)
// on a loaded model, following each pattern's path: compose-go walks every
// value of the model and matches its path against every pattern
// (tree.Path.Matches splits both for each pair), which costs a tenth of a
// scan's load. It runs on the validated, normalised model, not before
// validation and normalisation as in compose-go, and gives the same model:
// the defaults (a port's protocol and mode, a build's context, a secret's
// target, a bind's create_host_path, a device request's count) are added
// only where absent; no check of validation.Validate reads them (a device
// request's count is added only where neither count nor device_ids is
// set, so the check that the two exclude each other says the same); and
// normalisation sets a build's absent context to the same "." and reads
// nothing else of them. Files reached through include get their defaults
// from compose-go itself, before their paths are resolved against their
// own folder (its Options.clone does not carry SkipDefaultValues).
// TestLoadParsedSame compares the two ways, include and extends too.
func setDefaults(dict map[string]any, patterns []defaultPattern) error {
	for _, p := range patterns {
		if _, err := applyPattern(dict, p.parts, tree.NewPath(), p.fn); err != nil {
			return err
		}
	}
	return nil
}

// applyPattern calls fn on every value below data whose path matches
// parts, as tree.Path.Matches would match it: "*" stands for any key and
// for any item of a sequence (whose path part is "[]").
func applyPattern(data any, parts []string, p tree.Path, fn transform.Func) (any, error) {
	if len(parts) == 0 {
		return fn(data, p, false)
	}
	part := parts[0]
	switch v := data.(type) {
	case map[string]any:
		if part == tree.PathMatchAll {
			for k, e := range v {
				t, err := applyPattern(e, parts[1:], p.Next(k), fn)
				if err != nil {
					return nil, err
				}
				v[k] = t
			}
		} else if e, ok := v[part]; ok {
			t, err := applyPattern(e, parts[1:], p.Next(part), fn)
			if err != nil {
				return nil, err
			}
			v[part] = t
		}
	case []any:
		if part == tree.PathMatchAll || part == tree.PathMatchList {
			for i, e := range v {
				t, err := applyPattern(e, parts[1:], p.Next(tree.PathMatchList), fn)
				if err != nil {
					return nil, err
				}
				v[i] = t
			}
		}
	}
	return data, nil
}
