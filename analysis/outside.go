package analysis

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/unhost/unhost/load"
)

// OutsideRef is an address in a file that the Compose files point at but
// unhost does not rewrite: an env file, the project's .env, or a file
// bind-mounted into a container.
type OutsideRef struct {
	Service string   `json:"service,omitempty"` // "" for the project's .env
	Kind    string   `json:"kind"`              // env_file, dotenv, mount
	Pos     load.Pos `json:"pos"`
	Token   string   `json:"token"`
	Host    string   `json:"host"`
	Port    int      `json:"port"`
}

// maxOutsideFile bounds what is read of a mounted file.
const maxOutsideFile = 256 << 10

// OutsideRefs finds loopback and host addresses with a port in the env
// files, the project's .env and the bind-mounted files of the services.
func OutsideRefs(c *load.Compose, workDir string) []OutsideRef {
	// the load's bounds (regular files, inside the root, no /proc), and at
	// most maxOutsideFile of each
	lim := c.Limits
	if lim.MaxFileSize <= 0 || lim.MaxFileSize > maxOutsideFile {
		lim.MaxFileSize = maxOutsideFile
	}
	// DisplayPath makes a relative folder absolute for every path it
	// shows (os.Getwd: two stats); once is enough
	if abs, err := filepath.Abs(workDir); err == nil {
		workDir = abs
	}
	var out []OutsideRef
	seen := map[string]bool{}
	scan := func(path, service, kind string) {
		if !filepath.IsAbs(path) {
			path = filepath.Join(c.Project.WorkingDir, path)
		}
		key := service + "\x00" + path
		if seen[key] {
			return
		}
		seen[key] = true
		for _, r := range scanFileAddresses(lim, path, load.DisplayPath(path, workDir)) {
			r.Service, r.Kind = service, kind
			out = append(out, r)
		}
	}
	p := c.Project
	scan(filepath.Join(p.WorkingDir, ".env"), "", "dotenv")
	for name, s := range p.AllServices() {
		for _, ef := range s.EnvFiles {
			scan(ef.Path, name, "env_file")
		}
		for _, v := range s.Volumes {
			if v.Type != "bind" || v.Source == "" {
				continue
			}
			src := v.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(p.WorkingDir, src)
			}
			fi, err := os.Stat(src)
			if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxOutsideFile {
				continue
			}
			scan(src, name, "mount")
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Service < b.Service
	})
	return out
}

func scanFileAddresses(lim load.Limits, path, show string) []OutsideRef {
	data, err := lim.ReadFile(path)
	if err != nil || !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return nil
	}
	var out []OutsideRef
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxOutsideFile)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if t := strings.TrimSpace(text); strings.HasPrefix(t, "#") || strings.HasPrefix(t, "//") || strings.HasPrefix(t, ";") {
			continue
		}
		for _, m := range findAddrs(text) {
			host := m.host
			if m.port == "" || m.portOnly || !IsLocalHost(host) {
				continue
			}
			port, err := strconv.Atoi(m.port)
			if err != nil || port <= 0 || port > 65535 {
				continue
			}
			tok := host + ":" + m.port
			col := utf8.RuneCountInString(text[:m.hostStart]) + 1
			out = append(out, OutsideRef{Pos: load.Pos{File: show, Line: line, Col: col}, Token: tok, Host: strings.Trim(host, "[]"), Port: port})
		}
	}
	return out
}
