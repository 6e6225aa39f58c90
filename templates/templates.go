// Package templates holds the embedded text/template files that render
// reports and pull-request bodies.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed *.md.tmpl
var files embed.FS

var funcs = template.FuncMap{
	"join": strings.Join,
	"code": func(s string) string {
		if strings.Contains(s, "`") {
			return "``" + s + "``"
		}
		return "`" + s + "`"
	},
	"cell": func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
	"inc":  func(i int) int { return i + 1 },
	// row is one markdown table row of cells; sep the line under a head.
	"row": func(cells []string) string {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		return "| " + strings.Join(esc, " | ") + " |"
	},
	"sep": func(cells []string) string { return strings.Repeat("|---", len(cells)) + "|" },
}

var parsed = template.Must(template.New("").Funcs(funcs).ParseFS(files, "*.md.tmpl"))

// Render executes the named template (e.g. "migrate.md.tmpl") with data.
func Render(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := parsed.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}
