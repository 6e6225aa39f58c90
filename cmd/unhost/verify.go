package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/internal/atomicfile"
	"github.com/unhost/unhost/internal/streams"
	"github.com/unhost/unhost/verify"
)

type verifyOptions struct {
	files         []string
	projectDir    string
	envFiles      []string
	plan          string
	timeout       time.Duration
	watch         time.Duration
	keep          bool
	format        string
	output        string
	writableBinds bool
	allowExternal bool
	inPlace       bool
	http          []string
	cleanup       bool
	quiet         bool
	probeBinary   string
	swarm         bool
	swarmSet      bool // --swarm given, true or false
	initSwarm     bool
	profiles      []string
	allowSkip     bool
	originals     []string
	allowSocket   bool
	allowPriv     bool
	allowHostPID  bool
	allowDevices  bool
	bench         bool
	benchTime     time.Duration
	benchRate     float64
	benchTimeSet  bool // --bench-time or --bench-rate given
	benchRateSet  bool

	stdout, stderr io.Writer
}

func newVerifyCmd() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Run the migrated stack as a throwaway project, check it works and exposes no more than intended",
		Long: `verify brings the stack up with docker compose v2 under a throwaway project
name (free host ports, fresh volumes, read-only bind mounts), checks published
ports, service references, stack-internal ports, health and optional HTTP
endpoints from inside the containers' network namespaces, tears it down and
reports. A swarm stack (--swarm, or files that attach the external host
network or carry deploy: sections) is deployed with docker stack deploy on a
swarm manager instead (--init-swarm: a single-node swarm for the run).
Every address reference is checked from inside the namespace of the
container that holds it; with --original, published ports are compared
with the files before migration (and the plan's decisions). A run with
skipped services or checks ends INCOMPLETE and exits 4 unless --allow-skip.
With --bench, after the checks pass, verify measures what leaving host mode
costs on this host: round trips, connection setup and throughput of each
network path a migration changes (throwaway probe containers, never the
services), and each published TCP port of the stack beside the same port of
the running original (GET only on ports known to speak HTTP, at most
--bench-rate a second to the original).
Exit status: 0 all checks pass, 4 a check failed or the run is incomplete,
1 verify could not run (or was refused), 2 bad flags.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("unexpected argument %q: compose files go with -f", args[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.stdout, o.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			o.swarmSet = cmd.Flags().Changed("swarm")
			o.benchTimeSet, o.benchRateSet = cmd.Flags().Changed("bench-time"), cmd.Flags().Changed("bench-rate")
			return runVerify(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "file", "f", nil, "compose file (repeatable; default: compose.yaml etc. in the project directory)")
	f.StringVar(&o.projectDir, "project-directory", "", "project directory (default: the first file's directory)")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "environment file (repeatable)")
	f.StringVar(&o.plan, "plan", "", "migration plan `FILE` written by unhost migrate --format json")
	f.DurationVar(&o.timeout, "timeout", 3*time.Minute, "time for the stack to become healthy and listening")
	f.DurationVar(&o.watch, "watch", 500*time.Millisecond, "every container must run this long after its start without restart or exit")
	f.BoolVar(&o.keep, "keep", false, "leave the test stack up for debugging and print how to remove it")
	f.StringVar(&o.format, "format", "text", "report format: text, json or junit")
	f.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of stdout")
	f.BoolVar(&o.writableBinds, "writable-binds", false, "mount bind mounts read-write (production data may be written)")
	f.BoolVar(&o.allowExternal, "allow-external", false, "allow external networks and volumes (shared with the real deployment)")
	f.BoolVar(&o.inPlace, "in-place", false, "also run host-network services and check references to host services")
	f.StringArrayVar(&o.http, "http", nil, "HTTP check SERVICE:PORT/PATH=STATUS inside the service's namespace (repeatable)")
	f.BoolVar(&o.swarm, "swarm", false, "deploy the files as a swarm stack with docker stack deploy (default: when they look like a stack; --swarm=false forces compose)")
	f.BoolVar(&o.initSwarm, "init-swarm", false, "with a stack: initialise a single-node swarm when the engine is in none, and leave it afterwards")
	f.StringArrayVar(&o.profiles, "profile", nil, "run the services of this profile too (repeatable; default: COMPOSE_PROFILES, else only services without a profile)")
	f.BoolVar(&o.allowSkip, "allow-skip", false, "pass (exit 0) although services or checks were skipped")
	f.StringArrayVar(&o.originals, "original", nil, "compose file before migration, to compare published ports with (repeatable)")
	f.BoolVar(&o.allowSocket, "allow-engine-socket", false, "run services that bind a container engine's socket (or /run, /var/run): they control the engine, production included")
	f.BoolVar(&o.allowPriv, "allow-privileged", false, "run privileged services")
	f.BoolVar(&o.allowHostPID, "allow-host-pid", false, "run services with pid: host")
	f.BoolVar(&o.allowDevices, "allow-devices", false, "run services that map host devices")
	f.BoolVar(&o.bench, "bench", false, "after the checks pass, measure the cost of leaving host mode: network path baselines and the stack's published ports beside the running original's")
	f.DurationVar(&o.benchTime, "bench-time", verify.DefaultBenchTime, "with --bench: the most the bench adds to the run")
	f.Float64Var(&o.benchRate, "bench-rate", verify.DefaultBenchRate, "with --bench: the most requests (or connects) a second sent to the original's ports")
	f.BoolVar(&o.cleanup, "cleanup", false, "only remove leftovers of earlier verify runs whose lease is gone")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	f.StringVar(&o.probeBinary, "probe-binary", "", "static unhost binary for the probe image (default: this executable)")
	_ = f.MarkHidden("probe-binary")
	return cmd
}

func runVerify(ctx context.Context, o *verifyOptions) error {
	if o.stdout == nil {
		o.stdout = os.Stdout
	}
	if o.stderr == nil {
		o.stderr = os.Stderr
	}
	switch o.format {
	case "text", "json", "junit":
	default:
		return usageErr(fmt.Errorf("bad --format %q: want text, json or junit", o.format))
	}
	if o.timeout <= 0 || o.watch < 0 {
		return usageErr(errors.New("--timeout must be positive and --watch not negative"))
	}
	if !o.bench && (o.benchTimeSet || o.benchRateSet) {
		return usageErr(errors.New("--bench-time and --bench-rate go with --bench"))
	}
	if o.bench && (o.benchTime <= 0 || o.benchRate <= 0) {
		return usageErr(errors.New("--bench-time and --bench-rate must be positive"))
	}
	for _, h := range o.http {
		if err := verify.CheckHTTPSpec(h); err != nil {
			return usageErr(fmt.Errorf("--http: %w", err))
		}
	}

	// main's staged signal handler: the first signal cancels ctx, the
	// teardown goes on until a third one (or its grace) cancels this
	ctx = verify.WithTeardownContext(ctx, teardownContext(ctx))

	var progress io.Writer
	if !o.quiet && streams.IsTerminal(o.stderr) {
		progress = o.stderr
	}
	if o.cleanup {
		cli, err := verify.NewClient(ctx)
		if err != nil {
			return err
		}
		defer cli.Close()
		removed, err := verify.Cleanup(ctx, cli, "")
		for _, l := range removed {
			fmt.Fprintf(o.stdout, "removed %s %s\n", l.Kind, l.Name)
		}
		return err
	}

	var out io.Writer = o.stdout
	var file *atomicfile.File
	if o.output != "" {
		// Open before running: a bad path should not cost a stack run.
		// The report replaces the file only once it is whole.
		f, err := atomicfile.Create(o.output, 0o644)
		if err != nil {
			return fmt.Errorf("report file: %w", err)
		}
		file, out = f, f
		defer file.Abort()
	}
	http := append([]string{}, o.http...)
	sort.Strings(http)
	target := verify.TargetAuto
	if o.swarmSet {
		target = verify.TargetCompose
		if o.swarm {
			target = verify.TargetSwarm
		}
	}
	rep, err := verify.Run(ctx, verify.Options{
		Files: o.files, ProjectDir: o.projectDir, EnvFiles: o.envFiles, PlanFile: o.plan,
		Timeout: o.timeout, Watch: o.watch, Keep: o.keep,
		WritableBinds: o.writableBinds, AllowExternal: o.allowExternal, InPlace: o.inPlace,
		HTTP: http, ProbeBinary: o.probeBinary, Progress: progress,
		Target: target, InitSwarm: o.initSwarm, Profiles: o.profiles, AllowSkip: o.allowSkip,
		Originals: o.originals, AllowEngineSocket: o.allowSocket, AllowPrivileged: o.allowPriv,
		AllowHostPID: o.allowHostPID, AllowDevices: o.allowDevices,
		Bench: o.bench, BenchTime: o.benchTime, BenchRate: o.benchRate,
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	switch o.format {
	case "json":
		err = rep.WriteJSON(out)
	case "junit":
		err = rep.WriteJUnit(out)
	default:
		err = rep.WriteText(out)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if file != nil {
		if err := file.Commit(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if rep.Failed() {
		return silentExit(ExitVerify)
	}
	return nil
}
