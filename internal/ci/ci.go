// Package ci tells tests whether they run in continuous integration, where
// a missing Docker engine or corpus is a failure rather than a skip.
package ci

import (
	"os"
	"strconv"
	"strings"
)

// Enabled reports whether the CI environment variable is truthy.
func Enabled() bool { return Truthy(os.Getenv("CI")) }

// Truthy reports whether s says yes: what strconv.ParseBool takes for true
// (1, t, true, TRUE, True), and yes, y and on in any case, as CI systems
// write it.
func Truthy(s string) bool {
	s = strings.TrimSpace(s)
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	switch strings.ToLower(s) {
	case "yes", "y", "on":
		return true
	}
	return false
}
