package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// BaselineVersion is the version of the baseline file format.
const BaselineVersion = 1

// BaselineEntry is one accepted finding.
type BaselineEntry struct {
	Rule        string `json:"rule"`
	File        string `json:"file"`
	Fingerprint string `json:"fingerprint"`
}

// Baseline is a set of accepted findings: a scan hides those it lists,
// wherever their lines have moved to.
type Baseline struct {
	Version  int             `json:"version"`
	Findings []BaselineEntry `json:"findings"`

	left map[BaselineEntry]int
}

// NewBaseline returns the baseline that accepts findings.
func NewBaseline(findings []Finding) *Baseline {
	b := &Baseline{Version: BaselineVersion, Findings: []BaselineEntry{}}
	for _, f := range findings {
		b.Findings = append(b.Findings, BaselineEntry{Rule: f.Rule, File: f.File, Fingerprint: f.Fingerprint})
	}
	sort.Slice(b.Findings, func(i, j int) bool {
		x, y := b.Findings[i], b.Findings[j]
		if x.File != y.File {
			return x.File < y.File
		}
		if x.Rule != y.Rule {
			return x.Rule < y.Rule
		}
		return x.Fingerprint < y.Fingerprint
	})
	return b
}

// ReadBaseline reads a baseline file: a regular file no larger than the
// bounds allow (it is named by the user, so it may lie anywhere).
func ReadBaseline(path string, bounds Bounds) (*Baseline, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	data, err := bounds.read(abs, "")
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: not a baseline: %w", path, err)
	}
	if b.Version != BaselineVersion {
		return nil, fmt.Errorf("%s: baseline version %d, this unhost reads version %d", path, b.Version, BaselineVersion)
	}
	return &b, nil
}

// Marshal returns the baseline as indented JSON.
func (b *Baseline) Marshal() ([]byte, error) {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// take reports whether the baseline accepts f, using up one entry: a
// baseline with one entry hides one finding, not every copy of it.
func (b *Baseline) take(f Finding) bool {
	if b == nil {
		return false
	}
	if b.left == nil {
		b.left = map[BaselineEntry]int{}
		for _, e := range b.Findings {
			b.left[e]++
		}
	}
	e := BaselineEntry{Rule: f.Rule, File: f.File, Fingerprint: f.Fingerprint}
	if b.left[e] > 0 {
		b.left[e]--
		return true
	}
	return false
}

// fingerprint hashes what identifies a finding but not where its line is:
// rule, file, services and the text of its line with spaces normalised.
func fingerprint(f Finding, lines []string) string {
	text := ""
	// not-loadable is one finding a file, wherever the parser stopped
	if f.Rule != RuleNotLoadable && f.Line >= 1 && f.Line <= len(lines) {
		l := lines[f.Line-1]
		text = strings.Join(strings.Fields(l[:commentStart(l)]), " ")
	}
	h := sha256.New()
	for _, s := range []string{f.Rule, f.File, strings.Join(f.Services, ","), text} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ignoreRe finds "# unhost:ignore RULE..." in a line.
var ignoreRe = regexp.MustCompile(`#\s*unhost:ignore\b(.*)$`)

// suppressedByComment reports whether `# unhost:ignore` on the finding's
// line or the line above names its rule (or names no rule: all of them).
func suppressedByComment(f Finding, lines []string) bool {
	for _, n := range []int{f.Line, f.Line - 1} {
		if n < 1 || n > len(lines) {
			continue
		}
		m := ignoreRe.FindStringSubmatch(lines[n-1])
		if m == nil {
			continue
		}
		rest := strings.TrimSpace(m[1])
		if rest == "" || strings.HasPrefix(rest, "--") {
			return true
		}
		for _, tok := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if tok == "--" {
				break
			}
			if tok == f.Rule {
				return true
			}
		}
	}
	return false
}
