package migrate

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// Redaction hides credentials in what people read (the pull-request body,
// reports on the terminal); the JSON plan and the files themselves stay
// exact. It works at three levels:
//
//   - Redact, on one string: values of secret-named keys (KEY=value,
//     KEY: value), URL user-info, the argument of secret-bearing flags
//     (--flag X, --flag=X, -pX of mysql clients), Authorization values and
//     Bearer tokens, PEM blocks;
//   - RedactText, on lines of a file: Redact on each line, and what spans
//     lines (PEM bodies, block scalars under secret-named keys, a flag on
//     one line whose argument is the next list item);
//   - RedactYAML, on a whole YAML file: the structure says which scalars
//     are secret (values under secret-named keys, NAME=value items,
//     arguments of secret flags in list commands, PEM in block scalars),
//     then RedactText. It keeps every line where it was, so that a diff
//     of two redacted files has the hunks of the real diff.

const mask = "***"

// secretStems are parts of names that say a value is secret.
var secretStems = []string{"PASS", "PWD", "SECRET", "TOKEN", "KEY", "DSN", "AUTH", "CREDENTIAL", "PRIVATE", "SALT", "COOKIE", "SIGNATURE"}

// notSecretLast are last words of a secret-looking name whose value is not
// the secret itself (POSTGRES_PASSWORD_FILE, AUTH_HOST, TOKEN_TTL).
var notSecretLast = map[string]bool{
	"FILE": true, "FILES": true, "PATH": true, "DIR": true, "HOST": true, "HOSTNAME": true, "PORT": true,
	"ADDR": true, "ADDRESS": true, "URL": true, "URI": true, "ENDPOINT": true, "SERVER": true,
	"ENABLED": true, "DISABLED": true, "ENABLE": true, "DISABLE": true, "MODE": true, "TYPE": true,
	"METHOD": true, "USER": true, "USERNAME": true, "NAME": true, "TTL": true, "TIMEOUT": true,
	"EXPIRY": true, "EXPIRES": true, "LENGTH": true, "ALGORITHM": true, "PROVIDER": true, "HEADER": true,
}

// secretName reports whether a key, variable or flag name says its value
// is secret: one of its words holds a secret stem, and its last word does
// not say the value is only about the secret (a file, a host, a switch).
func secretName(name string) bool {
	// a dotted name is a path (services.auth-service.networks) or a
	// property (spring.datasource.password): its last part names the value
	if i := strings.LastIndexByte(name, '.'); i >= 0 && i < len(name)-1 {
		name = name[i+1:]
	}
	words := nameWords(name)
	if len(words) == 0 || notSecretLast[words[len(words)-1]] {
		return false
	}
	for _, w := range words {
		for _, s := range secretStems {
			if strings.Contains(w, s) {
				return true
			}
		}
	}
	return false
}

// nameWords splits a name into upper-case words at '_', '-', '.' and
// lower-to-upper case changes (dbPassword: DB, PASSWORD).
func nameWords(name string) []string {
	var words []string
	var cur strings.Builder
	prevLower := false
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range name {
		switch {
		case r == '_' || r == '-' || r == '.':
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		cur.WriteRune(unicode.ToUpper(r))
	}
	flush()
	return words
}

// mysqlClients take their password glued to -p (-psecret).
var mysqlClients = []string{"mysql", "mysqldump", "mysqladmin", "mysqlcheck", "mysqlimport", "mysqlshow", "mysqlpump", "mysqlsh", "mysqlslap", "mariadb", "mariadb-dump", "mariadb-admin", "mariadb-check", "mariadb-import", "mariadb-show", "mariadb-slap", "mariadbd", "mysqld"}

var mysqlRe = regexp.MustCompile(`(?:^|[^A-Za-z0-9_.\-])(?:` + strings.Join(quoteAll(mysqlClients), "|") + `)(?:$|[^A-Za-z0-9_\-])`)

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = regexp.QuoteMeta(s)
	}
	return out
}

