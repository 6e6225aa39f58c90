package migrate

import (
	"strings"
	"testing"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

func TestCheckReach(t *testing.T) {
	cases := []struct {
		bind, publish string
		ok            bool
	}{
		{"0.0.0.0", "", true},
		{"0.0.0.0", "10.0.0.5", true},
		{"::", "", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"::1", "::1", true},
		{"127.0.0.1", "", false},
		{"127.0.0.1", "0.0.0.0", false},
		{"127.0.0.1", "10.0.0.5", false},
		{"192.168.1.5", "192.168.1.5", true},
		{"192.168.1.5", "127.0.0.1", true},
		{"192.168.1.5", "", false},
		{"192.168.1.5", "192.168.1.6", false},
	}
	for _, c := range cases {
		l := &listener{proto: "tcp", port: 80, addr: c.bind, decision: plan.DecisionPublish, publishIP: c.publish}
		p := &planner{names: []string{"web"}, svcs: map[string]*svc{
			"web": {name: "web", action: plan.ActionMigrate, facts: &analysis.ServiceFacts{Name: "web"}, listeners: []*listener{l}},
		}}
		err := p.checkReach()
		if (err == nil) != c.ok {
			t.Errorf("bound to %q, published on %q: %v, want ok=%v", c.bind, c.publish, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "web port 80") {
			t.Errorf("error does not name the port: %v", err)
		}
	}
}
