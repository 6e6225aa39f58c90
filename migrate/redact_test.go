package migrate

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://shop:s3cret@localhost:5432/shop", "postgres://shop:***@localhost:5432/shop"},
		{"postgres://shop:s3/cr@t@db:5432/shop", "postgres://shop:***@db:5432/shop"},
		{"redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"},
		{"https://0123456789abcdef@o1.ingest.sentry.io/42", "https://***@o1.ingest.sentry.io/42"},
		{"https://pub:priv@sentry.example.com/1", "https://***@sentry.example.com/1"},
		{"http://user@host:80/", "http://user@host:80/"},
		{"https://ghp_0123456789abcdefghij@github.com/o/r.git", "https://***@github.com/o/r.git"},
		{"https://registry.npmjs.org/@scope/pkg", "https://registry.npmjs.org/@scope/pkg"},
		{"kafka://a:x@h1:9092,kafka://b:y@h2:9092", "kafka://a:***@h1:9092,kafka://b:***@h2:9092"},
		{"      - POSTGRES_PASSWORD=s3cret", "      - POSTGRES_PASSWORD=***"},
		{"      POSTGRES_PASSWORD: hunter2", "      POSTGRES_PASSWORD: ***"},
		{"      MYSQL_PWD: mysqlpw", "      MYSQL_PWD: ***"},
		{"      - DB_PASS=pa ss word", "      - DB_PASS=***"},
		{"      SMTP_PASS: 'x y'", "      SMTP_PASS: '***'"},
		{"      SENTRY_DSN: https://k@sentry.io/1", "      SENTRY_DSN: ***"},
		{"      REDIS_AUTH: \"a\\\"b\"", "      REDIS_AUTH: \"***\""},
		{"GITHUB_TOKEN=ghp_abc API_KEY: xyz", "GITHUB_TOKEN=***"},
		{"run GITHUB_TOKEN=ghp_abc API_KEY: xyz", "run GITHUB_TOKEN=*** API_KEY: ***"},
		{`command: ["--api-key=abc", "--password", "pw"]`, `command: ["--api-key=***", "--password", "***"]`},
		{`environment: {DB_PASSWORD: "p w", X: 1}`, `environment: {DB_PASSWORD: "***", X: 1}`},
		{`{"dbPassword": "pw", "user": "u"}`, `{"dbPassword": "***", "user": "u"}`},
		{"command: redis-server --bind 0.0.0.0 --requirepass hunter2 --port 6379", "command: redis-server --bind 0.0.0.0 --requirepass *** --port 6379"},
		{"command: keydb-server --auth s3 --masterauth=s4", "command: keydb-server --auth *** --masterauth=***"},
		{`command: ["redis-server", "--requirepass", 'x y']`, `command: ["redis-server", "--requirepass", '***']`},
		{`command: sh -c "app --token=abc --password 'p w'"`, `command: sh -c "app --token=*** --password '***'"`},
		{`test: ["CMD", "mysqladmin", "ping", "-uroot", "-pmysqlpw"]`, `test: ["CMD", "mysqladmin", "ping", "-uroot", "-p***"]`},
		{"command: mysqldump -u root -pmysqlpw db", "command: mysqldump -u root -p*** db"},
		{"command: app -p 8080", "command: app -p 8080"},
		{`test: curl -H "Authorization: Bearer eyJtok.en" http://x`, `test: curl -H "Authorization: ***`},
		{"      - 'Authorization: Basic dXNlcjpwdw=='", "      - 'Authorization: ***'"},
		{"  X-Auth-Token: abc", "  X-Auth-Token: ***"},
		{"--header=Bearer abc.def", "--header=Bearer ***"},
		{`KEY: "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----"`, `KEY: "***"`},
		{`cert: "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----"`, `cert: "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----"`},
		{"      POSTGRES_PASSWORD_FILE: /run/secrets/db", "      POSTGRES_PASSWORD_FILE: /run/secrets/db"},
		{"      AUTH_HOST: localhost", "      AUTH_HOST: localhost"},
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"PORT: 8080", "PORT: 8080"},
		{"secrets:", "secrets:"},
		{`top-level key "x" is not a compose key: not a compose file`, `top-level key "x" is not a compose key: not a compose file`},
		{"{password: pw, user: u}", "{password: ***, user: u}"},
		{"host=db user=app password=pw dbname=x", "host=db user=app password=*** dbname=x"},
		{"https://h/x?a=1&token=abc", "https://h/x?a=1&token=***"},
		{"  secrets: [db_password]", "  secrets: [db_password]"},
		{"command: redis-server --auth --port 6379", "command: redis-server --auth --port 6379"},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	if got := RedactValue("DB_PASSWORD", "x"); got != "***" {
		t.Errorf("RedactValue = %q", got)
	}
	if got := RedactValue("DB_PASSWORD_FILE", "/run/secrets/db"); got != "/run/secrets/db" {
		t.Errorf("RedactValue of a _FILE key = %q", got)
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"POSTGRES_PASSWORD": true, "MYSQL_PWD": true, "DB_PASS": true, "SMTP_PASS": true, "SENTRY_DSN": true,
		"REDIS_AUTH": true, "AWS_SECRET_ACCESS_KEY": true, "GITHUB_TOKEN": true, "API_KEY": true, "apiKey": true,
		"requirepass": true, "masterauth": true, "auth": true, "token": true, "password": true, "api-key": true,
		"GOOGLE_APPLICATION_CREDENTIALS_JSON": true, "SSH_PRIVATE_KEY": true, "SECRET_KEY_BASE": true,
		"POSTGRES_PASSWORD_FILE": false, "AUTH_HOST": false, "TOKEN_TTL": false, "DB_USER": false, "PORT": false,
		"tls-key-file": false, "HOSTNAME": false, "image": false, "ports": false,
	} {
		if got := secretName(name); got != want {
			t.Errorf("secretName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRedactText(t *testing.T) {
	in := `services:
  cache:
    command:
      - redis-server
      - --requirepass
      - "hunter2"
  db:
    healthcheck:
      test:
        - CMD
        - mysqladmin
        - ping
        - -pmysqlpw
    environment:
      TLS_KEY: |
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASC
        -----END PRIVATE KEY-----
      x-cert: |
        -----BEGIN RSA PRIVATE KEY-----
        MIIEowIBAAKCAQEA
        -----END RSA PRIVATE KEY-----
      PORT: "5432"
`
	want := `services:
  cache:
    command:
      - redis-server
      - --requirepass
      - "***"
  db:
    healthcheck:
      test:
        - CMD
        - mysqladmin
        - ping
        - -p***
    environment:
      TLS_KEY: |
        ***
        ***
        ***
      x-cert: |
        -----BEGIN RSA PRIVATE KEY-----
        ***
        -----END RSA PRIVATE KEY-----
      PORT: "5432"
`
	if got := RedactText(in); got != want {
		t.Errorf("RedactText:\n%s\nwant:\n%s", got, want)
	}
}

func TestRedactYAML(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"flag then its argument on the next line",
			"command:\n  - redis-server\n  - --auth\n  - >-\n    folded\n    secret\n",
			"command:\n  - redis-server\n  - --auth\n  - >-\n    ***\n    ***\n"},
		{"secret key with a block scalar",
			"environment:\n  SMTP_PASS: >\n    a b\n    c d\n  PORT: 1\n",
			"environment:\n  SMTP_PASS: >\n    ***\n    ***\n  PORT: 1\n"},
		{"secret key with a plain scalar over two lines",
			"environment:\n  DB_PASS: one\n    two\n  PORT: 1\n",
			"environment:\n  DB_PASS: ***\n    ***\n  PORT: 1\n"},
		{"env list item with quotes",
			"environment:\n  - \"MYSQL_PWD=a b\"\n  - 'X=1'\n",
			"environment:\n  - \"MYSQL_PWD=***\"\n  - 'X=1'\n"},
		{"flow command",
			"command: [mysql, -uroot, \"-pmy pw\", --password, 'x']\n",
			"command: [mysql, -uroot, \"-p***\", --password, '***']\n"},
		{"double-quoted secret over lines",
			"x:\n  API_TOKEN: \"abc\n    def\"\n",
			"x:\n  API_TOKEN: \"***\n    ***\"\n"},
		{"PEM in a block scalar under any key",
			"configs:\n  c:\n    content: |\n      -----BEGIN EC PRIVATE KEY-----\n      MHcCAQEE\n      -----END EC PRIVATE KEY-----\n",
			"configs:\n  c:\n    content: |\n      ***\n      ***\n      ***\n"},
		{"not YAML: text redaction",
			"DB_PASS=x\n: : [\n",
			"DB_PASS=***\n: : [\n"},
	}
	for _, c := range cases {
		if got := string(RedactYAML([]byte(c.in))); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, c.want)
		}
		if got := string(RedactYAML([]byte(c.in))); strings.Count(got, "\n") != strings.Count(c.in, "\n") {
			t.Errorf("%s: lines moved", c.name)
		}
	}
}

