package migrate

import (
	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/load"
)

// Compose merges a service's ports: across files (-f base -f override) by
// appending, unless a later file tags its ports with !reset (drop
// everything before, and its own value) or !override (replace everything
// before with its value). What counts is the merged result (issue 10, item
// 11): entries before a reset are dead, and what unhost adds to a reset
// sequence must survive the merge.

// livePortSeqs returns the ports: sequences (in load order, base first)
// whose entries reach the merged service: those from the last !reset or
// !override on. A !reset sequence itself contributes nothing, but it stays
// in the list: it is where new entries go.
func livePortSeqs(seqs []load.NodeRef) []load.NodeRef {
	from := 0
	for i, s := range seqs {
		if s.Via == "" && (s.Node.Tag == "!reset" || s.Node.Tag == "!override") {
			from = i
		}
	}
	return seqs[from:]
}

// resetToOverride turns "!reset [ITEMS]" into "!override [ITEMS]": with
// !reset compose ignores the value, so entries written there would be lost.
func resetToOverride(t *text, seq *yaml.Node) (Edit, bool) {
	if seq.Tag != "!reset" {
		return Edit{}, false
	}
	off := t.NodeOffset(seq)
	if off < 0 || off+len("!reset") > len(t.Data) || string(t.Data[off:off+len("!reset")]) != "!reset" {
		return Edit{}, false
	}
	return Edit{Start: off, End: off + len("!reset"), Text: "!override"}, true
}
