package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// File kinds.
const (
	KindCompose  = "compose"  // a Compose file: a top-level services mapping
	KindFragment = "fragment" // YAML holding service-like mappings, not loadable alone
	KindText     = "text"     // not YAML (a template), with signs of Compose in its text
	KindSkipped  = "skipped"  // not read: not a regular file, too large, or outside the scanned root
)

// File is a file that holds Compose services or fragments of them.
type File struct {
	Show string // relative to the work folder, forward slashes
	Abs  string
	Data []byte
	Kind string
	// Root is the top-level YAML mapping; nil for KindText.
	Root *yaml.Node
	// Source is the parsed file, for KindCompose: loading reuses it.
	Source *load.SourceFile
	// Reason says why Compose cannot load the file (fragments and text),
	// or why it was not read (KindSkipped).
	Reason string
	// ScanRoot is the scanned root the file was found in, symlinks resolved:
	// what the file and those it names must stay inside.
	ScanRoot string
}

// Project is what `docker compose` would load together: a Compose file
// and the override file beside it, or one fragment or template alone.
type Project struct {
	Files []*File
}

// Loadable reports whether the project is worth handing to Compose.
func (p *Project) Loadable() bool {
	for _, f := range p.Files {
		if f.Kind != KindCompose {
			return false
		}
	}
	return len(p.Files) > 0
}

// skipDirs are folders never descended into.
var skipDirs = map[string]bool{".git": true, "node_modules": true, "vendor": true}

// yamlNameRe matches YAML file names, also templates of them
// (compose.yml.tmpl, compose.yaml.template, stack.yml.j2).
var yamlNameRe = regexp.MustCompile(`(?i)\.ya?ml(\.[a-z0-9_-]+)?$`)

// IsCandidateName reports whether a file name found in a folder is read.
func IsCandidateName(name string) bool {
	return yamlNameRe.MatchString(name) && !strings.Contains(name, ".unhost-backup")
}

var baseNames = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// overrideOf returns the override file names that go with a default base
// name, same extension first.
func overrideOf(name string) []string {
	stem, ext, ok := strings.Cut(name, ".")
	if !ok {
		return nil
	}
	other := "yml"
	if ext == "yml" {
		other = "yaml"
	}
	return []string{stem + ".override." + ext, stem + ".override." + other}
}

// baseOf returns the base names for an override file name, or nil.
func baseOf(name string) []string {
	for _, stem := range []string{"compose", "docker-compose"} {
		if name == stem+".override.yaml" || name == stem+".override.yml" {
			return []string{stem + ".yaml", stem + ".yml"}
		}
	}
	return nil
}

func isBaseName(name string) bool {
	for _, b := range baseNames {
		if name == b {
			return true
		}
	}
	return false
}

// Discover finds the Compose projects under paths, within the default
// Bounds: see DiscoverBounded.
func Discover(paths []string, workDir string) ([]*Project, error) {
	return DiscoverBounded(paths, workDir, Bounds{})
}

// candidate is a file to classify and the resolved root it was found in.
type candidate struct{ abs, root string }

// DiscoverBounded finds the Compose projects under paths: files named on
// the command line are taken whatever their name; folders are searched for
// YAML files (and templates of them) that hold Compose services. It fails
// only when a path argument cannot be read. A file that the bounds forbid
// reading (not a regular file, larger than the limit, outside the scanned
// root) is a project of its own with one KindSkipped file.
//
// The scanned root of a file found in a folder argument is that folder; of
// a file named on the command line, the work folder when the file lies in
// it, else the file's own folder.
func DiscoverBounded(paths []string, workDir string, b Bounds) ([]*Project, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var cands []candidate
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		if !fi.IsDir() {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			root, err := argumentRoot(abs, workDir)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
			}
			cands = append(cands, candidate{abs, root})
			continue
		}
		root, err := resolveRoot(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		top := p
		err = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == top {
					return err
				}
				return nil // an unreadable subfolder: nothing to scan there
			}
			if d.IsDir() {
				if path != top && skipDirs[d.Name()] {
					return filepath.SkipDir
				}
				return nil
			}
			if IsCandidateName(d.Name()) {
				if abs, err := filepath.Abs(path); err == nil {
					cands = append(cands, candidate{abs, root})
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
	}
	files := map[string]*File{}
	var order []string
	var unique []candidate
	for _, c := range cands {
		if _, ok := files[c.abs]; ok {
			continue
		}
		files[c.abs] = nil
		unique = append(unique, c)
		order = append(order, c.abs)
	}
	// reading and parsing is a fifth of a scan: spread it over the CPUs
	classified := make([]*File, len(unique))
	parallel(len(unique), runtime.GOMAXPROCS(0), func(i int) {
		classified[i] = classify(unique[i].abs, unique[i].root, workDir, b)
	})
	for i, c := range unique {
		files[c.abs] = classified[i]
	}
	sort.Strings(order)
	// read lazily the partner of an override or base that is not among
	// the candidates (pre-commit passes only the files that changed)
	partner := func(dir, root string, names []string) *File {
		for _, n := range names {
			abs := filepath.Join(dir, n)
			if f, ok := files[abs]; ok {
				return f
			}
			if _, err := os.Lstat(abs); err == nil {
				f := classify(abs, root, workDir, b)
				files[abs] = f
				if f != nil && f.Kind == KindSkipped {
					order = append(order, abs) // reported, though not named
				}
				return f
			}
		}
		return nil
	}
	done := map[string]bool{}
	var projects []*Project
	for i := 0; i < len(order); i++ {
		abs := order[i]
		f := files[abs]
		if f == nil || done[abs] {
			continue
		}
		if f.Kind == KindSkipped {
			done[abs] = true
			projects = append(projects, &Project{Files: []*File{f}})
			continue
		}
		dir, name := filepath.Split(abs)
		if bases := baseOf(name); bases != nil && f.Kind == KindCompose {
			if b := partner(dir, f.ScanRoot, bases); b != nil && b.Kind == KindCompose {
				if !done[b.Abs] {
					done[b.Abs], done[abs] = true, true
					projects = append(projects, &Project{Files: []*File{b, f}})
				}
				continue
			}
		}
		p := &Project{Files: []*File{f}}
		done[abs] = true
		if isBaseName(name) && f.Kind == KindCompose {
			if o := partner(dir, f.ScanRoot, overrideOf(name)); o != nil && o.Kind == KindCompose && !done[o.Abs] {
				done[o.Abs] = true
				p.Files = append(p.Files, o)
			}
		}
		projects = append(projects, p)
	}
	sort.Slice(projects, func(i, j int) bool { return projects[i].Files[0].Show < projects[j].Files[0].Show })
	return projects, nil
}

