package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/consts"
	interp "github.com/compose-spec/compose-go/v2/interpolation"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/tree"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// Placeholder is the value an unset variable takes during analysis. A number
// keeps port and address fields parseable; the original `${...}` text of the
// files is never replaced by it.
const Placeholder = "0"

// MaxAliasExpansion bounds how many nodes a file may expand to through YAML
// aliases. Real Compose files stay far below; an alias bomb goes far above,
// and compose-go would spin on it. It is MaxNodes: what aliases expand to
// costs compose-go what as many written nodes cost.
const MaxAliasExpansion = MaxNodes

// ComposeOptions say which Compose files to load, as `docker compose` does.
type ComposeOptions struct {
	Files            []string // -f, in order; empty: COMPOSE_FILE, then default discovery
	ProjectDirectory string   // --project-directory
	EnvFiles         []string // --env-file
	ProjectName      string   // -p
	// Env is the process environment (os.Environ() form). Nil means none.
	Env []string
	// WorkDir is the folder relative paths are shown against; default ".".
	WorkDir string
	// ForScan skips what only running the project needs: casting
	// interpolated strings to their fields' types (the model keeps
	// strings, which the schema accepts where it matters to scanning) and
	// making relative paths absolute (they stay relative to the project's
	// working directory).
	ForScan bool
	// Parsed are files already read and parsed (ParseSource): loading
	// reuses them instead of reading and parsing them again.
	Parsed []*SourceFile
	// MaxFileSize bounds every file the load reads (compose files, env
	// files, extends and include targets); 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// Root, when set, is the folder a bot scans: files outside it (by path
	// or through a symlink) are refused unless AllowOutside.
	Root         string
	AllowOutside bool
}

// DefaultMaxFileSize is the default bound on one file read (--max-file-size).
const DefaultMaxFileSize = 8 << 20

// Compose is a loaded Compose project together with the source text of its
// files, so that every service can be traced to the bytes it came from.
type Compose struct {
	Project *types.Project
	// Files are the compose files in load order, then files reached through
	// `extends: {file: ...}`.
	Files []*SourceFile
	// Unset lists variables that had no value and no default, sorted.
	Unset []string
	// MissingEnvFiles lists env files (--env-file, env_file:) that do not exist.
	MissingEnvFiles []string
	Warnings        []string
	// Lenient is true when the project loaded only without schema and
	// consistency checks, because unset variables broke them.
	Lenient bool
	// Limits bound every file the load read; readers of further files
	// named by the project (env files, mount sources) use them too.
	Limits Limits

	po       *cli.ProjectOptions
	loadOpts []func(*loader.Options)

	// services indexes each compose file's services: mapping by name,
	// built once (ServiceNodes is asked for every service)
	servicesOnce sync.Once
	services     []map[string]*yaml.Node
}

