package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"

	"go.yaml.in/yaml/v4"
	"go.yaml.in/yaml/v4/plugin/loaderlimits"
)

// MaxNodes bounds how many YAML nodes a file may hold, counted before it is
// parsed: the YAML tree of a file costs far more memory than its text (a
// flow list of 7 MiB takes 800 MB) and compose-go spends seconds on every
// hundred thousand nodes. Real Compose files hold a few thousand; a
// generated stack of 10,000 services, which unhost must still migrate as
// compose loads it, holds about 150,000.
const MaxNodes = 200_000

// MaxDepth bounds how deep YAML collections may nest. Compose files nest
// less than 20 levels.
const MaxDepth = 100

// Errors ParseYAML wraps, one for each bound.
var leadingPosRe = regexp.MustCompile(`^(\d+:\d+):`)

var (
	ErrTooManyNodes = errors.New("too many yaml nodes")
	ErrTooDeep      = errors.New("yaml nested too deep")
	ErrAliasBomb    = errors.New("yaml aliases expand too far")
)

// ParseYAML parses the first YAML document of data within the bounds on
// nodes (MaxNodes), nesting (MaxDepth) and alias expansion
// (MaxAliasExpansion), each refused with its own message. It returns the
// document's top node, nil for an empty document. Errors are one line,
// prefixed with show and, where known, line and column.
func ParseYAML(show string, data []byte) (*yaml.Node, error) {
	if n, line := estimateNodes(data, MaxNodes); n > MaxNodes {
		return nil, fmt.Errorf("%s:%d:1: %w: more than %d nodes (a file this large is not a compose file)", show, line, ErrTooManyNodes, MaxNodes)
	}
	tooDeep := false
	limits := loaderlimits.New(loaderlimits.DepthFunc(func(depth int, _ *loaderlimits.DepthContext) error {
		if depth > MaxDepth {
			tooDeep = true
			return ErrTooDeep
		}
		return nil
	}))
	ld, err := yaml.NewLoader(bytes.NewReader(data), yaml.WithV3Defaults(), yaml.WithPlugin(limits))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", show, err)
	}
	var doc yaml.Node
	if err := ld.Load(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		text := yamlErrorText(err)
		if tooDeep {
			where := ""
			if m := leadingPosRe.FindStringSubmatch(text); m != nil {
				where = ":" + m[1]
			}
			return nil, fmt.Errorf("%s%s: %w: collections nest more than %d levels", show, where, ErrTooDeep, MaxDepth)
		}
		return nil, fmt.Errorf("%s:%s", show, text)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if n := AliasExpansion(root); n > MaxAliasExpansion {
		return nil, fmt.Errorf("%s: %w: aliases expand to more than %d nodes (a possible alias bomb)", show, ErrAliasBomb, MaxAliasExpansion)
	}
	return root, nil
}

// estimateNodes counts, without parsing, an estimate of the nodes a YAML
// text holds (each plain word or indicator, quoted string, block scalar and
// flow collection start counts one; a block mapping's key stands for it
// too, so the count is at least half the real one), stopping once past
// limit. It returns the
// count and the line where it stopped.
func estimateNodes(data []byte, limit int) (int, int) {
	n, line := 0, 1
	lineIndent, atLineStart := 0, true
	tokenStart := true // the previous byte ends a token
	prev := byte('\n') // the last byte of the line that is not a space
	i := 0
	for i < len(data) && n <= limit {
		c := data[i]
		if atLineStart {
			if c == ' ' {
				lineIndent++
				i++
				continue
			}
			atLineStart = false
		}
		switch {
		case c == '\n':
			line++
			lineIndent, atLineStart, tokenStart, prev = 0, true, true, '\n'
			i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			tokenStart = true
			i++
			continue
		case c == '#' && tokenStart:
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '"' && tokenStart:
			n++
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
				if i < len(data) && data[i] == '\n' {
					line++
				}
			}
			i++
			tokenStart = false
		case c == '\'' && tokenStart:
			n++
			for i++; i < len(data); i++ {
				if data[i] == '\n' {
					line++
				}
				if data[i] == '\'' {
					if i+1 < len(data) && data[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
			i++
			tokenStart = false
		case c == '[' || c == '{':
			n++
			i++
			tokenStart = true
		case c == ']' || c == '}' || c == ',':
			i++
			tokenStart = true
		case (c == '|' || c == '>') && tokenStart && (prev == '\n' || prev == ':' || prev == '-' || prev == '?') && blockHeader(data[i+1:]):
			n++
			// skip the header line, then every line that is blank or
			// indented deeper than the line of the header
			for i < len(data) && data[i] != '\n' {
				i++
			}
			for i < len(data) {
				j, ind := i+1, 0
				for j < len(data) && data[j] == ' ' {
					j++
					ind++
				}
				if j < len(data) && data[j] != '\n' && data[j] != '\r' && ind <= lineIndent {
					break
				}
				line++
				for i = j; i < len(data) && data[i] != '\n'; i++ {
				}
			}
		default:
			for i < len(data) && !isSpaceOrFlow(data[i]) {
				i++
			}
			n++ // a word, or an indicator: "- - x" nests sequences
			tokenStart = true
		}
		if i > 0 && i <= len(data) {
			prev = data[i-1]
		}
	}
	return n, line
}

func isSpaceOrFlow(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', '[', ']', '{', '}':
		return true
	}
	return false
}

// blockHeader reports whether rest (after '|' or '>') completes a block
// scalar header: chomping and indentation indicators, then the line's end
// or a comment.
func blockHeader(rest []byte) bool {
	for _, c := range rest {
		switch {
		case c == '+' || c == '-' || c >= '0' && c <= '9':
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return true
		default:
			return false
		}
	}
	return true
}