var (
	schemeRe  = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://`)
	authRe    = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization)(["']?[ \t]*[:=][ \t]*)`)
	bearerRe  = regexp.MustCompile(`(?i)\b(bearer)([ \t]+)`)
	flagRe    = regexp.MustCompile(`(?:^|[\s"'\[,(=])(--?[A-Za-z][A-Za-z0-9_.\-]*)`)
	pemBegin  = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*-----`)
	pemEnd    = regexp.MustCompile(`-----END [A-Z0-9 ]*-----`)
	mysqlPRe  = regexp.MustCompile(`(?:^|[\s"'\[,(])-p([^\s"',\])]+)`)
	wordStart = regexp.MustCompile(`\S`)
)

// span is a byte range of a string to be masked.
type span struct{ from, to int }

// Redact hides credentials in one string (a line, a value, a command).
func Redact(s string) string {
	if !mayHoldSecret(s) {
		return s // the common case: skip the scans
	}
	return apply(s, secretSpans(s))
}

// secretSpans finds the spans of s that Redact masks. An expression runs
// only where s holds the text every match of it holds ("-----BEGIN ",
// "://", the words of the case-blind ones, whose letters fold to ASCII
// letters only): most text that mayHoldSecret lets through holds none.
func secretSpans(s string) []span {
	var sp []span
	if strings.Contains(s, "-----BEGIN ") {
		sp = append(sp, pemSpans(s)...)
	}
	if strings.Contains(s, "://") {
		sp = append(sp, urlSpans(s)...)
	}
	upper := strings.ToUpper(s)
	if strings.Contains(upper, "AUTHORIZATION") {
		for _, m := range authRe.FindAllStringSubmatchIndex(s, -1) {
			sp = append(sp, valueSpan(s, m[1], true))
		}
	}
	if strings.Contains(upper, "BEARER") {
		for _, m := range bearerRe.FindAllStringSubmatchIndex(s, -1) {
			sp = append(sp, valueSpan(s, m[1], false))
		}
	}
	for _, m := range kvMatches(s) {
		name := s[m[2]:m[3]]
		if !secretName(name) {
			continue
		}
		// "name": value needs the quote before the name too
		if m[4] != m[5] && (m[2] == 0 || s[m[2]-1] != s[m[4]]) {
			continue
		}
		sep := s[m[6]:m[7]]
		if !lineKey(s, m[2]) && !strings.Contains(sep, "=") && proseWord(s, m[2], name) {
			continue // "... is not a compose key: not a compose file"
		}
		if strings.Contains(sep, ":") && m[7] < len(s) && m[7] == m[6]+strings.Index(sep, ":")+1 && strings.HasPrefix(s[m[7]:], "//") {
			continue // scheme://, not a key
		}
		sp = append(sp, valueSpan(s, m[1], lineKey(s, m[2])))
	}
	sp = append(sp, flagSpans(s)...)
	return sp
}

// kvMatches finds NAME= and NAME: (a name, an optional closing quote,
// then = or : with spaces either side) as the regular expression
// ([A-Za-z_][A-Za-z0-9_.\-]*)(["']?)([ \t]*[=:][ \t]*) would with
// FindAllStringSubmatchIndex, in one pass without backtracking: Redact
// runs it on every warning, and the expression tried each position of a
// name anew. Each match is whole, name, quote and separator as start and
// end pairs. A name runs as far as name characters go: a shorter one
// would be followed by a name character, which neither a quote, a space
// nor the separator is, so where the longest name is not followed by the
// rest no start inside it matches.
func kvMatches(s string) [][]int {
	var out [][]int
	for pos := 0; pos < len(s); {
		i := pos
		for i < len(s) && !kvNameChar(s[i]) {
			i++
		}
		j := i
		for j < len(s) && kvNameChar(s[j]) {
			j++
		}
		pos = j
		start := i
		for start < j && !(s[start] == '_' || s[start] >= 'A' && s[start] <= 'Z' || s[start] >= 'a' && s[start] <= 'z') {
			start++
		}
		if start == j {
			continue
		}
		k := j
		if k < len(s) && (s[k] == '"' || s[k] == '\'') {
			k++
		}
		quoteEnd := k
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
		if k == len(s) || s[k] != '=' && s[k] != ':' {
			continue
		}
		for k++; k < len(s) && (s[k] == ' ' || s[k] == '\t'); k++ {
		}
		out = append(out, []int{start, k, start, j, j, quoteEnd, quoteEnd, k})
		pos = k
	}
	return out
}

func kvNameChar(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// proseWord reports whether name, found mid-string before a colon, reads as
// a word of a sentence rather than a key: lower-case letters only, not
// after a flow collection's '{' or ',', a quote, or a query's '?', '&', ';'.
func proseWord(s string, i int, name string) bool {
	for _, r := range name {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	j := i - 1
	for j >= 0 && (s[j] == ' ' || s[j] == '\t') {
		j--
	}
	return j >= 0 && !strings.ContainsRune("{,\"'?&;", rune(s[j]))
}

// lineKey reports whether the key at i starts its line's content: only
// indentation, a list dash or a quote come before it.
func lineKey(s string, i int) bool {
	j := strings.LastIndexByte(s[:i], '\n') + 1
	pre := strings.TrimLeft(s[j:i], " \t")
	pre = strings.TrimPrefix(pre, "- ")
	pre = strings.TrimLeft(pre, " \t")
	return pre == "" || pre == `"` || pre == `'`
}

// valueSpan returns the span of the value that starts at i (after spaces):
// a quoted string to its closing quote; with whole, the rest of the line
// but a trailing comment or closing quote; else one word.
func valueSpan(s string, i int, whole bool) span {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i >= len(s) {
		return span{i, i}
	}
	switch q := s[i]; q {
	case '"', '\'':
		end := closingQuote(s, i)
		return span{i + 1, end}
	case '[', '{', '&', '*', '|', '>', '\n':
		if whole {
			return span{i, i} // a collection, an anchor or a block scalar: not the value itself
		}
	}
	end := i
	if whole {
		for end < len(s) && s[end] != '\n' {
			end++
		}
		line := s[i:end]
		if k := strings.Index(line, " #"); k >= 0 {
			line = line[:k]
		}
		line = strings.TrimRight(line, " \t\r")
		if strings.HasSuffix(line, `"`) || strings.HasSuffix(line, `'`) {
			line = line[:len(line)-1]
		}
		return span{i, i + len(line)}
	}
	for end < len(s) && !strings.ContainsRune(" \t\r\n\"',]})", rune(s[end])) {
		end++
	}
	return span{i, end}
}

// closingQuote returns the index of the quote closing the one at i (or the
// end of the line), past an escaped quote in double quotes and a doubled
// quote in single quotes.
func closingQuote(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q == '"':
			j++
		case s[j] == q && q == '\'' && j+1 < len(s) && s[j+1] == '\'':
			j++ // '' is a quote inside single quotes
		case s[j] == q:
			return j
		case s[j] == '\n':
			return j
		}
	}
	return len(s)
}

// urlSpans finds URL user-info: the password of user:password@ (which may
// hold '/' and '@'), a user-only user-info that is a key (a Sentry DSN, a
// token in a git URL), and all of it for Sentry.
func urlSpans(s string) []span {
	var sp []span
	locs := schemeRe.FindAllStringIndex(s, -1)
	for k, loc := range locs {
		start := loc[1]
		end := len(s)
		if k+1 < len(locs) {
			end = locs[k+1][0]
		}
		if i := strings.IndexAny(s[start:end], " \t\r\n\"'<>`"); i >= 0 {
			end = start + i
		}
		t := s[start:end]
		at := strings.LastIndexByte(t, '@')
		if at <= 0 {
			continue
		}
		info := t[:at]
		host := t[at+1:]
		if c := strings.IndexByte(info, ':'); c >= 0 {
			if strings.ContainsAny(info[:c], "/?#") {
				continue
			}
			if strings.Contains(strings.ToLower(host), "sentry") {
				sp = append(sp, span{start, start + at})
			} else {
				sp = append(sp, span{start + c + 1, start + at})
			}
			continue
		}
		if strings.ContainsAny(info, "/?#") || !keyLike(info) && !strings.Contains(strings.ToLower(host), "sentry") {
			continue // a user name (postgres://app@db/app): reviewers need it
		}
		sp = append(sp, span{start, start + at})
	}
	return sp
}

// flagSpans finds the argument of secret-bearing flags: --flag=X,
// --flag X (also as neighbouring items of a flow list), and -pX where a
// mysql client is named.
func flagSpans(s string) []span {
	var sp []span
	for _, m := range flagRe.FindAllStringSubmatchIndex(s, -1) {
		name := strings.TrimLeft(s[m[2]:m[3]], "-")
		if !secretName(name) {
			continue
		}
		quoted := m[2] > 0 && (s[m[2]-1] == '"' || s[m[2]-1] == '\'')
		i := m[3]
		if i < len(s) && s[i] == '=' {
			if quoted {
				sp = append(sp, span{i + 1, closingQuote(s, m[2]-1)})
			} else {
				sp = append(sp, valueSpan(s, i+1, false))
			}
			continue
		}
		// the next argument: after a closing quote, spaces and a comma
		j := i
		if j < len(s) && (s[j] == '"' || s[j] == '\'') {
			j++
		}
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == ',' {
			j++
		}
		if j == i || j >= len(s) || s[j] == '\n' {
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(s[j:], " \t\"'"), "--") {
			continue // another flag: this one has no argument here
		}
		sp = append(sp, valueSpan(s, j, false))
	}
	if (strings.Contains(s, "mysql") || strings.Contains(s, "mariadb")) && mysqlRe.MatchString(s) {
		for _, m := range mysqlPRe.FindAllStringSubmatchIndex(s, -1) {
			sp = append(sp, span{m[2], m[3]})
		}
	}
	return sp
}

// pemSpans finds PEM bodies within one string (a value holding "\n" or
// real newlines); a block without its end is masked to the end.
func pemSpans(s string) []span {
	var sp []span
	for _, b := range pemBegin.FindAllStringIndex(s, -1) {
		end := len(s)
		if e := pemEnd.FindStringIndex(s[b[1]:]); e != nil {
			end = b[1] + e[0]
		}
		sp = append(sp, span{b[1], end})
	}
	return sp
}

// apply masks the spans of s; overlapping spans merge. Line breaks inside
// a span are kept, so that text keeps its lines.
func apply(s string, sp []span) string {
	if len(sp) == 0 {
		return s
	}
	keep := make([]bool, len(s)+1) // keep[i]: byte i is not masked
	for i := range keep {
		keep[i] = true
	}
	any := false
	for _, x := range sp {
		for i := x.from; i < x.to && i < len(s); i++ {
			if s[i] != '\n' && s[i] != '\r' {
				keep[i] = false
				any = true
			}
		}
	}
	if !any {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if keep[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		for i < len(s) && !keep[i] {
			i++
		}
		b.WriteString(mask)
	}
	return b.String()
}

// RedactValue hides value when key names a secret, and credentials in it
// otherwise.
func RedactValue(key, value string) string {
	if secretName(key) {
		return mask
	}
	return Redact(value)
}

// RedactText redacts the lines of a file: Redact on each line, and what
// spans lines: PEM bodies, block scalars under secret-named keys, and the
// argument of a secret flag that ends one line and starts the next (a
// YAML list command, a folded string).
func RedactText(text string) string {
	lines := strings.SplitAfter(text, "\n")
	out := redactLines(lines)
	return strings.Join(out, "")
}

var (
	blockKeyRe    = regexp.MustCompile(`^([ \t]*)(?:- +)?["']?([A-Za-z_][A-Za-z0-9_.\-]*)["']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*(?:#.*)?\r?\n?$`)
	lastFlagRe    = regexp.MustCompile(`(?:^|[\s"'\[,])(--?[A-Za-z][A-Za-z0-9_.\-]*)["']?[ \t]*,?[ \t]*\\?\r?\n?$`)
	itemRe        = regexp.MustCompile(`^[ \t]*(?:- +)?["']?`)
	blockHeaderRe = regexp.MustCompile(`^[|>][-+0-9]*[ \t]*(?:#.*)?\r?\n?$`)
	mysqlItem     = regexp.MustCompile(`^[ \t]*- +["']?-p(\S+?)["']?[ \t]*\r?\n?$`)
)

// redactLines redacts lines (each with its line break) and returns them,
// one for one.
func redactLines(lines []string) []string {
	out := make([]string, len(lines))
	inPEM := false
	blockIndent := -1    // inside a block scalar under a secret key: its key's indentation
	flagPending := false // the previous line ended with a secret flag
	mysqlAt := -100      // the last line that named a mysql client
	for i, l := range lines {
		content := strings.TrimRight(l, "\r\n")
		indent := len(content) - len(strings.TrimLeft(content, " \t"))
		blank := strings.TrimSpace(content) == ""
		switch {
		case inPEM:
			if e := pemEnd.FindStringIndex(l); e != nil {
				rest := l[e[1]:]
				out[i] = apply(l[:e[1]], []span{{firstNonSpace(l), e[0]}}) + apply(rest, secretSpans(rest))
				inPEM = pemOpen(rest)
			} else {
				out[i] = maskContent(l)
			}
			continue
		case blockIndent >= 0 && (blank || indent > blockIndent):
			out[i] = maskContent(l)
			continue
		}
		blockIndent = -1
		sp := secretSpans(l)
		if flagPending && !blank {
			j := len(itemRe.FindString(l))
			switch {
			case blockHeaderRe.MatchString(l[j:]):
				// the argument is a block scalar: mask its lines
				blockIndent = indent
				if strings.HasPrefix(strings.TrimLeft(content, " \t"), "- ") {
					blockIndent += 2
				}
			case !strings.HasPrefix(l[j:], "--"):
				sp = append(sp, valueSpan(l, j, false))
			}
		}
		if mysqlRe.MatchString(l) {
			mysqlAt = i
		}
		if i-mysqlAt <= 20 {
			if m := mysqlItem.FindStringSubmatchIndex(l); m != nil {
				sp = append(sp, span{m[2], m[3]})
			}
		}
		out[i] = apply(l, sp)
		inPEM = pemOpen(l)
		if m := blockKeyRe.FindStringSubmatch(l); m != nil && secretName(m[2]) {
			blockIndent = len(m[1])
			if strings.HasPrefix(strings.TrimLeft(content, " \t"), "- ") {
				blockIndent += 2
			}
		}
		if !blank {
			flagPending = false
			if m := lastFlagRe.FindStringSubmatch(l); m != nil && secretName(strings.TrimLeft(m[1], "-")) {
				flagPending = true
			}
		}
	}
	return out
}

// pemOpen reports whether the last PEM block begun in l does not end in l.
func pemOpen(l string) bool {
	b := pemBegin.FindAllStringIndex(l, -1)
	return b != nil && !pemEnd.MatchString(l[b[len(b)-1][1]:])
}

func firstNonSpace(l string) int {
	if loc := wordStart.FindStringIndex(l); loc != nil {
		return loc[0]
	}
	return len(l)
}

// maskContent masks what a line holds after its indentation (and a list
// dash), keeping its line break.
func maskContent(l string) string {
	content := strings.TrimRight(l, "\r\n")
	if strings.TrimSpace(content) == "" {
		return l
	}
	j := len(itemRe.FindString(content))
	end := len(strings.TrimRight(content, " \t\"'"))
	if end <= j {
		return l
	}
	return l[:j] + mask + l[end:]
}

// RedactedDiff is the unified diff of the redacted files (RedactYAML of
// each): the diff for a pull-request body. Its hunks are those of
// UnifiedDiff(path, old, new), since redaction keeps lines in place.
func RedactedDiff(path string, old, new []byte) string {
	return UnifiedDiff(path, RedactYAML(old), RedactYAML(new))
}

// RedactDiff redacts a unified diff, for a pull-request body: the diff
// written to standard output stays exact, the one shown to reviewers does
// not carry the deployment's secrets. The old side (context and removed
// lines) and the new side (context and added lines) are each redacted as
// text, so that what spans lines within a hunk is seen. RedactYAML on both
// files before diffing sees the whole files and should be preferred.
func RedactDiff(diff string) string {
	lines := strings.SplitAfter(diff, "\n")
	out := make([]string, len(lines))
	var oldIdx, newIdx []int
	var oldLines, newLines []string
	flush := func() {
		ro, rn := redactLines(oldLines), redactLines(newLines)
		for k, i := range oldIdx {
			out[i] = lines[i][:1] + ro[k]
		}
		for k, i := range newIdx {
			// a context line takes the new side's redaction when only
			// that side masked something in it
			if lines[i][0] == '+' || out[i] == lines[i] {
				out[i] = lines[i][:1] + rn[k]
			}
		}
		oldIdx, newIdx, oldLines, newLines = nil, nil, nil, nil
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "@@") || l == "":
			flush()
			out[i] = l
		case l[0] == ' ' || l[0] == '-':
			oldIdx, oldLines = append(oldIdx, i), append(oldLines, l[1:])
			if l[0] == ' ' {
				newIdx, newLines = append(newIdx, i), append(newLines, l[1:])
			}
		case l[0] == '+':
			newIdx, newLines = append(newIdx, i), append(newLines, l[1:])
		default: // "\ No newline at end of file"
			out[i] = l
		}
	}
	flush()
	return strings.Join(out, "")
}

// mayHoldSecret is a cheap test that s could hold something Redact masks:
// a URL with user-info or a PEM block, a secret-like word, a mysql client.
func mayHoldSecret(s string) bool {
	if strings.IndexByte(s, '@') >= 0 || strings.Contains(s, "-----") {
		return true
	}
	l := strings.ToUpper(s)
	for _, w := range secretStems {
		if strings.Contains(l, w) {
			return true
		}
	}
	return strings.Contains(l, "BEARER") || strings.Contains(l, "MYSQL") || strings.Contains(l, "MARIADB")
}

// RedactYAML redacts a YAML file for people to read, by its structure
// first: a scalar under a secret-named key, the value of a NAME=value
// item with a secret name, the argument of a secret flag in a list
// command (its next item, or after '='), -pX in a list that names a mysql
// client, and a scalar holding a PEM block are masked wherever they are
// written (quoted, plain, block scalars over several lines). Then
// RedactText masks what patterns find. Every line stays where it was.
// Text that does not parse as YAML gets RedactText alone.
func RedactYAML(data []byte) []byte {
	text := string(data)
	if root, err := load.ParseYAML("", data); err == nil && root != nil {
		r := yamlRedactor{text: text, starts: lineStarts(text)}
		r.walk(root, false)
		text = apply(text, r.spans)
	}
	return []byte(RedactText(text))
}

type yamlRedactor struct {
	text   string
	starts []int // byte offset of each line
	spans  []span
}

func lineStarts(s string) []int {
	starts := []int{0}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && i+1 < len(s) {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset converts a node's line and column (in characters) to a byte
// offset.
func (r *yamlRedactor) offset(line, col int) int {
	if line < 1 || line > len(r.starts) {
		return len(r.text)
	}
	off := r.starts[line-1]
	for i := 1; i < col && off < len(r.text); i++ {
		_, size := utf8.DecodeRuneInString(r.text[off:])
		off += size
	}
	return off
}

func (r *yamlRedactor) walk(n *yaml.Node, inFlow bool) {
	if n == nil || n.Kind == yaml.AliasNode {
		return
	}
	flow := inFlow || n.Style&yaml.FlowStyle != 0
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			r.walk(c, false)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode && secretName(k.Value) {
				r.maskScalar(v, flow, 0)
				continue
			}
			r.walk(v, flow)
		}
	case yaml.SequenceNode:
		mysql := false
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode && isMysqlClient(c.Value) {
				mysql = true
			}
		}
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				r.walk(c, flow)
				continue
			}
			v := c.Value
			switch {
			case strings.HasPrefix(v, "-") && !strings.HasPrefix(v, "---"):
				name, _, hasEq := strings.Cut(strings.TrimLeft(v, "-"), "=")
				switch {
				case mysql && strings.HasPrefix(v, "-p") && len(v) > 2 && !strings.HasPrefix(v, "--"):
					r.maskScalar(c, flow, 2)
				case secretName(name) && hasEq:
					r.maskScalar(c, flow, len(v)-len(v[strings.IndexByte(v, '=')+1:]))
				case secretName(name) && i+1 < len(n.Content):
					next := n.Content[i+1]
					if next.Kind == yaml.ScalarNode && !strings.HasPrefix(next.Value, "--") {
						r.maskScalar(next, flow, 0)
					}
				}
			case strings.Contains(v, "="):
				name, _, _ := strings.Cut(v, "=")
				if secretName(name) && !strings.ContainsAny(name, " \t") {
					r.maskScalar(c, flow, len(name)+1)
				}
			}
			if pemBegin.MatchString(v) {
				r.maskScalar(c, flow, 0)
			}
		}
	case yaml.ScalarNode:
		if pemBegin.MatchString(n.Value) {
			r.maskScalar(n, flow, 0)
		}
	}
}

