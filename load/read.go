package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// Reasons a file is refused; errors from Limits.ReadFile wrap one of them
// (or fs.ErrNotExist), so that a caller can report a skipped file.
var (
	ErrNotRegular  = errors.New("not a regular file")
	ErrTooLarge    = errors.New("larger than the size limit")
	ErrOutsideRoot = errors.New("outside the root")
	ErrPseudoFile  = errors.New("not a file on disk")
)

// Limits bound what unhost reads from a repository it does not trust.
type Limits struct {
	// MaxFileSize bounds one file; 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// Root, when set, is the folder reads stay in: a path that leads out
	// of it, by itself or through a symlink, is refused unless
	// AllowOutside.
	Root         string
	AllowOutside bool
}

// Limits returns the read limits of the options.
func (o ComposeOptions) Limits() Limits {
	return Limits{MaxFileSize: o.MaxFileSize, Root: o.Root, AllowOutside: o.AllowOutside}
}

func (l Limits) max() int64 {
	if l.MaxFileSize > 0 {
		return l.MaxFileSize
	}
	return DefaultMaxFileSize
}

// ReadFile reads the file at p if it is a regular file on disk of at most
// MaxFileSize bytes, inside Root. The size bound holds for the read itself,
// not only for what stat reports; a file whose content is not the size
// stat gives (a kernel pseudo-file such as /proc/self/environ) is refused.
// A FIFO, device, socket or folder is refused without being opened.
// Errors name p, are one line, and wrap the Err* reason.
func (l Limits) ReadFile(p string) ([]byte, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
	}
	if err := l.checkPlace(p, real); err != nil {
		return nil, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
	}
	if err := regular(p, fi); err != nil {
		return nil, err
	}
	limit := l.max()
	if fi.Size() > limit {
		return nil, tooLarge(p, limit)
	}
	// O_NONBLOCK: should the file have become a FIFO since the stat, the
	// open does not wait for a writer
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
	}
	defer f.Close()
	fi2, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
	}
	if err := regular(p, fi2); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(min(fi2.Size(), limit)) + 1)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge(p, limit)
	}
	if int64(buf.Len()) != fi2.Size() {
		return nil, fmt.Errorf("%s: %w: it holds %d bytes where its size says %d (a kernel pseudo-file, or it changed while read)", p, ErrPseudoFile, buf.Len(), fi2.Size())
	}
	return buf.Bytes(), nil
}

// checkPlace refuses kernel pseudo-file systems always, and a place
// outside Root unless AllowOutside.
func (l Limits) checkPlace(p, real string) error {
	for _, pseudo := range []string{"/proc", "/sys"} {
		if within(pseudo, real) {
			return fmt.Errorf("%s: %w: it is in %s", p, ErrPseudoFile, pseudo)
		}
	}
	if l.Root == "" || l.AllowOutside {
		return nil
	}
	root, err := filepath.Abs(l.Root)
	if err != nil {
		return fmt.Errorf("%s: %w", l.Root, err)
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	if !within(root, real) {
		how := ""
		if abs, _ := filepath.Abs(p); abs != real {
			how = " (through a symlink to " + real + ")"
		}
		return fmt.Errorf("%s: %w %s%s: refused without --allow-outside", p, ErrOutsideRoot, root, how)
	}
	return nil
}

// within reports whether p is dir or lies below it (both clean, absolute).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func regular(p string, fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		return nil
	}
	kind := "a special file"
	switch {
	case m.IsDir():
		kind = "a folder"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	}
	return fmt.Errorf("%s: %w (%s)", p, ErrNotRegular, kind)
}

