package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/unhost/unhost/load"
)

// byteSize is a flag value in bytes, written as a number with an optional
// binary unit: 8MiB, 512k, 1G, 1048576.
type byteSize int64

var sizeUnits = []struct {
	name     string
	suffixes []string
	factor   int64
}{
	{"GiB", []string{"gib", "gb", "g"}, 1 << 30},
	{"MiB", []string{"mib", "mb", "m"}, 1 << 20},
	{"KiB", []string{"kib", "kb", "k"}, 1 << 10},
	{"", []string{"b"}, 1},
}

func (s *byteSize) Set(v string) error {
	num, factor := strings.ToLower(strings.TrimSpace(v)), int64(1)
unit:
	for _, u := range sizeUnits {
		for _, suf := range u.suffixes {
			if strings.HasSuffix(num, suf) {
				num, factor = strings.TrimSpace(strings.TrimSuffix(num, suf)), u.factor
				break unit
			}
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return errors.New("want a positive size such as 8MiB, 512KiB or 1048576")
	}
	if n > (1<<62)/factor {
		return errors.New("size too large")
	}
	*s = byteSize(n * factor)
	return nil
}

func (s *byteSize) String() string {
	n := int64(*s)
	for _, u := range sizeUnits[:3] {
		if n >= u.factor && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *byteSize) Type() string { return "size" }

// addMaxFileSizeFlag adds --max-file-size, the bound on every file read
// (Compose files, env files, extends and include targets, scanned files).
func addMaxFileSizeFlag(fs *pflag.FlagSet, p *int64) {
	if *p == 0 {
		*p = load.DefaultMaxFileSize
	}
	fs.Var((*byteSize)(p), "max-file-size", "refuse to read a file larger than `SIZE` (e.g. 8MiB, 512KiB)")
}

// flagError makes a bad flag a usage error (exit 2) and, for an unknown
// flag, suggests the closest one the command has, as cobra does for an
// unknown command.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	var name string
	switch {
	case strings.HasPrefix(msg, "unknown flag: --"):
		name = strings.TrimPrefix(msg, "unknown flag: --")
	case strings.HasPrefix(msg, "unknown shorthand flag: "):
		// "unknown shorthand flag: 'x' in -xyz": try the whole word
		if _, word, ok := strings.Cut(msg, " in -"); ok {
			name = word
		}
	}
	if name != "" {
		if s := suggestFlag(cmd, name); s != "" {
			err = fmt.Errorf("%w (did you mean --%s?)", err, s)
		}
	}
	return usageErr(err)
}

// suggestFlag returns the flag of cmd closest to name: one that starts
// with it, or is at most two edits away; "" when none is close.
func suggestFlag(cmd *cobra.Command, name string) string {
	best, bestDist := "", 3
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) > 1 {
			d = 1
		}
		if d < bestDist || d == bestDist && f.Name < best {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
