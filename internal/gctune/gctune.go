// Package gctune raises the garbage collector's target for the short,
// allocation-heavy runs of unhost's commands. Only main calls it: the GC
// target belongs to the whole process.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GC target while a command runs. Loading Compose files
// allocates a lot of short-lived garbage while the live heap stays small
// (tens of MB even for a thousand files), so collecting four times less
// often trades a few hundred MB at most for about a third of the CPU time.
const Percent = 400

// Raise sets the GC target to Percent, unless the user set GOGC, and
// returns the function that restores the previous target.
func Raise() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(Percent)
	return func() { debug.SetGCPercent(old) }
}
