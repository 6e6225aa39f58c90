package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Exit codes, as documented in README.md.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitFindings = 3 // scan found something, migrate left a blocker, or --check would change files
	ExitVerify   = 4 // verification failed
)

// exitError carries an exit code through cobra's error return. An empty
// message means the command already reported what it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: ExitUsage, err: err} }

// silentExit returns an error that sets the exit code and prints nothing.
func silentExit(code int) error { return &exitError{code: code} }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}

func newRootCmd(f *factory) *cobra.Command {
	return rootWith(newMigrateCmd(f, nil), newDetectCmd(f, nil), newScanCmd(f, nil), newVerifyCmd(), newProbeCmd())
}

// rootWith returns the root command with the given subcommands (tests
// pass commands with a runF seam).
func rootWith(cmds ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "unhost",
		Short:         "Move Docker Compose deployments off host networking, safely",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	// Bad flags are usage errors (exit 2), for every subcommand.
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(cmds...)
	return root
}
