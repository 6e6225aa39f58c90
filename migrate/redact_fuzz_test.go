package migrate

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// The redaction fuzz target writes a Compose file with a generated secret
// in one of the places secrets are found (values under secret names in map
// and list syntax, URL user-info in any field, each secret flag in each
// form in string and list commands, Authorization headers, PEM blocks in
// block scalars) and checks that no part of the secret is left in what
// people are shown: RedactYAML of the file, RedactText of it, the
// pull-request diff of a migration next to it, and Redact of the line
// where a one-line secret sits.
//
// Every run of the secret's letters starts with a Cyrillic letter and the
// files have no other Cyrillic text, so any piece of the secret that is
// left, even cut at a '/' or a space, shows as a Cyrillic letter.

const (
	alnum     = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	cyrillic  = "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ"
	plainSet  = alnum + "/@:=+.-_~!%*"
	quotedSet = alnum + "/@:=+.-_~!%* #'{}[],&|>"
	urlSet    = alnum + "/@:!*+;=.~-_%"
	wordSet   = alnum + "/:=+.-_~!%*@"
	base64Set = alnum + "+/="
)

// genSecret makes a secret of 6 to 40 characters from raw: characters of
// set, with a Cyrillic letter first and after every character that is
// not a letter or digit.
func genSecret(raw []byte, set string) string {
	cyr := []rune(cyrillic)
	var b []rune
	needLetter := true
	for i, c := range raw {
		if i >= 40 {
			break
		}
		if needLetter {
			b = append(b, cyr[int(c)%len(cyr)])
			needLetter = false
			continue
		}
		r := rune(set[int(c)%len(set)])
		b = append(b, r)
		needLetter = !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}
	for len(b) < 6 || needLetter {
		b = append(b, cyr[len(b)%len(cyr)])
		needLetter = false
	}
	return string(b)
}

var (
	secretEnvNames = []string{"MYSQL_PWD", "DB_PASS", "SMTP_PASS", "POSTGRES_PASSWORD", "SENTRY_DSN", "API_TOKEN",
		"AWS_SECRET_ACCESS_KEY", "REDIS_AUTH", "GOOGLE_CREDENTIALS", "SSH_PRIVATE_KEY", "apiKey", "db.password"}
	secretFlags = []string{"--password", "--requirepass", "--auth", "--token", "--masterauth", "--api-key", "--db-password", "-password"}
	programs    = []string{"redis-server", "keydb-server", "/app/server", "app"}
	mysqls      = []string{"mysql", "mysqladmin", "mysqldump", "mariadb", "/usr/bin/mysqladmin"}
	urlFields   = []string{
		"    environment:\n      DATABASE_URL: %s\n",
		"    environment:\n      - DATABASE_URL=%s\n",
		"    command: app --db %s --verbose\n",
		"    command: [\"app\", \"--db\", \"%s\"]\n",
		"    labels:\n      - \"db=%s\"\n",
		"    x-url: '%s'\n",
		"    healthcheck:\n      test: curl -f %s\n",
		"    entrypoint:\n      - app\n      - %s\n",
	}
)

func pick[T any](xs []T, n uint8) T { return xs[int(n)%len(xs)] }

func dq(s string) string { return strings.ReplaceAll(s, "'", "''") }

