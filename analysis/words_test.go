package analysis

import (
	"slices"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"gunicorn -b 127.0.0.1:8001 app:app", []string{"gunicorn", "-b", "127.0.0.1:8001", "app:app"}},
		{`python manage.py runserver "127.0.0.1:8000"`, []string{"python", "manage.py", "runserver", "127.0.0.1:8000"}},
		{`sh -c "python manage.py migrate && python manage.py runserver 127.0.0.1:8000"`,
			[]string{"sh", "-c", "python", "manage.py", "migrate", "python", "manage.py", "runserver", "127.0.0.1:8000"}},
		{"postgres -c listen_addresses=localhost -c port=5433", []string{"postgres", "-c", "listen_addresses=localhost", "-c", "port=5433"}},
		{"a; b | c > /dev/null 2>&1", []string{"a", "b", "c", "/dev/null", "1"}},
		{`redis-server --port ${PORT:-6379}`, []string{"redis-server", "--port", "${PORT:-6379}"}},
		{`echo 'unclosed`, []string{"echo", "unclosed"}},
		{`echo (x)`, []string{"echo", "(x)"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitWords(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLastWord(t *testing.T) {
	tests := map[string]string{
		"gunicorn -b ":                       "-b",
		`sh -c "python manage.py runserver `: "runserver",
		"--bind=":                            "--bind=",
		"":                                   "",
	}
	for in, want := range tests {
		if got := lastWord(in); got != want {
			t.Errorf("lastWord(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"a b", `sh -c "x 'y' z"`, "a;b&&c||d", `"\`, "$(x)", "`x`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range splitWords(s) {
			if w == "" {
				t.Fatalf("empty word from %q", s)
			}
		}
	})
}