// Reload loads the project again with some files' content replaced (keyed
// by absolute path), with the same environment and placeholders: the check
// that rewritten files are still valid Compose. It returns compose-go's
// validated, merged and normalised model (parsing, interpolation, schema
// and semantic validation, merging of files and extends) without binding it
// to Go structs, which would double the cost of a migration and check
// nothing that the caller does not check on the model.
func (c *Compose) Reload(ctx context.Context, contents map[string][]byte) (map[string]any, error) {
	wd, err := c.po.GetWorkingDir()
	if err != nil {
		return nil, err
	}
	details, err := c.po.ReadConfigFiles(ctx, wd, c.po)
	if err != nil {
		return nil, oneLineError(err)
	}
	details.Environment = c.po.Environment
	// files reached through extends are read by compose-go itself: serve
	// their new content from a temporary copy
	overlay := &overlayLoader{files: map[string]string{}}
	defer overlay.cleanup()
	parsed := map[string]*SourceFile{}
	for abs, b := range contents {
		sf, err := ParseSource(abs, abs, b)
		if err != nil {
			return nil, err
		}
		parsed[abs] = sf
		if err := overlay.add(abs, b); err != nil {
			return nil, err
		}
	}
	for i := range details.ConfigFiles {
		abs, _ := filepath.Abs(details.ConfigFiles[i].Filename)
		if b, ok := contents[abs]; ok {
			details.ConfigFiles[i].Content = b
			details.ConfigFiles[i].Config = nil
			// compose-go decodes the tree just parsed rather than parse
			// the text again, where that is the same (decodedDocument)
			if cfg, ok := decodedDocument(parsed[abs]); ok && parsedLoads {
				details.ConfigFiles[i].Config = cfg
			}
		}
	}
	opts := append([]func(*loader.Options){}, c.loadOpts...)
	opts = append(opts, func(o *loader.Options) {
		o.ResourceLoaders = append([]loader.ResourceLoader{overlay}, o.ResourceLoaders...)
	})
	opts = append(opts, func(o *loader.Options) {
		o.SetProjectName(c.Project.Name, true)
		o.Profiles = []string{"*"}
		// the check needs validity, not a runnable model: absolute
		// paths do not change what is valid
		o.ResolvePaths = false
	})
	var model map[string]any
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("compose loader failed: %v", r)
			}
		}()
		model, err = loader.LoadModelWithContext(ctx, *details, opts...)
	}()
	if err != nil {
		return nil, oneLineError(err)
	}
	return model, nil
}

// SourceFile is one YAML file as read from disk.
type SourceFile struct {
	Path string // as shown to the user: relative to WorkDir when possible
	Abs  string
	Data []byte
	Root *yaml.Node // the top-level mapping; nil for an empty document
	// lineStarts[i] is the byte offset where line i+1 starts.
	lineStarts []int
	bom        int
}

// Pos is a position in a source file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// PosOf returns the position of n in f.
func (f *SourceFile) PosOf(n *yaml.Node) Pos {
	return Pos{File: f.Path, Line: n.Line, Col: n.Column}
}

// Offset converts a node's line and column (counted in characters) to a
// byte offset into Data.
func (f *SourceFile) Offset(line, col int) int {
	if line < 1 || line > len(f.lineStarts) {
		return len(f.Data)
	}
	off := f.lineStarts[line-1]
	if line == 1 {
		off += f.bom
	}
	for i := 1; i < col && off < len(f.Data); i++ {
		_, size := utf8.DecodeRune(f.Data[off:])
		off += size
	}
	return off
}

// NodeOffset is Offset for a node.
func (f *SourceFile) NodeOffset(n *yaml.Node) int { return f.Offset(n.Line, n.Column) }

// LineStart returns the byte offset where the given line starts.
func (f *SourceFile) LineStart(line int) int {
	if line < 1 {
		return 0
	}
	if line > len(f.lineStarts) {
		return len(f.Data)
	}
	if line == 1 {
		return f.bom
	}
	return f.lineStarts[line-1]
}

// Lines is the number of lines in the file.
func (f *SourceFile) Lines() int { return len(f.lineStarts) }

// ParseSource reads YAML text into a SourceFile, refusing what ParseYAML
// refuses (too many nodes, too deep, alias bombs) and anything that is not
// a YAML mapping document. Errors carry
// file:line:col where the parser gives one.
func ParseSource(path, abs string, data []byte) (*SourceFile, error) {
	f := &SourceFile{Path: path, Abs: abs, Data: data}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		f.bom = 3
	}
	f.lineStarts = append(f.lineStarts, 0)
	for i, b := range data {
		if b == '\n' && i+1 < len(data) {
			f.lineStarts = append(f.lineStarts, i+1)
		}
	}
	if !utf8.Valid(data) || containsNUL(data) {
		return nil, fmt.Errorf("%s: not a text file", path)
	}
	root, err := ParseYAML(path, data)
	if err != nil {
		return nil, err
	}
	if root == nil || root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil // empty document
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d:%d: top level is not a mapping: not a compose file", path, root.Line, root.Column)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Kind != yaml.ScalarNode || !topLevelKeys[k.Value] && !strings.HasPrefix(k.Value, "x-") {
			return nil, fmt.Errorf("%s:%d:%d: top-level key %q is not a compose key: not a compose file (a fragment or template?)", path, k.Line, k.Column, k.Value)
		}
	}
	f.Root = root
	return f, nil
}