// secretPlace returns the text a service gets and the secret in it, and
// whether the secret sits on one line.
func secretPlace(pos, form, field uint8, raw []byte) (snippet, secret string, oneLine bool) {
	name := pick(secretEnvNames, field)
	switch pos % 9 {
	case 0: // environment map
		switch form % 4 {
		case 0:
			secret = genSecret(raw, plainSet)
			return fmt.Sprintf("    environment:\n      %s: %s\n      PORT: \"80\"\n", name, secret), secret, true
		case 1:
			secret = genSecret(raw, quotedSet)
			return fmt.Sprintf("    environment:\n      %s: '%s'\n", name, dq(secret)), secret, true
		case 2:
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "'", ""))
			return fmt.Sprintf("    environment:\n      %s: \"%s\"\n", name, secret), secret, true
		default:
			secret = genSecret(raw, quotedSet)
			return fmt.Sprintf("    environment:\n      %s: |\n        %s\n      PORT: \"80\"\n", name, secret), secret, false
		}
	case 1: // environment list
		switch form % 3 {
		case 0:
			secret = genSecret(raw, plainSet)
			return fmt.Sprintf("    environment:\n      - %s=%s\n      - PORT=80\n", name, secret), secret, true
		case 1:
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "'", ""))
			return fmt.Sprintf("    environment:\n      - \"%s=%s\"\n", name, secret), secret, true
		default:
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "\"", ""))
			return fmt.Sprintf("    environment:\n      - '%s=%s'\n", name, dq(secret)), secret, true
		}
	case 2: // flow syntax
		if form%2 == 0 {
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "'", ""))
			return fmt.Sprintf("    environment: {%s: \"%s\", PORT: \"80\"}\n", name, secret), secret, true
		}
		secret = genSecret(raw, strings.Trim(plainSet, ",[]{}"))
		return fmt.Sprintf("    environment: [%s=%s, PORT=80]\n", name, secret), secret, true
	case 3: // URL user-info in any field
		var url string
		if form%3 == 2 {
			secret = genSecret(raw, alnum)
			url = fmt.Sprintf("https://%s@o4504.ingest.sentry.io/42", secret)
		} else {
			secret = genSecret(raw, urlSet)
			url = fmt.Sprintf("postgres://app:%s@db:5432/app", secret)
		}
		return fmt.Sprintf(pick(urlFields, field), url), secret, true
	case 4: // a flag in a string command
		flag, prog := pick(secretFlags, field), pick(programs, field/8)
		switch form % 5 {
		case 0:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    command: %s --port 6379 %s %s --bind 0.0.0.0\n", prog, flag, secret), secret, true
		case 1:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    command: %s %s=%s\n", prog, flag, secret), secret, true
		case 2:
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "\"", ""))
			return fmt.Sprintf("    command: sh -c '%s %s \"%s\"'\n", prog, flag, dq(secret)), secret, true
		case 3:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    command: \"%s %s %s\"\n", prog, flag, secret), secret, true
		default:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    healthcheck:\n      test: %s ping -uroot -p%s\n", pick(mysqls, field), secret), secret, true
		}
	case 5: // a flag in a list command
		flag, prog := pick(secretFlags, field), pick(programs, field/8)
		switch form % 5 {
		case 0:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    command:\n      - %s\n      - %s\n      - %s\n      - --port\n      - \"6379\"\n", prog, flag, secret), secret, false
		case 1:
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "\"", ""))
			return fmt.Sprintf("    command:\n      - %s\n      - \"%s=%s\"\n", prog, flag, secret), secret, true
		case 2:
			secret = genSecret(raw, strings.ReplaceAll(quotedSet, "\"", ""))
			return fmt.Sprintf("    command: [\"%s\", \"%s\", \"%s\"]\n", prog, flag, secret), secret, true
		case 3:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    healthcheck:\n      test:\n        - CMD\n        - %s\n        - ping\n        - -p%s\n", pick(mysqls, field), secret), secret, false
		default:
			secret = genSecret(raw, wordSet)
			return fmt.Sprintf("    healthcheck:\n      test: [\"CMD\", \"%s\", \"ping\", \"-p%s\"]\n", pick(mysqls, field), secret), secret, true
		}
	case 6: // Authorization headers
		scheme := pick([]string{"Bearer", "Basic", "Token", "bearer"}, field)
		secret = genSecret(raw, wordSet)
		switch form % 4 {
		case 0:
			return fmt.Sprintf("    healthcheck:\n      test: [\"CMD\", \"curl\", \"-H\", \"Authorization: %s %s\", \"http://localhost\"]\n", scheme, secret), secret, true
		case 1:
			return fmt.Sprintf("    command: curl -H 'Authorization: %s %s' http://localhost\n", scheme, secret), secret, true
		case 2:
			return fmt.Sprintf("    labels:\n      traefik.http.middlewares.a.headers.customrequestheaders.Authorization: %s %s\n", scheme, secret), secret, true
		default:
			return fmt.Sprintf("    command:\n      - curl\n      - --header\n      - \"Authorization: %s %s\"\n", scheme, secret), secret, true
		}
	case 7: // PEM blocks in block scalars
		a, b := genSecret(raw, base64Set), genSecret(append([]byte{7}, raw...), base64Set)
		secret = a
		kind := pick([]string{"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"}, field)
		pem := fmt.Sprintf("-----BEGIN %s-----\nINDENT%s\nINDENT%s\nINDENT-----END %s-----\n", kind, a, b, kind)
		switch form % 3 {
		case 0:
			return "    x-tls:\n      content: |\n        " + strings.ReplaceAll(pem, "INDENT", "        "), secret, false
		case 1:
			return "    environment:\n      TLS_CERT: |\n        " + strings.ReplaceAll(pem, "INDENT", "        "), secret, false
		default:
			return "    x-keys:\n      - |-\n        " + strings.ReplaceAll(pem, "INDENT", "        "), secret, false
		}
	default: // a secret env value whose name is a YAML key in labels or x- fields
		secret = genSecret(raw, plainSet)
		return fmt.Sprintf("    labels:\n      com.example.%s: %s\n", strings.ToLower(name), secret), secret, true
	}
}

func FuzzRedact(f *testing.F) {
	for pos := uint8(0); pos < 9; pos++ {
		for form := uint8(0); form < 5; form++ {
			f.Add(pos, form, pos+form, []byte("a/b@c:d"))
			f.Add(pos, form, uint8(3*form+1), []byte("hunter2 with spaces/and@signs"))
		}
	}
	f.Fuzz(func(t *testing.T, pos, form, field uint8, raw []byte) {
		snippet, secret, oneLine := secretPlace(pos, form, field, raw)
		old := "services:\n  app:\n    image: nginx:1\n    network_mode: host\n" + snippet + "  db:\n    image: postgres\n"
		neu := strings.Replace(old, "    network_mode: host\n", "    networks: [default]\n", 1)
		if !leaked(old) {
			t.Fatalf("the secret %q is not in the input:\n%s", secret, old)
		}
		check := func(what, out string) {
			t.Helper()
			if leaked(out) {
				t.Fatalf("%s leaks the secret %q:\n%s\ninput:\n%s", what, secret, out, old)
			}
		}
		check("RedactYAML", string(RedactYAML([]byte(old))))
		check("RedactText", RedactText(old))
		check("RedactedDiff", RedactedDiff("compose.yaml", []byte(old), []byte(neu)))
		if oneLine {
			for _, l := range strings.Split(snippet, "\n") {
				if leaked(l) {
					check("Redact of the line", Redact(l))
				}
			}
		}
	})
}

// leaked reports whether s holds a piece of a generated secret.
func leaked(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) })
}
