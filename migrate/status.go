package migrate

import (
	"fmt"

	"github.com/unhost/unhost/plan"
)

// CheckStatus says whether a run must exit 3 (findings): when migrate
// would change a file (`--check`), or when a blocker is left (every run,
// also with --write and -o). A service kept on the host network for a
// stated reason (ServicePlan.Finding: listeners unknown, needs the host
// network) is a note, not a finding: it does not count. why says, one
// line each, what made it 3.
func CheckStatus(p *plan.Plan, check bool) (findings bool, why []string) {
	if check && p.Changed {
		why = append(why, "migrate would change "+plural(len(p.Files), "file"))
	}
	for _, b := range p.Blockers {
		w := "blocker: "
		if b.Service != "" {
			w += b.Service + ": "
		}
		why = append(why, w+b.What)
	}
	return len(why) > 0, why
}

// Kept returns, one line each, the services kept on the host network for
// a stated reason: notes to show, which do not set exit 3.
func Kept(p *plan.Plan) []string {
	var out []string
	for _, s := range p.Services {
		if s.Finding != "" {
			out = append(out, fmt.Sprintf("%s stays on the host network (%s): %s", s.Name, s.Finding, s.Reason))
		}
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
