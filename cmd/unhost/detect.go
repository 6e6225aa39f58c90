package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/unhost/unhost/detect"
)

// detectOptions are the flags of `unhost detect`.
type detectOptions struct {
	projects []string
	all      bool
	samples  int
	interval time.Duration
	duration time.Duration
	method   string
	// samplingSet: --samples or --interval was given (they select
	// sampling, which --duration excludes).
	samplingSet bool
	output      string
	format      string
	quiet       bool

	stdout, stderr io.Writer
	stderrTTY      bool          // show progress
	docker         detect.Docker // nil: from the environment
}

func newDetectCmd() *cobra.Command {
	opts := &detectOptions{}
	cmd := &cobra.Command{
		Use:   "detect [-p PROJECT]... [--all]",
		Short: "Report which host ports a running project's host-network services bind, and who talks to whom",
		Long: `detect reads a running Compose project (or swarm stack) and reports, per
service, the TCP listeners and bound UDP sockets of its processes (address,
port, dual-stack, pid, process), the ports Docker publishes for its bridge
containers, the TCP connections between its services (edges) and the ports
that had clients from outside the project. Sockets are read from /proc, so
detect must run as root on the engine's host.

By default the socket tables are sampled (--samples, --interval): only
connections open at those instants are seen. --duration 15s watches for a
window instead and sees every TCP connection established in it, however
short, with counts (method ebpf: a tracepoint program; where it cannot be
attached, /proc is sampled every second and the inventory says why).
Ctrl-C during the window writes what was seen so far, marked partial.

The output is the inventory JSON documented in docs/inventory.md (one object
for one project, an array for several); migrate --inventory reads it.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("detect: unexpected argument %q", args[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.samplingSet = cmd.Flags().Changed("samples") || cmd.Flags().Changed("interval")
			opts.stdout = cmd.OutOrStdout()
			opts.stderr = cmd.ErrOrStderr()
			if f, ok := opts.stderr.(*os.File); ok {
				_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
				opts.stderrTTY = err == nil
			}
			return runDetect(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.projects, "project", "p", nil, "compose project or stack `name` (repeatable)")
	f.BoolVar(&opts.all, "all", false, "every project with a container on the host network")
	f.IntVar(&opts.samples, "samples", 3, "how many times to read the sockets")
	f.DurationVar(&opts.interval, "interval", time.Second, "pause between two samples")
	f.DurationVar(&opts.duration, "duration", 0, "watch for this long and see every TCP connection between services (excludes --samples and --interval)")
	f.StringVar(&opts.method, "method", "", "with --duration: ebpf (fail if it cannot attach) or procfs (sample every second); default ebpf if possible")
	f.StringVarP(&opts.output, "output", "o", "", "write the inventory to `file` instead of stdout")
	f.StringVar(&opts.format, "format", "json", "output format: json or text")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "no progress on stderr")
	return cmd
}

func (o *detectOptions) validate() error {
	switch {
	case len(o.projects) == 0 && !o.all:
		return errors.New("detect: name a project with -p, or use --all")
	case len(o.projects) > 0 && o.all:
		return errors.New("detect: -p and --all exclude each other")
	case o.samples < 1:
		return fmt.Errorf("detect: --samples must be at least 1, got %d", o.samples)
	case o.interval < 0:
		return fmt.Errorf("detect: --interval must not be negative, got %s", o.interval)
	case o.duration < 0:
		return fmt.Errorf("detect: --duration must not be negative, got %s", o.duration)
	case o.duration > 0 && o.samplingSet:
		return errors.New("detect: --duration watches for a window; --samples and --interval select sampling: use one or the other")
	case o.method != "" && o.duration == 0:
		return errors.New("detect: --method needs --duration")
	case o.method != "" && o.method != detect.MethodEBPF && o.method != detect.MethodProcfs:
		return fmt.Errorf("detect: --method must be ebpf or procfs, got %q", o.method)
	case o.format != "json" && o.format != "text":
		return fmt.Errorf("detect: --format must be json or text, got %q", o.format)
	}
	for _, p := range o.projects {
		if p == "" {
			return errors.New("detect: empty project name")
		}
	}
	return nil
}

func runDetect(ctx context.Context, o *detectOptions) error {
	if err := o.validate(); err != nil {
		return usageErr(err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	dopts := detect.Options{
		Docker:   o.docker,
		Projects: o.projects,
		All:      o.all,
		Samples:  o.samples,
		Interval: o.interval,
		Duration: o.duration,
		Method:   o.method,
	}
	if o.stderrTTY && !o.quiet {
		unit := "sample"
		if o.duration > 0 {
			unit = "second"
		}
		dopts.Progress = func(done, total int) {
			fmt.Fprintf(o.stderr, "\rdetect: %s %d/%d", unit, done, total)
			if done == total {
				fmt.Fprint(o.stderr, "\n")
			}
		}
	}
	invs, err := detect.ObserveAll(ctx, dopts)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	if len(invs) > 0 && invs[0].Partial {
		// Ctrl-C during the window: what was seen is still worth writing.
		fmt.Fprintf(o.stderr, "\ndetect: interrupted after %s; the inventory is marked partial\n", invs[0].Duration)
	}
	write := func(w io.Writer) error {
		if o.format == "text" {
			return detect.WriteText(w, invs)
		}
		return detect.WriteJSON(w, invs)
	}
	if o.output == "" {
		return write(o.stdout)
	}
	return writeNewFileAtomic(o.output, write)
}

// writeNewFileAtomic writes through a temporary file in the same directory and
// renames it, so that a reader never sees half an inventory.
func writeNewFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("detect: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("detect: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("detect: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	return nil
}