func TestRedactDiff(t *testing.T) {
	diff := "--- a/c.yaml\n+++ b/c.yaml\n@@ -1,2 +1,2 @@\n-  URL: postgres://u:pw@localhost:5432/d\n+  URL: postgres://u:pw@db:5432/d\n   PASSWORD: x\n"
	want := "--- a/c.yaml\n+++ b/c.yaml\n@@ -1,2 +1,2 @@\n-  URL: postgres://u:***@localhost:5432/d\n+  URL: postgres://u:***@db:5432/d\n   PASSWORD: ***\n"
	if got := RedactDiff(diff); got != want {
		t.Errorf("RedactDiff:\n%s\nwant:\n%s", got, want)
	}
	// a flag on a rewritten line, its argument on a context line
	diff = "@@ -1,3 +1,3 @@\n   command:\n-    - --bind=127.0.0.1\n+    - --bind=0.0.0.0\n     - --requirepass\n     - hunter2\n"
	want = "@@ -1,3 +1,3 @@\n   command:\n-    - --bind=127.0.0.1\n+    - --bind=0.0.0.0\n     - --requirepass\n     - ***\n"
	if got := RedactDiff(diff); got != want {
		t.Errorf("RedactDiff:\n%s\nwant:\n%s", got, want)
	}
}