func tooLarge(p string, limit int64) error {
	return fmt.Errorf("%s: %w: more than %s (--max-file-size)", p, ErrTooLarge, sizeText(limit))
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// guard is a compose-go resource loader that reads nothing itself: it
// checks every local file compose-go is about to read on its own (include
// and extends targets) against the limits, claims those that fail, and
// fails their load with the reason. Files that pass are left to
// compose-go's own loader, which then reads a regular file of bounded size
// that unhost has already parsed within its node and depth bounds.
type guard struct {
	lim     Limits
	workDir string
	mu      sync.Mutex
	bases   []string         // folders a relative reference may be resolved against
	ok      map[string]bool  // absolute paths checked and accepted
	refused map[string]error // references refused, by the reference compose-go gave
}

func newGuard(lim Limits, workDir string, bases ...string) *guard {
	g := &guard{lim: lim, workDir: workDir, ok: map[string]bool{}, refused: map[string]error{}}
	for _, b := range bases {
		g.addBase(b)
	}
	return g
}

func (g *guard) addBase(dir string) {
	for _, b := range g.bases {
		if b == dir {
			return
		}
	}
	g.bases = append(g.bases, dir)
}

// Accept reports true for a reference to a local file that must not be
// read: Load then returns why.
func (g *guard) Accept(p string) bool {
	if p == "" || p == "-" || strings.Contains(p, "://") || strings.HasPrefix(p, "git@") {
		return false // stdin, or remote: other loaders (or none) serve it
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.refused[p]; ok {
		return true
	}
	var cands []string
	if filepath.IsAbs(p) {
		cands = []string{filepath.Clean(p)}
	} else {
		for _, b := range g.bases {
			cands = append(cands, filepath.Join(b, p))
		}
	}
	for _, c := range cands {
		if g.ok[c] {
			continue
		}
		if _, err := os.Lstat(c); err != nil {
			continue // missing: compose-go says so itself
		}
		if err := g.check(c); err != nil {
			g.refused[p] = err
			return true
		}
		g.ok[c] = true
	}
	return false
}

// check reads and parses the compose file at abs within the limits, and
// checks the env files its includes name.
func (g *guard) check(abs string) error {
	show := showPath(abs, g.workDir)
	data, err := g.lim.ReadFile(abs)
	if err != nil {
		return relabel(err, abs, show)
	}
	sf, err := ParseSource(show, abs, data)
	if err != nil {
		return err
	}
	g.addBase(filepath.Dir(abs))
	return checkIncludeEnvFiles(g.lim, sf, g.workDir)
}

func (g *guard) Load(_ context.Context, p string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refused[p]; err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: refused", p)
}

func (g *guard) Dir(p string) string { return filepath.Dir(p) }

// relabel shows err, which names abs, with the path shown to the user.
func relabel(err error, abs, show string) error {
	if abs == show {
		return err
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, abs) {
		return err
	}
	return &relabelled{msg: show + strings.TrimPrefix(msg, abs), err: err}
}

type relabelled struct {
	msg string
	err error
}

func (r *relabelled) Error() string { return r.msg }
func (r *relabelled) Unwrap() error { return r.err }

// checkIncludeEnvFiles checks the env files that compose-go reads for the
// includes of f (their env_file entries, else the .env beside the included
// project): it reads them itself, without bounds.
func checkIncludeEnvFiles(lim Limits, f *SourceFile, workDir string) error {
	inc := MapValue(f.Root, "include")
	if inc == nil || inc.Kind != yaml.SequenceNode {
		return nil
	}
	dir := filepath.Dir(f.Abs)
	for _, e := range inc.Content {
		var envs, paths []string
		projectDir := ""
		switch e.Kind {
		case yaml.ScalarNode:
			paths = []string{e.Value}
		case yaml.MappingNode:
			paths = scalarList(MapValue(e, "path"))
			envs = scalarList(MapValue(e, "env_file"))
			if pd := MapValue(e, "project_directory"); pd != nil && pd.Kind == yaml.ScalarNode {
				projectDir = pd.Value
			}
		}
		if len(envs) == 0 && len(paths) > 0 {
			if projectDir == "" {
				projectDir = filepath.Dir(paths[0])
			}
			envs = []string{filepath.Join(projectDir, ".env")}
		}
		for _, ef := range envs {
			if strings.Contains(ef, "$") || ef == "/dev/null" {
				continue // interpolated: not known before loading
			}
			if !filepath.IsAbs(ef) {
				ef = filepath.Join(dir, ef)
			}
			if err := checkFile(lim, ef, workDir); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkFile checks a file that compose-go will read, when it exists.
func checkFile(lim Limits, p, workDir string) error {
	if _, err := os.Lstat(p); err != nil {
		return nil // missing: compose-go, or the caller, says so
	}
	abs, _ := filepath.Abs(p)
	if _, err := lim.ReadFile(abs); err != nil {
		return relabel(err, abs, showPath(abs, workDir))
	}
	return nil
}

// showPath shows abs relative to workDir when it lies below it, else as
// it is.
func showPath(abs, workDir string) string {
	if rel := DisplayPath(abs, workDir); rel != ".." && !strings.HasPrefix(rel, "../") {
		return rel
	}
	return abs
}

// scalarList returns the values of a scalar or a sequence of scalars.
func scalarList(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				out = append(out, c.Value)
			}
		}
	}
	return out
}

// checkServiceFiles checks the files services name that are read after
// loading (env_file, label_file), and the project's .env, against the
// limits: an error names the key that names the file.
func (c *Compose) checkServiceFiles(workDir string) error {
	p := c.Project
	if err := checkFile(c.Limits, filepath.Join(p.WorkingDir, ".env"), workDir); err != nil {
		return err
	}
	all := p.AllServices() // a new map each call: once
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := all[name]
		specs := []types.ContainerSpec{s.ContainerSpec}
		for _, h := range s.PreStart {
			specs = append(specs, h.ContainerSpec) // pre_start hooks carry env and label files too
		}
		for k, spec := range specs {
			key := func(k string) string { return k }
			if k > 0 {
				key = func(k string) string { return "pre_start." + k }
			}
			for _, ef := range spec.EnvFiles {
				path := ef.Path
				if !filepath.IsAbs(path) {
					path = filepath.Join(p.WorkingDir, path)
				}
				if _, err := os.Stat(path); err != nil {
					if k == 0 {
						c.MissingEnvFiles = append(c.MissingEnvFiles, DisplayPath(path, workDir))
					}
					continue
				}
				if err := checkFile(c.Limits, path, workDir); err != nil {
					return c.keyError(name, key("env_file"), err)
				}
			}
			for _, lf := range spec.LabelFiles {
				path := lf
				if !filepath.IsAbs(path) {
					path = filepath.Join(p.WorkingDir, path)
				}
				if err := checkFile(c.Limits, path, workDir); err != nil {
					return c.keyError(name, key("label_file"), err)
				}
			}
		}
	}
	return nil
}

// keyError prefixes err with the position and name of a service's key.
func (c *Compose) keyError(service, key string, err error) error {
	field := "services." + service + "." + key
	refs := c.ServiceNodes(service)
	last := key[strings.LastIndexByte(key, '.')+1:]
	for i := len(refs) - 1; i >= 0; i-- {
		if k, _ := MapEntry(refs[i].Node, last); k != nil {
			return fmt.Errorf("%s: %s: %w", refs[i].File.PosOf(k), field, err)
		}
	}
	return fmt.Errorf("%s: %w", field, err)
}
