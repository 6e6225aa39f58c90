package main

import (
	"runtime/debug"
	"strings"
)

// version is the module version the binary was built from: a tag for
// `go install ...@v1.2.3`, else the VCS revision, else "devel".
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v = "devel-" + rev
	if dirty {
		v += "-dirty"
	}
	return strings.TrimSpace(v)
}
