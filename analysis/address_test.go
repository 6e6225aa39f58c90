package analysis

import "testing"

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		scope   Scope
		host    string
		gateway bool
	}{
		{"127.0.0.1", ScopeLoopback, "127.0.0.1", false},
		{"127.1.2.3", ScopeLoopback, "127.1.2.3", false},
		{"[::1]", ScopeLoopback, "::1", false},
		{"::1", ScopeLoopback, "::1", false},
		{"::ffff:127.0.0.1", ScopeLoopback, "127.0.0.1", false},
		{"[::ffff:7f00:1]", ScopeLoopback, "127.0.0.1", false},
		{"localhost", ScopeLoopback, "localhost", false},
		{"LocalHost", ScopeLoopback, "localhost", false},
		{"ip6-localhost", ScopeLoopback, "ip6-localhost", false},
		{"0.0.0.0", ScopeAll, "0.0.0.0", false},
		{"::", ScopeAll, "::", false},
		{"[::]", ScopeAll, "::", false},
		{"::ffff:0.0.0.0", ScopeAll, "0.0.0.0", false},
		{"", ScopeAll, "", false},
		{"*", ScopeAll, "*", false},
		{"0", ScopeAll, "0", false},
		{"192.168.1.10", ScopeSpecific, "192.168.1.10", false},
		{"fe80::1%eth0", ScopeSpecific, "fe80::1", false},
		{"172.17.0.1", ScopeSpecific, "172.17.0.1", true},
		{"host.docker.internal", ScopeHostName, "host.docker.internal", true},
		{"db", ScopeHostName, "db", false},
		{"iotdb-1", ScopeHostName, "iotdb-1", false},
		{"dead.beef.cafe.bad", ScopeHostName, "dead.beef.cafe.bad", false},
		{"127.0.0.256", ScopeUnknown, "127.0.0.256", false},
		{"1.2.3", ScopeUnknown, "1.2.3", false},
		{"${HOST}", ScopeUnknown, "${host}", false},
		{"-bad", ScopeUnknown, "-bad", false},
	}
	for _, tt := range tests {
		a := ParseAddress(tt.in)
		if a.Scope != tt.scope || a.Host != tt.host || a.IsHostGateway() != tt.gateway {
			t.Errorf("ParseAddress(%q) = %v %q gateway=%v, want %v %q gateway=%v", tt.in, a.Scope, a.Host, a.IsHostGateway(), tt.scope, tt.host, tt.gateway)
		}
	}
}

func TestAddressPredicates(t *testing.T) {
	tests := []struct {
		in                       string
		loopback, bindAll, local bool
	}{
		{"127.0.0.1", true, false, true},
		{"[::1]", true, false, true},
		{"localhost", true, false, true},
		{"0.0.0.0", false, true, true},
		{"::", false, true, true},
		{"", false, true, false},
		{"*", false, true, true},
		{"0", false, true, false},
		{"host.docker.internal", false, false, true},
		{"gateway.docker.internal", false, false, true},
		{"172.17.0.1", false, false, true},
		{"10.0.0.5", false, false, false},
		{"db", false, false, false},
		{"127.foo", false, false, false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.in); got != tt.loopback {
			t.Errorf("IsLoopback(%q) = %v", tt.in, got)
		}
		if got := IsBindAll(tt.in); got != tt.bindAll {
			t.Errorf("IsBindAll(%q) = %v", tt.in, got)
		}
		if got := IsLocalHost(tt.in); got != tt.local {
			t.Errorf("IsLocalHost(%q) = %v", tt.in, got)
		}
	}
}

func TestScopeText(t *testing.T) {
	for s, want := range map[Scope]string{ScopeUnknown: "unknown", ScopeLoopback: "loopback", ScopeAll: "all-interfaces", ScopeSpecific: "specific", ScopeHostName: "host-name", Scope(99): "unknown"} {
		b, _ := s.MarshalText()
		if string(b) != want {
			t.Errorf("Scope(%d) = %q, want %q", int(s), b, want)
		}
	}
}
