package migrate

import "testing"

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://shop:s3cret@localhost:5432/shop", "postgres://shop:***@localhost:5432/shop"},
		{"      - POSTGRES_PASSWORD=s3cret", "      - POSTGRES_PASSWORD=***"},
		{"      POSTGRES_PASSWORD: hunter2", "      POSTGRES_PASSWORD: ***"},
		{"GITHUB_TOKEN=ghp_abc API_KEY: xyz", "GITHUB_TOKEN=*** API_KEY: ***"},
		{`command: ["--api-key=abc", "--password", "pw"]`, `command: ["--api-key=***", "--password", "***"]`},
		{`environment: {DB_PASSWORD: "p w", X: 1}`, `environment: {DB_PASSWORD: "***", X: 1}`},
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"http://user@host:80/", "http://user@host:80/"},
		{"PORT: 8080", "PORT: 8080"},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := RedactValue("DB_PASSWORD", "x"); got != "***" {
		t.Errorf("RedactValue = %q", got)
	}
	if got := RedactValue("DB_PASSWORD_FILE", "/run/secrets/db"); got != "/run/secrets/db" {
		t.Errorf("RedactValue of a _FILE key = %q", got)
	}
	diff := "--- a/c.yaml\n+++ b/c.yaml\n@@ -1,2 +1,2 @@\n-  URL: postgres://u:pw@localhost:5432/d\n+  URL: postgres://u:pw@db:5432/d\n   PASSWORD: x\n"
	want := "--- a/c.yaml\n+++ b/c.yaml\n@@ -1,2 +1,2 @@\n-  URL: postgres://u:***@localhost:5432/d\n+  URL: postgres://u:***@db:5432/d\n   PASSWORD: ***\n"
	if got := RedactDiff(diff); got != want {
		t.Errorf("RedactDiff:\n%s\nwant:\n%s", got, want)
	}
}
