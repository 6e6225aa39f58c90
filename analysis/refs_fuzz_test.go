package analysis

import (
	"strings"
	"testing"
)

// FuzzFinder runs the reference finder on arbitrary environment values and
// commands: it never panics, every match lies inside the value, and every
// reference's token is text of the value it was found in (the rewriter
// replaces exactly that text).
func FuzzFinder(f *testing.F) {
	for _, s := range []string{
		"tcp:localhost:15432,tcp:cache:16379,tcp:telemetry:18125", "tcp:127.0.0.1:19001", "tcp:19000",
		"postgres://u:p@localhost:5432/db", "http://[::1]:8080/x", "udp:[::1]:53", "localhost:$PORT",
		"${HOST:-localhost}:80", "gunicorn -b 127.0.0.1:8001 app", "python manage.py runserver 0:8000",
		"postgres -c listen_addresses=localhost -c port=5433", "weed master -ip=localhost:9333 -ip.bind=0.0.0.0",
		`sh -c "a && b --bind [::1]:9 | c"`, "zk1:2888:3888", "tcp:", ":", "tcp:[", "-c port=",
	} {
		f.Add("LISTEN", s)
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, key, val string) {
		for _, m := range findAddrs(val) {
			if m.start < 0 || m.end > len(val) || m.start > m.end || m.hostStart < m.start || m.hostStart > m.end {
				t.Fatalf("match out of range: %+v in %q", m, val)
			}
		}
		sf := &ServiceFacts{Name: "s"}
		fd := &finder{sf: sf, env: map[string]scalarValue{}, flags: map[string]bool{}, others: owners{}}
		v := scalarValue{field: "command", value: val}
		if key != "" {
			v = scalarValue{field: "environment." + key, key: key, value: val}
			fd.env[key] = v
		}
		fd.scanValue(v)
		fd.scanFlags([]scalarValue{v})
		for _, r := range sf.Refs {
			if !strings.Contains(val, r.Token) {
				t.Fatalf("token %q is not in %q", r.Token, val)
			}
		}
		for _, l := range sf.Listeners {
			if l.Port <= 0 || l.Port > 65535 {
				t.Fatalf("listener port %d from %q", l.Port, val)
			}
		}
	})
}