var topLevelKeys = map[string]bool{
	"version": true, "name": true, "include": true, "services": true, "networks": true,
	"volumes": true, "secrets": true, "configs": true, "models": true,
}

func containsNUL(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
var yamlLineColRe = regexp.MustCompile(`^yaml: (?:line (\d+), column (\d+)|(\d+):(\d+)): (.*)$`)

// yamlErrorText turns the YAML library's message into "line:col: message".
func yamlErrorText(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if m := yamlLineColRe.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			return m[1] + ":" + m[2] + ": " + m[5]
		}
		return m[3] + ":" + m[4] + ": " + m[5]
	}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		return m[1] + ":1: " + m[2]
	}
	return " " + strings.TrimPrefix(msg, "yaml: ")
}

// AliasExpansion counts the nodes n stands for once YAML aliases are
// expanded, stopping early past MaxAliasExpansion: the bound that keeps
// alias bombs away from compose-go.
func AliasExpansion(n *yaml.Node) int { return expansion(n, map[*yaml.Node]int{}, 0) }

// expansion counts the nodes n stands for once aliases are expanded,
// stopping early once the bound is passed.
func expansion(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n == nil {
		return 0
	}
	if v, ok := memo[n]; ok {
		return v
	}
	if depth > 1000 {
		return MaxAliasExpansion + 1
	}
	memo[n] = MaxAliasExpansion + 1 // a cycle counts as too much
	total := 1
	if n.Kind == yaml.AliasNode {
		total += expansion(n.Alias, memo, depth+1)
	}
	for _, c := range n.Content {
		total += expansion(c, memo, depth+1)
		if total > MaxAliasExpansion {
			break
		}
	}
	memo[n] = total
	return total
}

