package migrate

import (
	"strings"
	"testing"

	"github.com/unhost/unhost/plan"
)

func TestCheckStatus(t *testing.T) {
	kept := plan.ServicePlan{Name: "nvr", Action: plan.ActionKeepHost, Finding: FindingListenersUnknown, Reason: "listeners unknown"}
	cases := []struct {
		name  string
		p     plan.Plan
		check bool
		want  bool
	}{
		{"nothing to do", plan.Plan{}, true, false},
		{"kept with a reason is a note", plan.Plan{Services: []plan.ServicePlan{kept}}, true, false},
		{"would change, --check", plan.Plan{Changed: true, Files: []string{"compose.yaml"}}, true, true},
		{"changed, written (not --check)", plan.Plan{Changed: true, Files: []string{"compose.yaml"}}, false, false},
		{"a blocker, written", plan.Plan{Changed: true, Blockers: []plan.Step{{Service: "x", What: "clash"}}}, false, true},
		{"a blocker, nothing changed", plan.Plan{Blockers: []plan.Step{{What: "variable"}}, Services: []plan.ServicePlan{kept}}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := CheckStatus(&tc.p, tc.check)
			if got != tc.want || got != (len(why) > 0) {
				t.Fatalf("CheckStatus = %v %q, want %v", got, why, tc.want)
			}
		})
	}
	if k := Kept(&plan.Plan{Services: []plan.ServicePlan{kept, {Name: "web", Action: plan.ActionMigrate}}}); len(k) != 1 || !strings.HasPrefix(k[0], "nvr stays on the host network (listeners-unknown)") {
		t.Errorf("Kept = %q", k)
	}
}
