package migrate

import (
	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// FileResult is the new text of one edited file.
type FileResult struct {
	Path string `json:"path"`
	Abs  string `json:"-"`
	Old  []byte `json:"-"`
	New  []byte `json:"-"`
	// edits made Old into New, sorted; Diff compares only around them
	edits []Edit
	// diff is the edit script, computed in the background from the moment
	// the edits are made (while the caller re-checks the files, say)
	diff *pendingOps
}

// pendingOps is an edit script being computed.
type pendingOps struct {
	done chan struct{}
	ops  []op
}

// startDiff begins computing the file's edit script on another goroutine.
func (f *FileResult) startDiff() {
	p := &pendingOps{done: make(chan struct{})}
	old, edits := f.Old, f.edits
	go func() {
		defer close(p.done)
		p.ops = regionOps(old, edits)
	}()
	f.diff = p
}

// Result is a plan with the files it rewrites.
type Result struct {
	Plan  *plan.Plan
	Files []FileResult // only files that change, in load order
	// Facts are the static facts the plan was decided on
	// (analysis.Analyze of the project with Options.Images), unchanged.
	Facts *analysis.Facts
}
