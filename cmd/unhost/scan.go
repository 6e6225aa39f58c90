package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/internal/atomicfile"
	"github.com/unhost/unhost/scan"
)

// informationURI is where SARIF viewers send people for the tool.
const informationURI = "https://github.com/unhost/unhost"

type scanOptions struct {
	paths         []string
	format        string
	baseline      string
	writeBaseline string
	workers       int
	maxFileSize   int64
	allowOutside  bool
	strict        bool

	stdout, stderr io.Writer
	env            []string
	workDir        string // "" means the current folder
}

// newScanCmd returns `unhost scan`; runF, when not nil, runs instead of the
// scan with the parsed options.
func newScanCmd(f *factory, runF func(*scanOptions) error) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [PATH]...",
		Short: "Report Compose services on the host network, and what they expose",
		Long: `Find every Compose file under the given paths (default: the current
folder), load each with its override file, and report, at file:line:col:

  host-network        a service on the host network (directly, through an
                      anchor, extends, an override, a service:/container:
                      chain, or a swarm stack's external host network)
  ports-ignored       ports: on a host-network service, which Docker ignores
  all-interfaces      ports published on every interface (and past UFW)
  loopback-reference  localhost references to another service's port
  not-loadable        a file Compose cannot load, scanned from its structure
  skipped             a file not read: not a regular file, larger than
                      --max-file-size, or a symlink out of the scanned folder

Silence one finding with "# unhost:ignore RULE" on its line or the line
above; accept all current findings with --write-baseline FILE and pass
--baseline FILE later. Exit status: 0 nothing found, 3 findings, 1 error,
2 bad usage. Notes (services kept on the host network for a stated reason,
skipped files) do not set exit 3 unless --strict.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.paths = args
			o.stdout, o.stderr, o.env = f.io.Out, f.io.ErrOut, f.env
			if runF != nil {
				return runF(o)
			}
			return runScan(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.format, "format", "text", "output: "+strings.Join(scan.Formats, ", "))
	fl.StringVar(&o.baseline, "baseline", "", "hide the findings listed in this baseline file")
	fl.StringVar(&o.writeBaseline, "write-baseline", "", "write the current findings to this baseline file and exit 0")
	fl.IntVar(&o.workers, "jobs", 0, "projects loaded at once (default: the number of CPUs)")
	addMaxFileSizeFlag(fl, &o.maxFileSize)
	fl.BoolVar(&o.allowOutside, "allow-outside", false, "read files that symlinks lead to outside the scanned folders (/proc, /dev and the rest of the system)")
	fl.BoolVar(&o.strict, "strict", false, "exit 3 on notes too: services kept on the host network for a stated reason, skipped files")
	return cmd
}

func runScan(ctx context.Context, o *scanOptions) error {
	known := false
	for _, f := range scan.Formats {
		known = known || f == o.format
	}
	if !known {
		return usageErr(fmt.Errorf("--format %q: want %s", o.format, strings.Join(scan.Formats, ", ")))
	}
	if o.baseline != "" && o.writeBaseline != "" {
		return usageErr(fmt.Errorf("--baseline and --write-baseline exclude each other"))
	}
	if o.workers < 0 {
		return usageErr(fmt.Errorf("--jobs %d: want a positive number", o.workers))
	}
	if o.maxFileSize <= 0 {
		return usageErr(fmt.Errorf("--max-file-size %d: want a positive number of bytes", o.maxFileSize))
	}
	if o.stdout == nil {
		o.stdout = os.Stdout
	}
	if o.stderr == nil {
		o.stderr = os.Stderr
	}
	opts := scan.Options{WorkDir: o.workDir, Env: o.env, Workers: o.workers,
		Bounds: scan.Bounds{MaxFileSize: o.maxFileSize, AllowOutside: o.allowOutside}}
	if o.baseline != "" {
		b, err := scan.ReadBaseline(o.baseline, opts.Bounds)
		if err != nil {
			return err
		}
		opts.Baseline = b
	}
	rep, err := scan.Scan(ctx, o.paths, opts)
	if err != nil {
		return err
	}
	if o.writeBaseline != "" {
		data, err := scan.NewBaseline(rep.Findings).Marshal()
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(o.writeBaseline, data, 0o644); err != nil {
			return fmt.Errorf("write baseline: %w", err)
		}
		fmt.Fprintf(o.stderr, "wrote %d finding(s) to %s\n", len(rep.Findings), o.writeBaseline)
		return nil
	}
	if err := scan.Write(o.stdout, o.format, rep, scan.Tool{Name: "unhost", Version: version(), InformationURI: informationURI}); err != nil {
		return err
	}
	if o.format == "text" {
		fmt.Fprintf(o.stderr, "%d finding(s) in %d file(s) scanned", len(rep.Findings), rep.Files)
		if n := rep.Notes(); n > 0 {
			fmt.Fprintf(o.stderr, ", %d of them note(s) (exit 3 only with --strict)", n)
		}
		if rep.Suppressed > 0 {
			fmt.Fprintf(o.stderr, ", %d suppressed", rep.Suppressed)
		}
		fmt.Fprintln(o.stderr)
	}
	if rep.Failing(o.strict) {
		return silentExit(ExitFindings)
	}
	return nil
}