// LoadCompose loads a Compose project the way `docker compose` does, with
// every profile enabled, and keeps the files' text beside it. Unset variables
// do not stop it: they are analysed as Placeholder and listed in Unset.
// Missing env files do not stop it either.
func LoadCompose(ctx context.Context, o ComposeOptions) (*Compose, error) {
	workDir := o.WorkDir
	if workDir == "" {
		workDir = "."
	}
	lim := o.Limits()
	c := &Compose{Limits: lim}
	var envFiles []string
	for _, ef := range o.EnvFiles {
		if _, err := os.Stat(ef); err != nil {
			c.MissingEnvFiles = append(c.MissingEnvFiles, ef)
			c.Warnings = append(c.Warnings, fmt.Sprintf("env file %s is missing: analysed without it", ef))
			continue
		}
		envFiles = append(envFiles, ef)
	}
	// compose-go reads the env files (--env-file, else .env) itself, and
	// include and extends targets: the guard checks each first
	var g *guard
	var mu sync.Mutex
	unset := map[string]bool{}
	record := func(name string) {
		mu.Lock()
		unset[name] = true
		mu.Unlock()
	}
	// wholeValue is what a value that is nothing but an unset variable
	// becomes: first "" as docker compose does, then, if that does not
	// load, Placeholder.
	wholeValue := ""
	lenient := false
	noVars := false
	subst := func(s string, m template.Mapping) (string, error) {
		ph := placeholderFor(s, wholeValue)
		return template.SubstituteWithOptions(s, m, template.WithoutLogging,
			template.WithReplacementFunction(func(sub string, m template.Mapping, cfg *template.Config) (string, error) {
				v, applied, err := template.DefaultReplacementAppliedFunc(sub, m, cfg)
				var missing *template.MissingRequiredError
				if errors.As(err, &missing) {
					record(missing.Variable)
					return ph, nil
				}
				if err != nil || applied {
					return v, err
				}
				if name := varName(sub); name != "" {
					record(name)
					return ph + restAfterVar(sub), nil
				}
				return v, nil
			}))
	}
	loadOpt := func(lo *loader.Options) {
		if lo.Interpolate != nil {
			lo.Interpolate.Substitute = subst
			if o.ForScan {
				lo.Interpolate.TypeCastMapping = map[tree.Path]interp.Cast{}
			}
		}
		if o.ForScan {
			lo.ResolvePaths = false
		}
		lo.SkipResolveEnvironment = true
		if noVars {
			// nothing to interpolate: skip compose-go's per-value walk,
			// which costs a third of a large file's load
			lo.SkipInterpolation = true
		}
		if lenient {
			lo.SkipValidation = true
			lo.SkipConsistencyCheck = true
		}
		// label files are read after loading, once checked
		lo.SkipResolveLabels = true
		if g != nil {
			lo.ResourceLoaders = append([]loader.ResourceLoader{g}, lo.ResourceLoaders...)
		}
	}
	c.loadOpts = []func(*loader.Options){loadOpt}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(o.ProjectDirectory),
		cli.WithEnv(o.Env),
		cli.WithEnvFiles(envFiles...),
		func(po *cli.ProjectOptions) error {
			for _, ef := range po.EnvFiles {
				if err := checkFile(lim, ef, workDir); err != nil {
					return err
				}
			}
			return nil
		},
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithProfiles([]string{"*"}),
		cli.WithoutEnvironmentResolution,
		cli.WithLoadOptions(loadOpt),
	}
	if o.ProjectName != "" {
		opts = append(opts, cli.WithName(o.ProjectName))
	}
	po, err := cli.NewProjectOptions(o.Files, opts...)
	if err != nil {
		var pe *fs.PathError
		if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrOutsideRoot) || errors.Is(err, ErrPseudoFile) || errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("compose options: %w", err)
	}
	if len(po.ConfigPaths) == 0 {
		return nil, errors.New("no compose file found: name one with -f")
	}
	c.po = po
	hasVars := false
	// Read and check every file ourselves first: clear errors with
	// positions, and no alias bomb reaches compose-go.
	seen := map[string]bool{}
	for _, p := range po.ConfigPaths {
		if p == "-" {
			return nil, errors.New("reading compose from standard input is not supported: name a file with -f")
		}
		sf, err := parsedOrRead(lim, o.Parsed, p, workDir)
		if err != nil {
			return nil, err
		}
		if err := checkIncludeEnvFiles(lim, sf, workDir); err != nil {
			return nil, err
		}
		if sf.Root == nil {
			return nil, fmt.Errorf("%s: empty file: not a compose file", sf.Path)
		}
		seen[sf.Abs] = true
		c.Files = append(c.Files, sf)
		if bytes.IndexByte(sf.Data, '$') >= 0 {
			hasVars = true
		}
	}
	noVars = !hasVars && !usesInclude(c.Files)
	pwd, err := po.GetWorkingDir()
	if err != nil {
		return nil, err
	}
	g = newGuard(lim, workDir, pwd)
	for _, f := range c.Files {
		g.addBase(filepath.Dir(f.Abs))
		g.ok[f.Abs] = true
	}
	if po.Name == "" {
		// Decide the project name as compose would (COMPOSE_PROJECT_NAME,
		// then name: in the files, then the folder), from the files we
		// parsed already: left to compose-go, it parses every file twice
		// more just to look for name:.
		if n, ok := projectName(po, c.Files); ok {
			po.Name = n
		}
	}
	project, err := c.loadParsed(ctx, po, o.ForScan)
	if err != nil && len(unset) > 0 {
		// Compose would refuse the file for want of its variables. Analyse
		// it leniently: placeholders everywhere, no schema or consistency
		// check (a placeholder cannot satisfy every enum and reference).
		wholeValue, lenient = Placeholder, true
		if p2, err2 := c.loadParsed(ctx, po, o.ForScan); err2 == nil {
			project, err = p2, nil
			c.Lenient = true
			c.Warnings = append(c.Warnings, "compose does not accept the files without their unset variables: analysed with placeholders and without schema validation")
		}
	}
	if err != nil {
		return nil, locateLoadError(c.Files, err)
	}
	c.Project = project
	// Files reached through extends: read them too, for positions.
	for _, s := range project.AllServices() {
		if s.Extends == nil || s.Extends.File == "" {
			continue
		}
		p := s.Extends.File
		if !filepath.IsAbs(p) {
			p = filepath.Join(project.WorkingDir, p)
		}
		abs, _ := filepath.Abs(p)
		if seen[abs] {
			continue
		}
		seen[abs] = true
		if sf, err := readSource(lim, abs, workDir); err == nil && sf.Root != nil {
			c.Files = append(c.Files, sf)
		}
	}
	for _, f := range c.Files {
		collectExtendsFiles(c, f, seen, workDir)
	}
	for v := range unset {
		c.Unset = append(c.Unset, v)
	}
	sort.Strings(c.Unset)
	if err := c.checkServiceFiles(workDir); err != nil {
		return nil, err
	}
	if c.Project, err = c.Project.WithServicesLabelsResolved(false); err != nil {
		return nil, oneLineError(err)
	}
	sort.Strings(c.MissingEnvFiles)
	return c, nil
}