// TestRedactedDiffIssueLeaks is the file that leaked through the PR body
// (issue 13): every secret in it must be gone from the diff shown.
func TestRedactedDiffIssueLeaks(t *testing.T) {
	old := `services:
  api:
    image: api
    network_mode: host
    environment:
      DATABASE_URL: postgres://api:pa/ss@localhost:5432/api
      MYSQL_PWD: mysqlpwd1
      DB_PASS: dbpass2
      SMTP_PASS: smtppass3
      SENTRY_URL: https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/2
    healthcheck:
      test: ["CMD", "curl", "-H", "Authorization: Bearer bearertok4", "http://localhost"]
  cache:
    image: redis
    network_mode: host
    command: redis-server --bind 127.0.0.1 --requirepass requirepw5 --port 6379
  keydb:
    image: keydb
    network_mode: host
    command:
      - keydb-server
      - --auth
      - authpw6
  db:
    image: mysql
    network_mode: host
    healthcheck:
      test: mysqladmin ping -h 127.0.0.1 -pmysqlpw
    x-key: |
      -----BEGIN PRIVATE KEY-----
      MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7
      -----END PRIVATE KEY-----
`
	neu := strings.ReplaceAll(old, "network_mode: host", "networks: [default]")
	neu = strings.ReplaceAll(neu, "--bind 127.0.0.1", "--bind 0.0.0.0")
	neu = strings.ReplaceAll(neu, "127.0.0.1 -pmysqlpw", "db -pmysqlpw")
	got := RedactedDiff("compose.yaml", []byte(old), []byte(neu))
	for _, secret := range []string{"pa/ss", "mysqlpwd1", "dbpass2", "smtppass3", "0123456789abcdef", "bearertok4", "requirepw5", "authpw6", "mysqlpw", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"} {
		if strings.Contains(got, secret) {
			t.Errorf("the diff shows %q:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, "+    command: redis-server --bind 0.0.0.0 --requirepass *** --port 6379") {
		t.Errorf("the rewritten line is not shown redacted:\n%s", got)
	}
	// the line-by-line redaction of the real diff, as the PR body has it
	// today, must not leak either
	if d := RedactDiff(UnifiedDiff("compose.yaml", []byte(old), []byte(neu))); strings.Contains(d, "requirepw5") || strings.Contains(d, "mysqlpw") || strings.Contains(d, "authpw6") {
		t.Errorf("RedactDiff leaks:\n%s", d)
	}
}

// kvRe is the expression kvMatches stands for.
var kvRe = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_.\-]*)(["']?)([ \t]*[=:][ \t]*)`)

// TestKVMatches compares kvMatches with the expression on every string of
// up to four characters from an alphabet of each kind of character that
// matters (and one that does not), and on the tests' own texts.
func TestKVMatches(t *testing.T) {
	alphabet := []string{"a", "Z", "_", "1", ".", "-", `"`, "'", " ", "\t", "=", ":", "\n", "é", "#"}
	var all func(prefix string, n int)
	checked := 0
	all = func(prefix string, n int) {
		checkKV(t, prefix)
		checked++
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			all(prefix+c, n-1)
		}
	}
	all("", 4)
	for _, s := range []string{
		`DB_PASSWORD=hunter2 and api.key: "x"`, `"token": 'abc', user = bob`,
		"1abc:2 a.b-c d:e", `x"y: z`, "--password=x -p:y", "a b\t:\t c=",
		"n: port 80/tcp is published on all interfaces: ports published by Docker bypass host firewalls",
	} {
		checkKV(t, s)
		checked++
	}
	if checked < 50000 {
		t.Fatalf("only %d strings compared", checked)
	}
}

// FuzzKVMatches compares kvMatches with the expression on any text.
func FuzzKVMatches(f *testing.F) {
	f.Add(`DB_PASSWORD=hunter2 and api.key: "x"`)
	f.Add("a\"b:c 1x = 'y'")
	f.Fuzz(func(t *testing.T, s string) { checkKV(t, s) })
}

func checkKV(t *testing.T, s string) {
	t.Helper()
	want := kvRe.FindAllStringSubmatchIndex(s, -1)
	got := kvMatches(s)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kvMatches(%q) = %v, the expression gives %v", s, got, want)
	}
}
