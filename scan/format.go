package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Formats are the output formats of Write.
var Formats = []string{"text", "json", "sarif", "github"}

// Tool describes the program for SARIF.
type Tool struct {
	Name           string
	Version        string
	InformationURI string
}

// Write prints the report in one of Formats.
func Write(w io.Writer, format string, r *Report, tool Tool) error {
	switch format {
	case "text":
		return WriteText(w, r)
	case "json":
		return writeJSON(w, r)
	case "sarif":
		return writeJSON(w, SARIF(r, tool))
	case "github":
		return WriteGitHub(w, r)
	}
	return fmt.Errorf("unknown format %q", format)
}

// WriteText prints one finding a line: file:line:col: rule: message.
func WriteText(w io.Writer, r *Report) error {
	for _, f := range r.Findings {
		if _, err := fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", f.File, f.Line, f.Col, f.Rule, f.Message); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteGitHub prints GitHub Actions workflow commands, which annotate the
// lines of a pull request.
func WriteGitHub(w io.Writer, r *Report) error {
	for _, f := range r.Findings {
		level := "warning"
		if f.level() == "note" {
			level = "notice"
		}
		if _, err := fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", level,
			ghProperty(f.File), f.Line, f.Col, ghProperty(f.Rule), ghData(f.Message)); err != nil {
			return err
		}
	}
	return nil
}

// ghData escapes a workflow command's message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command's property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// SARIF 2.1.0, the fields unhost fills.
type (
	SarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []SarifRun `json:"runs"`
	}
	SarifRun struct {
		Tool    SarifTool     `json:"tool"`
		Results []SarifResult `json:"results"`
		// ColumnKind says how columns count: unhost counts characters.
		ColumnKind string `json:"columnKind"`
	}
	SarifTool struct {
		Driver SarifDriver `json:"driver"`
	}
	SarifDriver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri,omitempty"`
		Version        string      `json:"version,omitempty"`
		Rules          []SarifRule `json:"rules"`
	}
	SarifRule struct {
		ID                   string          `json:"id"`
		Name                 string          `json:"name"`
		ShortDescription     SarifText       `json:"shortDescription"`
		FullDescription      SarifText       `json:"fullDescription"`
		Help                 SarifHelp       `json:"help"`
		DefaultConfiguration SarifRuleConfig `json:"defaultConfiguration"`
	}
	SarifRuleConfig struct {
		Level string `json:"level"`
	}
	SarifText struct {
		Text string `json:"text"`
	}
	SarifHelp struct {
		Text     string `json:"text"`
		Markdown string `json:"markdown"`
	}
	SarifResult struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             SarifText         `json:"message"`
		Locations           []SarifLocation   `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
	}
	SarifLocation struct {
		PhysicalLocation SarifPhysical `json:"physicalLocation"`
	}
	SarifPhysical struct {
		ArtifactLocation SarifArtifact `json:"artifactLocation"`
		Region           SarifRegion   `json:"region"`
	}
	SarifArtifact struct {
		URI string `json:"uri"`
	}
	SarifRegion struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn"`
	}
)

// SarifSchema is the JSON schema of SARIF 2.1.0.
const SarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// SARIF converts a report to a SARIF 2.1.0 log with one run.
func SARIF(r *Report, tool Tool) *SarifLog {
	drv := SarifDriver{Name: tool.Name, InformationURI: tool.InformationURI, Version: tool.Version}
	for _, rule := range Rules {
		drv.Rules = append(drv.Rules, SarifRule{
			ID:                   rule.ID,
			Name:                 ruleName(rule.ID),
			ShortDescription:     SarifText{Text: rule.Short},
			FullDescription:      SarifText{Text: rule.Full},
			Help:                 SarifHelp{Text: strings.ReplaceAll(rule.Help, "`", ""), Markdown: rule.Help},
			DefaultConfiguration: SarifRuleConfig{Level: rule.Level},
		})
	}
	run := SarifRun{Tool: SarifTool{Driver: drv}, Results: []SarifResult{}, ColumnKind: "unicodeCodePoints"}
	for _, f := range r.Findings {
		i := ruleIndex(f.Rule)
		level := f.level()
		// a relative URI reference: forward slashes, escaped as RFC 3986 wants
		uri := (&url.URL{Path: strings.TrimPrefix(f.File, "./")}).EscapedPath()
		line, col := f.Line, f.Col
		if line < 1 {
			line = 1
		}
		if col < 1 {
			col = 1
		}
		run.Results = append(run.Results, SarifResult{
			RuleID: f.Rule, RuleIndex: i, Level: level,
			Message:             SarifText{Text: f.Message},
			Locations:           []SarifLocation{{PhysicalLocation: SarifPhysical{ArtifactLocation: SarifArtifact{URI: uri}, Region: SarifRegion{StartLine: line, StartColumn: col}}}},
			PartialFingerprints: map[string]string{"unhostFingerprint/v1": f.Fingerprint},
		})
	}
	return &SarifLog{Schema: SarifSchema, Version: "2.1.0", Runs: []SarifRun{run}}
}

// level is the finding's SARIF level: note for a Note, else its rule's.
func (f Finding) level() string {
	if f.Note {
		return "note"
	}
	if i := ruleIndex(f.Rule); i >= 0 {
		return Rules[i].Level
	}
	return "warning"
}

// Failing reports whether the findings make the scan fail (exit 3): any
// finding that is not a Note does; with strict, every finding does.
func (r *Report) Failing(strict bool) bool {
	for _, f := range r.Findings {
		if strict || !f.Note {
			return true
		}
	}
	return false
}

// Notes counts the findings that are notes.
func (r *Report) Notes() int {
	n := 0
	for _, f := range r.Findings {
		if f.Note {
			n++
		}
	}
	return n
}

// ruleName turns a rule ID into the PascalCase name SARIF viewers show.
func ruleName(id string) string {
	var b strings.Builder
	for _, p := range strings.Split(id, "-") {
		if p != "" {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}
