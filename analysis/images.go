package analysis

import (
	"bytes"
	"embed"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v4"
)

// ImageInfo is what the image table (analysis/images/images.yaml) says
// about one image or program, each statement from a cited public source.
type ImageInfo struct {
	Name           string   `yaml:"name"`
	Images         []string `yaml:"images"`
	Programs       []string `yaml:"programs"`
	Ports          []string `yaml:"ports"`
	HostNetwork    string   `yaml:"host_network"`
	BindFlags      []string `yaml:"bind_flags"`
	PortFlags      []string `yaml:"port_flags"`
	AdvertiseFlags []string `yaml:"advertise_flags"`
	ListenArgs     []string `yaml:"listen_args"`
	BindVars       []string `yaml:"bind_vars"`
	PortVars       []string `yaml:"port_vars"`
	Vars           []string `yaml:"vars"`
	Sources        []string `yaml:"sources"`
}

// Source is the entry's first cited source, for messages.
func (i *ImageInfo) Source() string {
	if len(i.Sources) == 0 {
		return ""
	}
	return i.Sources[0]
}

//go:embed images/*.yaml
var imageFiles embed.FS

// imageTable is the parsed image table, indexed.
type imageTable struct {
	entries   []*ImageInfo
	byImage   map[string]*ImageInfo
	byProgram map[string]*ImageInfo
	bindVars  map[string]*ImageInfo // upper-cased
	portVars  map[string]*ImageInfo // upper-cased
	vars      map[string]*ImageInfo // as written: environment names are case-sensitive
}

var (
	tableOnce sync.Once
	table     *imageTable
)

// images returns the embedded table. The table is part of the program: a
// malformed entry is a build defect that images_test.go catches, so it
// panics here rather than analysing with half a table.
func images() *imageTable {
	tableOnce.Do(func() {
		t, err := loadImageTable()
		if err != nil {
			panic("analysis: embedded image table: " + err.Error())
		}
		table = t
	})
	return table
}

func loadImageTable() (*imageTable, error) {
	names, err := imageFiles.ReadDir("images")
	if err != nil {
		return nil, err
	}
	t := &imageTable{byImage: map[string]*ImageInfo{}, byProgram: map[string]*ImageInfo{},
		bindVars: map[string]*ImageInfo{}, portVars: map[string]*ImageInfo{}, vars: map[string]*ImageInfo{}}
	for _, n := range names {
		data, err := imageFiles.ReadFile("images/" + n.Name())
		if err != nil {
			return nil, err
		}
		var entries []*ImageInfo
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&entries); err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name(), err)
		}
		for _, e := range entries {
			if err := e.check(); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", n.Name(), e.Name, err)
			}
			t.entries = append(t.entries, e)
			for _, img := range e.Images {
				key := ImageName(img)
				if key != img {
					return nil, fmt.Errorf("%s: %s: image %q is not in normalised form (%q)", n.Name(), e.Name, img, key)
				}
				if t.byImage[key] != nil {
					return nil, fmt.Errorf("%s: image %q is listed twice", n.Name(), img)
				}
				t.byImage[key] = e
			}
			for _, p := range e.Programs {
				t.byProgram[p] = e
			}
			for _, v := range e.BindVars {
				t.bindVars[strings.ToUpper(v)] = e
			}
			for _, v := range e.PortVars {
				t.portVars[strings.ToUpper(v)] = e
			}
			for _, v := range e.Vars {
				t.vars[v] = e
			}
		}
	}
	return t, nil
}

// check validates an entry: a name, something to match, at least one
// source that is an absolute http(s) URL, and ports that parse.
func (i *ImageInfo) check() error {
	if i.Name == "" {
		return fmt.Errorf("no name")
	}
	if len(i.Images) == 0 && len(i.Programs) == 0 {
		return fmt.Errorf("neither images nor programs")
	}
	if len(i.Sources) == 0 {
		return fmt.Errorf("no source")
	}
	for _, s := range i.Sources {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("source %q is not an http(s) URL", s)
		}
	}
	for _, p := range i.Ports {
		if _, _, _, err := parsePortRange(p); err != nil {
			return fmt.Errorf("port %q: %w", p, err)
		}
	}
	if len(i.Ports) == 0 && i.HostNetwork == "" && len(i.BindFlags)+len(i.PortFlags)+len(i.AdvertiseFlags)+len(i.ListenArgs)+len(i.BindVars)+len(i.PortVars)+len(i.Vars) == 0 {
		return fmt.Errorf("says nothing")
	}
	return nil
}

// LookupImage returns what the table says about an image, or nil.
func LookupImage(image string) *ImageInfo {
	if image == "" {
		return nil
	}
	return images().byImage[ImageName(image)]
}

// LookupProgram returns what the table says about a program (a command
// word, with or without its directory), or nil.
func LookupProgram(word string) *ImageInfo {
	if i := strings.LastIndexByte(word, '/'); i >= 0 {
		word = word[i+1:]
	}
	return images().byProgram[word]
}

// LookupVar returns the table entry of the program that reads an
// environment variable only it reads (ROS_DOMAIN_ID), or nil.
func LookupVar(name string) *ImageInfo { return images().vars[name] }

// ImageEntries returns every entry of the table, in file order.
func ImageEntries() []*ImageInfo { return images().entries }

// KnownImagePorts returns the documented default ports of a well-known
// image, or nil.
func KnownImagePorts(image string) []string {
	if e := LookupImage(image); e != nil {
		return e.Ports
	}
	return nil
}

// ImageHostNeed says why an image needs the host network, according to
// its documentation, and the source that says so. ok is false when the
// table knows of no such need.
func ImageHostNeed(image string) (why, source string, ok bool) {
	e := LookupImage(image)
	if e == nil || e.HostNetwork == "" {
		return "", "", false
	}
	return e.HostNetwork, e.Source(), true
}

// registryAliases are registries that serve the same repositories as
// another: LinuxServer's lscr.io mirrors its Docker Hub images
// (https://docs.linuxserver.io/faq/).
var registryAliases = map[string]string{"lscr.io": "docker.io"}

// ImageName normalises an image reference to its familiar name without
// tag or digest, as github.com/distribution/reference does:
// "docker.io/library/redis:7" is "redis", "lscr.io/linuxserver/plex:latest"
// is "linuxserver/plex", "ghcr.io/koush/scrypted@sha256:..." is
// "ghcr.io/koush/scrypted". A reference that does not parse (an
// uninterpolated variable) is returned lower-cased.
func ImageName(image string) string {
	if n, ok := imageNames.Load(image); ok {
		return n.(string)
	}
	n := imageName(image)
	imageNames.Store(image, n)
	return n
}

// imageNames caches ImageName: a project names few distinct images, each
// asked for many times (parsing a reference is a regular expression).
var imageNames sync.Map

func imageName(image string) string {
	s := strings.ToLower(strings.TrimSpace(image))
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	domain, path := reference.Domain(named), reference.Path(named)
	if alias, ok := registryAliases[domain]; ok {
		if n, err := reference.ParseNormalizedNamed(alias + "/" + path); err == nil {
			named = n
		}
	}
	return reference.FamiliarName(reference.TrimNamed(named))
}
