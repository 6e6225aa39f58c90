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
func splitWords(s string) []string {
	var out []string
	for _, c := range splitCommands(s) {
		out = append(out, c...)
	}
	return out
}

// splitCommands is splitWords keeping the simple commands apart:
// "a x && b y" is [[a x] [b y]], and a script given to sh -c starts
// commands of its own.
func splitCommands(s string) [][]string { return splitCommandsDepth(s, 0) }

func splitCommandsDepth(s string, depth int) [][]string {
	if !strings.ContainsAny(s, " \t\n\r'\"\\;&|<>()`") {
		// one word as it is (an item of an argv list, most often)
		if s == "" {
			return nil
		}
		return [][]string{{s}}
	}
	var out [][]string
	for rest := s; strings.TrimSpace(rest) != ""; {
		p := shellwords.NewParser()
		words, err := p.Parse(rest)
		if err != nil {
			var cmd []string
			for _, w := range strings.Fields(rest) {
				if w = strings.Trim(w, `"'`); w != "" {
					cmd = append(cmd, w)
				}
			}
			if len(cmd) > 0 {
				out = append(out, cmd)
			}
			break
		}
		var cmd []string
		for _, w := range words {
			if w == "" {
				continue // "" or '': an empty argument says nothing
			}
			if depth < maxScriptDepth && strings.ContainsAny(w, " \t\n") {
				inner := splitCommandsDepth(w, depth+1)
				if len(inner) > 0 {
					cmd = append(cmd, inner[0]...)
					if len(cmd) > 0 {
						out = append(out, cmd)
					}
					out = append(out, inner[1:]...)
					cmd = nil
				}
				continue
			}
			cmd = append(cmd, w)
		}
		if len(cmd) > 0 {
			out = append(out, cmd)
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

// launchers run the program named by the next word: "exec gunicorn",
// "python manage.py", "python -m uvicorn".
var launchers = map[string]bool{
	"exec": true, "nohup": true, "env": true, "python": true, "python3": true, "node": true, "-m": true,
	"poetry": true, "run": true, "uv": true, "pipenv": true, "bundle": true, "gosu": true, "su-exec": true, "tini": true, "--": true,
}

// programWords returns the words of a simple command that name the
// program it runs: its first word after VAR=value assignments, and the
// words after launchers (exec, python, python -m, ...).
func programWords(cmd []string) []string {
	var out []string
	i := 0
	for i < len(cmd) && strings.Contains(cmd[i], "=") && !strings.HasPrefix(cmd[i], "-") {
		i++
	}
	for ; i < len(cmd); i++ {
		out = append(out, cmd[i])
		if !launchers[cmd[i]] && !launchers[pathBase(cmd[i])] {
			break
		}
	}
	return out
}

func pathBase(w string) string {
	if i := strings.LastIndexByte(w, '/'); i >= 0 {
		return w[i+1:]
	}
	return w
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
