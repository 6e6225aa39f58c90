package analysis

import (
	"strings"
	"unicode/utf8"

	"github.com/mattn/go-shellwords"
)

// maxScriptDepth bounds how deep splitWords looks into scripts given to
// "sh -c" (a word with spaces in it is split again).
const maxScriptDepth = 3

// splitWords splits a command string into words as a POSIX shell would
// (quotes, escapes), continuing past the operators ; & | < > that end a
// simple command, and splitting again a word that is itself a script
// ("sh -c 'gunicorn -b 127.0.0.1:8001 app'"). Variables are kept as
// written. Text the shell grammar refuses (an unclosed quote, a bare
// parenthesis) is split at white space instead, with quotes trimmed: a
// command compose would run anyway is better read approximately than not
// at all, and what is found there is still evidence with a position.
func splitWords(s string) []string { return splitWordsDepth(s, 0) }

func splitWordsDepth(s string, depth int) []string {
	var out []string
	for rest := s; strings.TrimSpace(rest) != ""; {
		p := shellwords.NewParser()
		words, err := p.Parse(rest)
		if err != nil {
			for _, w := range strings.Fields(rest) {
				if w = strings.Trim(w, `"'`); w != "" {
					out = append(out, w)
				}
			}
			break
		}
		for _, w := range words {
			if w == "" {
				continue // "" or '': an empty argument says nothing
			}
			if depth < maxScriptDepth && strings.ContainsAny(w, " \t\n") {
				out = append(out, splitWordsDepth(w, depth+1)...)
				continue
			}
			out = append(out, w)
		}
		off := runeOffset(rest, p.Position) // Position counts runes
		if off < 0 {
			break
		}
		// skip the operator (;, &&, ||, |, <, >, 2>&1 ...), always
		// moving forward
		next := strings.TrimLeft(rest[off:], ";&|<> \t\n")
		if len(next) >= len(rest) {
			_, size := utf8.DecodeRuneInString(rest)
			next = rest[size:]
		}
		rest = next
	}
	return out
}

// runeOffset returns the byte offset of the n-th rune of s (counted as
// range counts them), or -1 when s has fewer runes.
func runeOffset(s string, n int) int {
	if n < 0 {
		return -1
	}
	i := 0
	for off := range s {
		if i == n {
			return off
		}
		i++
	}
	return -1
}

// lastWord returns the last word of a command prefix: the flag or
// sub-command that an address after the prefix belongs to. The prefix may
// end inside a quoted script ("sh -c \"runserver "), so an unclosed quote
// is closed before splitting.
func lastWord(prefix string) string {
	words := splitWords(prefix)
	if len(words) == 0 {
		return ""
	}
	return words[len(words)-1]
}
