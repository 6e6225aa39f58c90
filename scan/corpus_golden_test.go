package scan

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unhost/unhost/migrate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// corpusGolden is every finding of a scan of the corpus, recorded before
// scanning stopped loading every project through compose-go: the cheap
// path must find exactly what the full load found.
const corpusGolden = "testdata/corpus-findings.golden"

// consistencyRe matches the service that compose-go's consistency check
// names: it iterates a map, so which of several bad services it names
// changes from run to run.
var consistencyRe = regexp.MustCompile(`service "?[A-Za-z0-9_.-]+"? (has neither|declares mutually exclusive)`)

// findingsText prints findings one a line with everything that identifies
// them: place, rule, services, whether migrate fixes them, fingerprint and
// message.
func findingsText(rep *Report) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "files scanned: %d, suppressed: %d\n", rep.Files, rep.Suppressed)
	for _, f := range rep.Findings {
		note := ""
		if f.Note {
			note = " note"
		}
		fmt.Fprintf(&b, "%s:%d:%d: %s%s [%s] fixed=%v fp=%s\n\t%s\n", f.File, f.Line, f.Col, f.Rule, note,
			strings.Join(f.Services, ","), f.FixedByMigrate, f.Fingerprint, consistencyRe.ReplaceAllString(f.Message, "service S $1"))
	}
	return b.Bytes()
}

func TestScanCorpusGolden(t *testing.T) {
	dir := corpusDir(t)
	rep, err := Scan(context.Background(), []string{dir}, Options{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := findingsText(rep)
	if *update {
		if err := os.WriteFile(corpusGolden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(corpusGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("findings on the corpus differ from %s (run with -update only after checking):\n%s",
			corpusGolden, migrate.UnifiedDiff(filepath.ToSlash(corpusGolden), want, got))
	}
}