// collectExtendsFiles adds files named by `extends.file` in f that compose-go
// already resolved away (the loaded project no longer shows them).
func collectExtendsFiles(c *Compose, f *SourceFile, seen map[string]bool, workDir string) {
	services := MapValue(f.Root, "services")
	if services == nil || services.Kind != yaml.MappingNode {
		return
	}
	for i := 1; i < len(services.Content); i += 2 {
		ext := MapValue(services.Content[i], "extends")
		if ext == nil || ext.Kind != yaml.MappingNode {
			continue
		}
		file := MapValue(ext, "file")
		if file == nil || file.Kind != yaml.ScalarNode || file.Value == "" {
			continue
		}
		p := file.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(f.Abs), p)
		}
		abs, _ := filepath.Abs(p)
		if seen[abs] {
			continue
		}
		seen[abs] = true
		sf, err := readSource(c.Limits, abs, workDir)
		if err != nil || sf.Root == nil {
			continue
		}
		c.Files = append(c.Files, sf)
		collectExtendsFiles(c, sf, seen, workDir)
	}
}

func loadProject(ctx context.Context, po *cli.ProjectOptions) (p *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compose loader failed: %v", r)
		}
	}()
	return po.LoadProject(ctx)
}

func readSource(lim Limits, p, workDir string) (*SourceFile, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	show := DisplayPath(abs, workDir)
	data, err := lim.ReadFile(abs)
	if err != nil {
		return nil, relabel(err, abs, show)
	}
	return ParseSource(show, abs, data)
}

// DisplayPath shows abs relative to workDir when it lies below it.
func DisplayPath(abs, workDir string) string {
	wd, err := filepath.Abs(workDir)
	if err != nil {
		return abs
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(rel)
}

// oneLineError is err on one line, still wrapping it.
func oneLineError(err error) error {
	return &relabelled{msg: oneLine(err), err: err}
}

func oneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.ReplaceAll(s, "\n", "; ")
	return s
}

// placeholderFor chooses the stand-in for unset variables in s: a path where
// s looks like a bind mount, so that it stays a bind mount, else a number,
// which keeps ports, addresses and image names parseable.
func placeholderFor(s, whole string) string {
	if m := varNameRe.FindStringSubmatch(s); m != nil && (s == "$"+m[1] || strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && strings.Count(s, "$") == 1) {
		return whole
	}
	if strings.Contains(s, ":/") || strings.HasPrefix(s, "$") && strings.Contains(s, "/") && !strings.Contains(s, ":") {
		return "/unset"
	}
	return Placeholder
}