// argumentRoot is the scanned root of a file named on the command line:
// the work folder when the file lies in it, else the file's folder.
func argumentRoot(abs, workDir string) (string, error) {
	wd, err := filepath.Abs(workDir)
	if err != nil {
		return "", err
	}
	if within(wd, abs) {
		return resolveRoot(wd)
	}
	return resolveRoot(filepath.Dir(abs))
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// classify reads a file within the bounds and says whether it holds
// Compose services: nil when it does not, a KindSkipped file when the
// bounds forbid reading it.
func classify(abs, root, workDir string, b Bounds) *File {
	show := showPath(abs, workDir)
	data, err := b.read(abs, root)
	if err != nil {
		return &File{Show: show, Abs: abs, Kind: KindSkipped, Reason: err.Error(), ScanRoot: root}
	}
	f := Classify(show, abs, data)
	if f != nil {
		f.ScanRoot = root
	}
	return f
}

// Classify says what data holds: a Compose file, a fragment, a template
// with Compose in its text, or (nil) nothing Compose.
func Classify(show, abs string, data []byte) *File {
	f := &File{Show: show, Abs: abs, Data: data}
	if !utf8.Valid(data) || strings.IndexByte(string(data), 0) >= 0 {
		return nil
	}
	sf, perr := load.ParseSource(show, abs, data)
	if perr == nil {
		if sf.Root == nil {
			return nil
		}
		s := load.MapValue(sf.Root, "services")
		if s != nil && s.Kind == yaml.MappingNode || load.MapValue(sf.Root, "include") != nil {
			f.Kind, f.Root, f.Source = KindCompose, sf.Root, sf
			return f
		}
		return nil
	}
	f.Reason = perr.Error()
	root, err := ParseBounded(data)
	if err != nil {
		if textLooksCompose(data) {
			f.Kind = KindText
			return f
		}
		return nil
	}
	if root == nil || !looksLikeCompose(root) {
		return nil
	}
	f.Kind, f.Root = KindFragment, root
	return f
}

// ParseBounded parses the first YAML document of data and returns its
// top-level node, refusing documents whose aliases expand beyond
// load.MaxAliasExpansion nodes.
func ParseBounded(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if n := load.AliasExpansion(root); n > load.MaxAliasExpansion {
		return nil, fmt.Errorf("yaml aliases expand to more than %d nodes: refusing a possible alias bomb", load.MaxAliasExpansion)
	}
	return root, nil
}

// serviceKeys are keys that only Compose services have together.
var strongServiceKeys = map[string]bool{"image": true, "build": true, "network_mode": true}
var weakServiceKeys = map[string]bool{"ports": true, "environment": true, "command": true, "container_name": true,
	"restart": true, "volumes": true, "depends_on": true, "entrypoint": true, "expose": true, "healthcheck": true,
	"cap_add": true, "devices": true, "env_file": true, "labels": true, "networks": true, "extends": true, "privileged": true}

// looksLikeService reports whether m is a mapping with keys of a service.
func looksLikeService(m *yaml.Node) bool {
	if m == nil || m.Kind != yaml.MappingNode {
		return false
	}
	weak := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i].Value
		if strongServiceKeys[k] {
			return true
		}
		if weakServiceKeys[k] {
			weak++
		}
	}
	return weak >= 2
}

// looksLikeCompose reports whether a YAML document that Compose refuses
// still holds services: a services mapping, top-level mappings that look
// like services, or one service's keys at the top.
func looksLikeCompose(root *yaml.Node) bool {
	if root.Kind != yaml.MappingNode {
		return false
	}
	if s := load.MapValue(root, "services"); s != nil && s.Kind == yaml.MappingNode {
		return true
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if strings.HasPrefix(k.Value, "x-") {
			continue
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if looksLikeService(v) {
			return true
		}
	}
	return topLevelService(root)
}

// topLevelService reports whether the document is one service's body.
func topLevelService(root *yaml.Node) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if strongServiceKeys[root.Content[i].Value] {
			return true
		}
	}
	return false
}

var servicesLineRe = regexp.MustCompile(`(?m)^services\s*:`)

// textLooksCompose reports whether text that is not YAML still shows
// Compose: a services: line, or a network_mode: host outside comments.
func textLooksCompose(data []byte) bool {
	if servicesLineRe.Match(data) {
		return true
	}
	return len(textHostModes(data)) > 0
}
