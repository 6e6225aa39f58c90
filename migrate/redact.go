package migrate

import (
	"regexp"
	"strings"
)

var (
	urlCredRe   = regexp.MustCompile(`(?i)([a-z][a-z0-9+.\-]*://[^\s:/@]*:)([^\s@/]+)(@)`)
	secretKeyRe = regexp.MustCompile(`(?i)(PASSW|PASSWD|PASSWORD|SECRET|TOKEN|_KEY|^KEY|APIKEY|API_KEY|CREDENTIAL|PRIVATE)`)
	kvSecretRe  = regexp.MustCompile(`(?i)\b([A-Z0-9_]*(?:PASSW(?:OR)?D?|SECRET|TOKEN|_KEY|APIKEY|CREDENTIAL)[A-Z0-9_]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"',\]}]+)`)
	flagSecret  = regexp.MustCompile(`(?i)(--?[a-z0-9\-]*(?:password|passwd|secret|token|api-key|apikey)[a-z0-9\-]*)(=|\s+|["']?,\s*["']?)([^\s"',\]]+)`)
)

// Redact hides credentials in text meant for people: passwords in URLs,
// values of keys named like PASSWORD, SECRET, TOKEN or KEY, and such flags.
func Redact(s string) string {
	if !mayHoldSecret(s) {
		return s // the common case: skip the regular expressions
	}
	s = urlCredRe.ReplaceAllString(s, "${1}***${3}")
	s = kvSecretRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := kvSecretRe.FindStringSubmatch(m)
		if q := sub[3][0]; q == '"' || q == '\'' {
			return sub[1] + sub[2] + string(q) + "***" + string(q)
		}
		return sub[1] + sub[2] + "***"
	})
	s = flagSecret.ReplaceAllString(s, "${1}${2}***")
	return s
}

// RedactValue hides value when key names a secret, and credentials in it
// otherwise.
func RedactValue(key, value string) string {
	if secretKeyRe.MatchString(key) && !strings.HasSuffix(strings.ToUpper(key), "_FILE") {
		return "***"
	}
	return Redact(value)
}

// RedactDiff redacts a unified diff line by line, for a pull-request body:
// the diff written to standard output stays exact, the one shown to
// reviewers does not carry the deployment's secrets.
func RedactDiff(diff string) string {
	lines := strings.SplitAfter(diff, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "@@") {
			continue
		}
		lines[i] = Redact(l)
	}
	return strings.Join(lines, "")
}

// mayHoldSecret is a cheap test that s could match one of the patterns
// Redact replaces: a URL with credentials (an '@') or a secret-like word.
func mayHoldSecret(s string) bool {
	if strings.IndexByte(s, '@') >= 0 {
		return true
	}
	l := strings.ToLower(s)
	for _, w := range []string{"pass", "secret", "token", "key", "credential"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}
