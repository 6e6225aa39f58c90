// Command unhost moves Docker Compose deployments off host networking.
package main

import (
	"fmt"
	"os"
)

func main() {
	code := run(os.Args[1:])
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code. It is
// separate from main so that tests can call it without a process.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(root.ErrOrStderr(), "unhost: "+msg)
	}
	return code
}
