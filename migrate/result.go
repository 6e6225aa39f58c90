package migrate

import "github.com/unhost/unhost/plan"

// FileResult is the new text of one edited file.
type FileResult struct {
	Path string `json:"path"`
	Abs  string `json:"-"`
	Old  []byte `json:"-"`
	New  []byte `json:"-"`
	// edits made Old into New, sorted; Diff compares only around them
	edits []Edit
}

// Result is a plan with the files it rewrites.
type Result struct {
	Plan  *plan.Plan
	Files []FileResult // only files that change, in load order
}
