package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/internal/atomicfile"
	"github.com/unhost/unhost/internal/streams"
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

	io     *streams.IO
	docker detect.Docker // nil: from the environment
}

// newDetectCmd returns `unhost detect`; runF, when not nil, runs instead of
// the detection with the parsed and validated options.
func newDetectCmd(f *factory, runF func(*detectOptions) error) *cobra.Command {
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
			opts.io = f.io
			opts.samplingSet = cmd.Flags().Changed("samples") || cmd.Flags().Changed("interval")
			if err := opts.validate(); err != nil {
				return usageErr(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return runDetect(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&opts.projects, "project", "p", nil, "compose project or stack `NAME` (repeatable)")
	fl.BoolVar(&opts.all, "all", false, "every project with a container on the host network")
	fl.IntVar(&opts.samples, "samples", 3, "how many times to read the sockets")
	fl.DurationVar(&opts.interval, "interval", time.Second, "pause between two samples")
	fl.DurationVar(&opts.duration, "duration", 0, "watch for this long and see every TCP connection between services (excludes --samples and --interval)")
	fl.StringVar(&opts.method, "method", "", "with --duration: ebpf (fail if it cannot attach) or procfs (sample every second); default ebpf if possible")
	fl.StringVarP(&opts.output, "output", "o", "", "write the inventory to `FILE` instead of stdout")
	fl.StringVar(&opts.format, "format", "json", "output `FORMAT`: json or text")
	fl.BoolVarP(&opts.quiet, "quiet", "q", false, "no progress on stderr")
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
	var out *atomicfile.File
	if o.output != "" {
		// Before observing: a bad path should not cost the samples.
		f, err := atomicfile.Create(o.output, 0o644)
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		defer f.Abort()
		out = f
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
	if o.io.ErrIsTerminal() && !o.quiet {
		unit := "sample"
		if o.duration > 0 {
			unit = "second"
		}
		dopts.Progress = func(done, total int) {
			fmt.Fprintf(o.io.ErrOut, "\rdetect: %s %d/%d", unit, done, total)
			if done == total {
				fmt.Fprint(o.io.ErrOut, "\n")
			}
		}
	}
	invs, err := detect.ObserveAll(ctx, dopts)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	if len(invs) > 0 && invs[0].Partial {
		// Ctrl-C during the window: what was seen is still worth writing.
		fmt.Fprintf(o.io.ErrOut, "\ndetect: interrupted after %s; the inventory is marked partial\n", invs[0].Duration)
	}
	write := func(w io.Writer) error {
		if o.format == "text" {
			return detect.WriteText(w, invs)
		}
		return detect.WriteJSON(w, invs)
	}
	if out == nil {
		return write(o.io.Out)
	}
	if err := write(out); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	return nil
}