var varNameRe = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

func varName(sub string) string {
	m := varNameRe.FindStringSubmatch(sub)
	if m == nil {
		return ""
	}
	return m[1]
}

// restAfterVar returns what follows a braced variable in a match that the
// pattern took longer than the variable (compose's pattern can).
func restAfterVar(sub string) string {
	if strings.HasPrefix(sub, "${") {
		if i := strings.IndexByte(sub, '}'); i >= 0 {
			return sub[i+1:]
		}
	}
	return ""
}

// MapValue returns the value node for key in a mapping node, or nil. It does
// not follow merge keys.
func MapValue(m *yaml.Node, key string) *yaml.Node {
	_, v := MapEntry(m, key)
	return v
}

// MapEntry returns the key and value nodes for key in a mapping node.
func MapEntry(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if m == nil {
		return nil, nil
	}
	if m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// overlayLoader serves replaced file content to compose-go's extends
// resolution.
type overlayLoader struct {
	dir   string
	files map[string]string // original abs path -> temp copy
}

func (o *overlayLoader) add(abs string, b []byte) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "unhost-check-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	p := filepath.Join(o.dir, fmt.Sprintf("%d-%s", len(o.files), filepath.Base(abs)))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return err
	}
	o.files[abs] = p
	return nil
}

func (o *overlayLoader) cleanup() {
	if o.dir != "" {
		os.RemoveAll(o.dir)
	}
}

func (o *overlayLoader) Accept(p string) bool {
	abs, err := filepath.Abs(p)
	_, ok := o.files[abs]
	return err == nil && ok
}

func (o *overlayLoader) Load(_ context.Context, p string) (string, error) {
	abs, _ := filepath.Abs(p)
	return o.files[abs], nil
}

func (o *overlayLoader) Dir(p string) string { return filepath.Dir(p) }

// usesInclude reports whether a file includes others, whose text unhost
// has not read (they may hold variables).
func usesInclude(files []*SourceFile) bool {
	for _, f := range files {
		if k, _ := MapEntry(f.Root, "include"); k != nil {
			return true
		}
		if svcs := MapValue(f.Root, "services"); svcs != nil {
			for i := 1; i < len(svcs.Content); i += 2 {
				if k, _ := MapEntry(svcs.Content[i], "extends"); k != nil {
					return true
				}
			}
		}
	}
	return false
}

// parsedOrRead returns the already parsed file for path p, else reads and
// parses it.
func parsedOrRead(lim Limits, parsed []*SourceFile, p, workDir string) (*SourceFile, error) {
	if abs, err := filepath.Abs(p); err == nil {
		for _, sf := range parsed {
			if sf.Abs == abs {
				return sf, nil
			}
		}
	}
	return readSource(lim, p, workDir)
}

// projectName returns the project name compose would infer, when it can be
// told from the parsed files without interpolation.
func projectName(po *cli.ProjectOptions, files []*SourceFile) (string, bool) {
	if n := po.Environment[consts.ComposeProjectName]; n != "" {
		return "", false // compose-go handles the variable's precedence itself
	}
	name := ""
	for _, f := range files {
		if v := MapValue(f.Root, "name"); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
			name = v.Value
		}
	}
	if name != "" {
		if strings.Contains(name, "$") || loader.NormalizeProjectName(name) != name {
			return "", false // interpolated or invalid: compose-go says what it makes of it
		}
		return name, true
	}
	wd, err := po.GetWorkingDir()
	if err != nil {
		return "", false
	}
	if n := loader.NormalizeProjectName(filepath.Base(wd)); n != "" {
		return n, true
	}
	return "", false
}
