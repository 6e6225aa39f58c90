// Command unhost moves Docker Compose deployments off host networking.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/unhost/unhost/internal/gctune"
	"github.com/unhost/unhost/internal/streams"
)

func main() {
	processSettings()
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ctx, stop := stagedContexts(sigs, os.Stderr, teardownGrace)
	code := runContext(ctx, os.Args[1:], newFactory(streams.System()))
	stop()
	signal.Stop(sigs)
	os.Exit(code)
}

// processSettings sets what belongs to the whole process, which no library
// package may change: compose-go's logrus warnings stay off the user's
// terminal (unhost reports what matters itself), and the garbage
// collector's target is raised for a short, allocation-heavy run (see
// gctune; GOGC, when set, wins).
func processSettings() {
	logrus.SetOutput(io.Discard)
	gctune.Raise()
}

// factory is what main gives every command: its streams and environment.
type factory struct {
	io  *streams.IO
	env []string
}

func newFactory(s *streams.IO) *factory { return &factory{io: s, env: os.Environ()} }

// run executes the CLI with args and returns the process exit code. It is
// separate from main so that tests can call it without a process.
func run(args []string) int { return runWith(args, os.Stdout, os.Stderr) }

// runWith is run with the standard streams given.
func runWith(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, newFactory(&streams.IO{In: os.Stdin, Out: stdout, ErrOut: stderr}))
}

// runContext runs the command line args under ctx and returns the exit code.
func runContext(ctx context.Context, args []string, f *factory) int {
	args, done := pluginArgs(args, f.io.Out)
	if done {
		return ExitOK
	}
	return execute(ctx, newRootCmd(f), args, f)
}

// execute runs root with args and f's streams and returns the exit code,
// printing the error, if any, on one line.
func execute(ctx context.Context, root *cobra.Command, args []string, f *factory) int {
	root.SetArgs(args)
	root.SetIn(f.io.In)
	root.SetOut(f.io.Out)
	root.SetErr(f.io.ErrOut)
	err := root.ExecuteContext(ctx)
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