// isMysqlClient reports whether a list item names a mysql client program.
func isMysqlClient(v string) bool {
	base := v[strings.LastIndexByte(v, '/')+1:]
	for _, c := range mysqlClients {
		if base == c {
			return true
		}
	}
	return false
}

// maskScalar masks scalar n's text in the source, but its first skip
// characters (a flag's name) when it is written on one line.
func (r *yamlRedactor) maskScalar(n *yaml.Node, inFlow bool, skip int) {
	start := r.offset(n.Line, n.Column)
	t := r.text
	if start >= len(t) {
		return
	}
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		end := quotedEnd(t, start)
		from := start + 1
		if skip > 0 && skip <= len(n.Value) && !strings.Contains(t[start:end], "\n") && strings.HasPrefix(t[from:], n.Value[:skip]) {
			from += skip
		}
		r.maskLines(from, end)
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// the header line, then every line that is blank or indented as
		// deep as the first content line
		i := strings.IndexByte(t[start:], '\n')
		if i < 0 {
			return
		}
		i += start + 1
		contentIndent := -1
		end := i
		for end < len(t) {
			j := strings.IndexByte(t[end:], '\n')
			lineEnd := len(t)
			if j >= 0 {
				lineEnd = end + j
			}
			line := t[end:lineEnd]
			ind := len(line) - len(strings.TrimLeft(line, " "))
			if strings.TrimSpace(line) != "" {
				if contentIndent < 0 {
					contentIndent = ind
				}
				if ind < contentIndent {
					break
				}
			}
			end = lineEnd
			if j < 0 {
				break
			}
			end++
		}
		r.maskLines(i, end)
	default: // plain: to the end of the line, a comment, or (in flow) a flow indicator
		end := start
		for end < len(t) && t[end] != '\n' {
			if inFlow && strings.IndexByte(",]}", t[end]) >= 0 {
				break
			}
			if t[end] == '#' && end > start && (t[end-1] == ' ' || t[end-1] == '\t') {
				break
			}
			end++
		}
		from := start
		if skip > 0 && skip <= len(n.Value) && strings.HasPrefix(t[start:], n.Value[:skip]) {
			from += skip
		}
		r.maskLines(from, end)
		// a plain scalar folded over more lines: its continuation lines
		// are indented deeper than it starts
		if !strings.HasPrefix(n.Value, strings.TrimSpace(t[start:end])) || len(strings.TrimSpace(t[start:end])) >= len(n.Value) {
			return
		}
		ls := strings.LastIndexByte(t[:start], '\n') + 1
		col := len(t[ls:start]) - len(strings.TrimLeft(t[ls:start], " ")) + 1
		for end < len(t) {
			j := strings.IndexByte(t[end+1:], '\n')
			lineEnd := len(t)
			if j >= 0 {
				lineEnd = end + 1 + j
			}
			line := t[end+1 : lineEnd]
			if strings.TrimSpace(line) != "" && len(line)-len(strings.TrimLeft(line, " ")) < col {
				break
			}
			r.maskLines(end+1, lineEnd)
			end = lineEnd
		}
	}
}

// maskLines masks [from, to) line by line, keeping each line's
// indentation and line break.
func (r *yamlRedactor) maskLines(from, to int) {
	t := r.text
	for from < to {
		for from < to && (t[from] == ' ' || t[from] == '\t') {
			from++
		}
		e := strings.IndexByte(t[from:to], '\n')
		lineEnd := to
		if e >= 0 {
			lineEnd = from + e
		}
		end := lineEnd
		for end > from && (t[end-1] == ' ' || t[end-1] == '\t' || t[end-1] == '\r') {
			end--
		}
		if end > from {
			r.spans = append(r.spans, span{from, end})
		}
		from = lineEnd + 1
	}
}

// quotedEnd returns the index of the quote that closes the quoted scalar
// starting at i, across lines.
func quotedEnd(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case q == '"' && s[j] == '\\':
			j++
		case s[j] == q:
			if q == '\'' && j+1 < len(s) && s[j+1] == '\'' {
				j++
				continue
			}
			return j
		}
	}
	return len(s)
}

// keyLike reports whether a user-only URL user-info looks like a key, not
// a user name: 16 characters or more, with digits.
func keyLike(s string) bool {
	return len(s) >= 16 && strings.ContainsAny(s, "0123456789")
}
