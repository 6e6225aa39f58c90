// Command unhost moves Docker Compose deployments off host networking.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	code := run(os.Args[1:])
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code. It is
// separate from main so that tests can call it without a process.
func run(args []string) int { return runWith(args, os.Stdout, os.Stderr) }

// runWith is run with the standard streams given.
func runWith(args []string, stdout, stderr io.Writer) int {
	args, done := pluginArgs(args, stdout)
	if done {
		return ExitOK
	}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if isCobraUsage(err) {
		code = ExitUsage
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(root.ErrOrStderr(), "unhost: "+msg)
	}
	return code
}

// isCobraUsage recognises cobra's own usage errors (unknown commands,
// wrong argument counts), which it returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
