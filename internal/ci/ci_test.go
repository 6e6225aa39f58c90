package ci

import "testing"

func TestTruthy(t *testing.T) {
	for s, want := range map[string]bool{
		"1": true, "true": true, "TRUE": true, "True": true, "t": true, "yes": true, "YES": true, "y": true, "on": true, " true ": true,
		"": false, "0": false, "false": false, "no": false, "off": false, "maybe": false, "2": false,
	} {
		if got := Truthy(s); got != want {
			t.Errorf("Truthy(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestEnabled(t *testing.T) {
	t.Setenv("CI", "yes")
	if !Enabled() {
		t.Error("CI=yes not enabled")
	}
	t.Setenv("CI", "")
	if Enabled() {
		t.Error("empty CI enabled")
	}
}
