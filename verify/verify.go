// Package verify brings a migrated Compose stack up as a throwaway project
// beside whatever already runs, checks that it works and exposes no more
// than intended, tears it down and reports.
package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/plan"
)

// Options configures a verify run.
type Options struct {
	Files         []string
	ProjectDir    string
	EnvFiles      []string
	PlanFile      string
	Timeout       time.Duration // for the stack to become healthy and listening
	Watch         time.Duration // each container runs this long after its start without restart or exit (CLI default 500ms)
	RefWait       time.Duration // how long a reference may take to connect
	Keep          bool
	WritableBinds bool
	AllowExternal bool
	InPlace       bool
	HTTP          []string // SERVICE:PORT/PATH=STATUS
	ProbeBinary   string   // static unhost binary for the probe image; default: this executable
	// Target is TargetCompose, TargetSwarm, or TargetAuto: a stack (the
	// external host network attached, or deploy: sections) is deployed
	// with docker stack deploy.
	Target string
	// InitSwarm initialises a single-node swarm when the engine is in
	// none, and leaves it afterwards (swarm target only).
	InitSwarm bool
	Progress  io.Writer
	// Profiles to run (--profile); empty: COMPOSE_PROFILES, else the
	// services without a profile only, as docker compose up does.
	Profiles []string
	// AllowSkip: a run with skipped services or checks passes (exit 0)
	// instead of ending INCOMPLETE.
	AllowSkip bool
	// Production safety: services that could act on the engine or the host
	// are refused unless their flag is given (see docs/verify.md).
	AllowEngineSocket bool // binds of a container engine's socket or of /run, /var/run
	AllowPrivileged   bool // privileged: true
	AllowHostPID      bool // pid: host
	AllowDevices      bool // devices:
	// Originals are the files before migration (--original): published
	// ports are compared with them (with the plan's decisions, if any).
	Originals []string
	// Bench measures the cost of leaving host mode after the checks pass
	// (bench.go): path baselines and the stack's published ports beside
	// the original's. BenchTime bounds it (default 60s); BenchRate bounds
	// the requests a second sent to the original (default 50).
	Bench     bool
	BenchTime time.Duration
	BenchRate float64
	// TeardownContext bounds the teardown, which runs after ctx ends too.
	// Nil: the one TeardownContextFrom(ctx) holds, else a fresh context
	// with a two-minute deadline. Cancel it to abandon the teardown (a
	// third signal).
	TeardownContext context.Context
}

// Check names.
const (
	CheckStack    = "stack-up"
	CheckPort     = "published-port"
	CheckRef      = "reference"
	CheckInternal = "internal-port"
	CheckHealth   = "health"
	CheckHTTP     = "http"
	// CheckProbe is a probe that broke (an internal error): a failure.
	CheckProbe = "probe"
)

// Status of a check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
	// Note is reported, not judged: a reference to a host outside the stack.
	Note Status = "note"
	// Incomplete is a run's status when nothing failed but something was
	// skipped: not a pass (exit 4) unless AllowSkip.
	Incomplete Status = "incomplete"
)

// Check is one verified fact.
type Check struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Target  string `json:"target,omitempty"`
	Status  Status `json:"status"`
	Reason  string `json:"reason"`
}

// Report is the outcome of a verify run.
type Report struct {
	Project string        `json:"project"`
	Compose string        `json:"compose"`
	Swarm   bool          `json:"swarm,omitempty"`
	Status  Status        `json:"status"`
	Seconds float64       `json:"seconds"`
	Ports   []PortMapping `json:"ports"`
	Checks  []Check       `json:"checks"`
	// Exposure compares published ports with the original files and the
	// plan; ExposureNote says why it was not checked, when it was not.
	Exposure     []ExposureRow `json:"exposure,omitempty"`
	ExposureNote string        `json:"exposure_note,omitempty"`
	// Skipped lists what did not run (services and checks), for INCOMPLETE.
	Skipped   []string `json:"skipped,omitempty"`
	AllowSkip bool     `json:"allow_skip,omitempty"`
	KeptHint  string   `json:"kept,omitempty"`
	// Teardown says what the teardown left on the engine, if anything,
	// and how to remove it.
	Teardown string `json:"teardown,omitempty"`
	// Bench holds the --bench measurements, BenchEnv how they were taken.
	Bench    []BenchEntry `json:"bench,omitempty"`
	BenchEnv *BenchEnv    `json:"bench_env,omitempty"`
}

// Failed tells whether the run must exit 4: a check failed, or something
// was skipped without AllowSkip.
func (r *Report) Failed() bool {
	return r.Status == Fail || r.Status == Incomplete && !r.AllowSkip
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }

// firstFailure names the first failed check or exposure row, "" when none
// failed: what makes a run fail.
func (r *Report) firstFailure() string {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return fmt.Sprintf("%s %s failed", c.Name, c.Service)
		}
	}
	for _, e := range r.Exposure {
		if e.Status == Fail {
			return fmt.Sprintf("%s %s %d/%s failed", CheckExposure, e.Service, e.Port, e.Protocol)
		}
	}
	return ""
}

func (r *Report) finish(start time.Time) {
	sort.SliceStable(r.Checks, func(i, j int) bool {
		a, b := r.Checks[i], r.Checks[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Target < b.Target
	})
	r.Status = Pass
	if r.firstFailure() != "" {
		r.Status = Fail
	}
	r.Skipped = nil
	for _, c := range r.Checks {
		if c.Status == Skip {
			what := c.Name + " " + c.Service
			if c.Target != "" {
				what += " " + c.Target
			}
			r.Skipped = append(r.Skipped, what)
		}
	}
	if r.Status == Pass && len(r.Skipped) > 0 {
		r.Status = Incomplete
	}
	r.Seconds = time.Since(start).Seconds()
}

func newRunID() string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b)
}

type runner struct {
	opts    Options
	start   time.Time
	cli     *client.Client
	compose *Compose
	runID   string
	name    string
	labels  map[string]string
	image   string // the probe image
	// leaseImage is the lease's image: the lease program's, or the probe
	// image where there is no lease program for the architecture.
	leaseImage string
	prep       *prepared
	stack      *stack
	plan       *plan.Plan
	report     *Report
	// exposure compares published ports with the original files (before
	// the stack starts); exposureNote says why it was not, if it was not.
	exposure     []ExposureRow
	exposureNote string
	// benchSpecs are the HTTP checks (--http and x-unhost): ports known
	// to speak HTTP for the bench.
	benchSpecs []httpSpec
	// filled after up
	containers map[string]container.InspectResponse // service -> first container
	mu         sync.Mutex
	probes     []string            // probe container ids
	sessions   map[string]*session // container id -> probe serving in its namespace
	swarm      *swarmRun           // nil for compose
	docker     *Compose            // the docker CLI, on the run's engine
	lease      *lease
	leaseErr   error // before leaseReady: the lease's image, its creation
	holdErr    error // before leaseHeld: the lease's start
	imageErr   error // before imageReady: the probe image
	bg         sync.WaitGroup
	// leaseReady is closed when the lease container exists (or that
	// failed: leaseErr), leaseHeld when it runs attached (or that failed:
	// holdErr), imageReady when the probe image is loaded (or that
	// failed, or the lease did: imageErr).
	imageReady, leaseReady, leaseHeld chan struct{}
	// teardownStack removes the stack (compose down, docker stack rm);
	// nil until the run may have created one.
	teardownStack func(context.Context)
}

func (r *runner) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "verify: %5.1fs "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
	}
}

// Run verifies the stack. It returns an error only when verification could
// not run (no compose, no engine, unreadable or refused files,
// interrupted); failed checks are in the report. Whatever the outcome, the
// run's objects are torn down before it returns (with TeardownContext), and
// what the teardown could not remove is said: in Report.Teardown, or in
// the error.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	start := time.Now()
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Minute
	}
	if opts.Watch < 0 {
		opts.Watch = 0
	}
	if opts.RefWait <= 0 {
		opts.RefWait = 5 * time.Second
	}
	switch opts.Target {
	case TargetAuto, TargetCompose, TargetSwarm:
	default:
		return nil, fmt.Errorf("unknown target %q: want compose or swarm", opts.Target)
	}
	specs, err := parseHTTPSpecs(opts.HTTP)
	if err != nil {
		return nil, err
	}
	r := &runner{opts: opts, runID: newRunID(), start: start}
	r.name = "unhost-verify-" + r.runID
	r.labels = map[string]string{LabelRun: r.runID, LabelPID: strconv.Itoa(os.Getpid())}
	r.image = "unhost-verify-probe:" + r.runID
	r.leaseImage = "unhost-verify-lease:" + r.runID

	engine, err := ResolveEngine(ctx)
	if err != nil {
		return nil, err
	}
	r.docker = &Compose{Argv: []string{"docker"}, Env: engine.env()}
	// Asking compose its version starts two processes: do it meanwhile.
	composeC := make(chan error, 1)
	go func() {
		defer recoverTo(func(e error) { composeC <- e })
		var err error
		r.compose, err = FindCompose(ctx)
		if err == nil {
			r.compose.Env = engine.env()
		}
		composeC <- err
	}()
	if r.cli, err = engine.Client(ctx); err != nil {
		<-composeC
		return nil, err
	}
	defer r.cli.Close()
	defer r.bg.Wait() // the start-up sweep of earlier runs' leftovers
	probeBin := opts.ProbeBinary
	if probeBin == "" {
		if probeBin, err = os.Executable(); err != nil {
			<-composeC
			return nil, fmt.Errorf("find own executable for the probe: %w", err)
		}
	}
	if err := checkStatic(probeBin); err != nil {
		<-composeC
		return nil, err
	}
	// The run's lease comes first, meanwhile the files load: nothing else
	// of the run is created on the engine before the lease exists. Then
	// compose starts the stack, and the probe image loads once the lease
	// runs: the lease's start and the import would otherwise both compete
	// with compose's own start (BENCHMARKS.md, "verify"). From here
	// on, whatever happens (an error, a refusal, an interrupt, a panic),
	// the teardown runs.
	r.imageReady, r.leaseReady, r.leaseHeld = make(chan struct{}), make(chan struct{}), make(chan struct{})
	r.bg.Add(2)
	go r.begin(ctx, probeBin)
	go r.loadProbe(ctx, probeBin)
	defer func() {
		if left := r.teardown(ctx); left != "" {
			if rep != nil {
				rep.Teardown = left
			}
			if err != nil {
				err = fmt.Errorf("%w; %s", err, left)
			}
		}
	}()
	st, err := loadStack(ctx, loadOptions{Files: opts.Files, ProjectDir: opts.ProjectDir, EnvFiles: opts.EnvFiles, Profiles: opts.Profiles})
	composeErr := <-composeC
	if err != nil {
		return nil, err
	}
	r.stack = st
	p := st.Project
	if err := unmigrated(p, opts.InPlace); err != nil {
		return nil, err
	}
	useSwarm := opts.Target == TargetSwarm || opts.Target == TargetAuto && analysis.IsSwarm(st.Compose)
	if !useSwarm && composeErr != nil {
		return nil, composeErr
	}
	if opts.PlanFile != "" {
		if r.plan, err = plan.Read(opts.PlanFile); err != nil {
			return nil, fmt.Errorf("read plan: %w", err)
		}
	}
	r.exposure, r.exposureNote, err = compareExposure(ctx, opts, st, r.plan)
	if err != nil {
		return nil, err
	}
	r.prep, err = prepare(p, transformOptions{Name: r.name, RunID: r.runID, PID: os.Getpid(),
		WritableBinds: opts.WritableBinds, AllowExternal: opts.AllowExternal, InPlace: opts.InPlace, Swarm: useSwarm,
		AllowEngineSocket: opts.AllowEngineSocket, AllowPrivileged: opts.AllowPrivileged, AllowHostPID: opts.AllowHostPID, AllowDevices: opts.AllowDevices})
	if err != nil {
		return nil, err
	}
	x, err := parseHTTPSpecs(r.prep.HTTP)
	if err != nil {
		return nil, fmt.Errorf("x-unhost: %w", err)
	}
	specs = append(specs, x...)

	// From here on the engine may hold objects of this run: whatever
	// happens below (an error, an interrupt, a panic), tear down.
	func() {
		defer recoverTo(func(e error) { rep, err = nil, e })
		if useSwarm {
			r.swarm = &swarmRun{}
			rep, err = r.runSwarm(ctx, p, specs, probeBin, stackVersion(p.ComposeFiles))
		} else {
			rep, err = r.runCompose(ctx, p, specs, probeBin)
		}
	}()
	if rep != nil {
		rep.AllowSkip = opts.AllowSkip
		for _, n := range st.NotSelected {
			rep.add(Check{Name: CheckStack, Service: n, Status: Note, Reason: "not started: outside the selected profiles (--profile selects more)"})
		}
		rep.finish(start)
	}
	return rep, err
}

// recoverTo turns a panic of the calling goroutine into an error for
// report, so that the deferred teardown still runs and the panic is said.
func recoverTo(report func(error)) {
	if p := recover(); p != nil {
		report(fmt.Errorf("internal error (a bug in unhost, please report it): %v\n%s", p, debug.Stack()))
	}
}

// unmigrated refuses files whose every service is on the host network:
// there is nothing to verify before unhost migrate has run.
func unmigrated(p *types.Project, inPlace bool) error {
	if inPlace || len(p.Services) == 0 {
		return nil
	}
	keys := analysis.ProjectHostNetworkKeys(p)
	for _, s := range p.Services {
		if !analysis.OnHostNetwork(s, keys) {
			return nil
		}
	}
	return errors.New("every service is on the host network; run unhost migrate first, then verify its output (--in-place runs them as they are)")
}

// begin starts the run's lease before the run creates anything else on
// the engine, then removes what runs whose lease is gone left behind.
// leaseReady is closed once the lease exists (or that failed: leaseErr),
// leaseHeld once it runs attached (or that failed: holdErr).
func (r *runner) begin(ctx context.Context, probeBin string) {
	defer r.bg.Done()
	var once, onceHeld sync.Once
	done := func() { once.Do(func() { close(r.leaseReady) }) }
	held := func() { onceHeld.Do(func() { close(r.leaseHeld) }) }
	defer done()
	defer held()
	// A panic is an error of the lease's start until leaseHeld (leaseErr
	// is read once leaseReady is closed and must not change then), a
	// warning of the sweep after.
	sweeping := false
	defer recoverTo(func(e error) {
		if sweeping {
			r.progress("warning: sweep of earlier runs: %v", e)
			return
		}
		r.holdErr = e
	})
	var cmd []string
	if prog := leaseProgramFor(runtime.GOARCH); prog != nil {
		if err := loadImage(ctx, r.cli, r.leaseImage, r.labels, tarFile{"lease", 0o755, prog}); err != nil {
			r.leaseErr = fmt.Errorf("lease image: %w", err)
			return
		}
	} else {
		// No lease program for this architecture: the probe holds it.
		r.leaseImage, cmd = r.image, []string{"probe", "lease"}
		if r.leaseErr = loadProbeImage(ctx, r.cli, probeBin, r.image, r.labels); r.leaseErr != nil {
			return
		}
	}
	l, err := createLease(ctx, r.cli, r.leaseImage, cmd, r.labels)
	if err != nil {
		r.leaseErr = err
		return
	}
	r.mu.Lock()
	r.lease = l
	r.mu.Unlock()
	// Created, the lease already counts as live (leaseStartGrace): the
	// run may create objects while it starts.
	done()
	r.holdErr = l.hold(ctx, r.cli)
	if r.holdErr != nil {
		return
	}
	sweeping = true
	held()
	r.progress("lease holds")
	if left, err := Cleanup(ctx, r.cli, ""); err != nil {
		r.progress("warning: removing leftovers of earlier runs: %v", err)
	} else if len(left) > 0 {
		r.progress("removed %d leftovers of runs whose lease is gone", len(left))
	}
}

// leaseProgramFor is leaseProgram; tests replace it to run the lease from
// the probe image.
var leaseProgramFor = leaseProgram

// loadProbe loads the probe image once the lease runs (unless the lease
// runs from it) and closes imageReady. The first probe is due only once a
// service's container runs, a second or so in.
func (r *runner) loadProbe(ctx context.Context, probeBin string) {
	defer r.bg.Done()
	defer close(r.imageReady)
	defer recoverTo(func(e error) { r.imageErr = e })
	<-r.leaseHeld
	switch {
	case r.leaseErr != nil:
		r.imageErr = fmt.Errorf("probe image not loaded: %w", r.leaseErr)
	case r.holdErr != nil:
		r.imageErr = fmt.Errorf("probe image not loaded: %w", r.holdErr)
	case r.leaseImage != r.image:
		r.imageErr = loadProbeImage(ctx, r.cli, probeBin, r.image, r.labels)
	}
}

// probeImage waits for the probe image: nil once it is loaded.
func (r *runner) probeImage() error {
	<-r.imageReady
	return r.imageErr
}

// runCompose runs the prepared project with docker compose and checks it.
func (r *runner) runCompose(ctx context.Context, p *types.Project, specs []httpSpec, probeBin string) (*Report, error) {
	opts := r.opts
	tmp, err := os.MkdirTemp("", "unhost-verify-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	file, err := writeProject(r.prep.Project, tmp)
	if err != nil {
		return nil, err
	}
	internal, preHeld := r.beginReport(&Report{Project: r.name, Compose: r.compose.String()})
	if len(r.prep.Project.Services) == 0 {
		// Every service is skipped: nothing to start (compose would say
		// "no service selected"); the report says what was skipped.
		r.refChecks(map[string][]task{})
		return r.report, nil
	}
	r.teardownStack = r.composeDown
	if opts.Keep {
		r.report.KeptHint = fmt.Sprintf("--keep: the test stack is still up as project %s; remove it with: docker compose -p %s down -v --remove-orphans (the next unhost verify, or unhost verify --cleanup, removes it too: its lease ends with this process)", r.name, r.name)
	}

	r.progress("loaded; starting %s with %s", r.name, r.compose)
	upCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	upDone := make(chan struct{})
	watched := make(chan struct{})
	probed := r.probedServices(specs)
	go func() {
		defer close(watched)
		defer recoverTo(func(e error) { r.progress("warning: %v", e) })
		r.startSessionsDuringUp(upCtx, probed, r.imageReady, upDone)
	}()
	<-r.leaseReady
	if r.leaseErr != nil {
		close(upDone)
		<-watched
		return nil, r.leaseErr
	}
	var upOut bytes.Buffer
	upErr := r.compose.Run(upCtx, &upOut, &upOut, "-p", r.name, "-f", file, "--project-directory", projectDir(p), "up", "-d", "--wait", "--wait-timeout", strconv.Itoa(int(opts.Timeout.Seconds()+0.5)))
	close(upDone)
	<-watched
	cancel()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("verify interrupted: %w", ctx.Err())
	}
	<-r.leaseHeld
	if r.holdErr != nil {
		return nil, r.holdErr
	}
	if err := r.probeImage(); err != nil {
		return nil, err
	}
	if err := r.collectContainers(ctx); err != nil {
		return nil, err
	}
	if upErr != nil {
		r.stackFailed(ctx, upErr, upOut.String())
		return r.report, nil
	}
	r.progress("stack is up; checking")

	tasks := map[string][]task{}
	r.portChecks(tasks)
	r.refChecks(tasks)
	r.httpChecks(tasks, specs)
	r.runProbes(ctx, tasks, r.start)
	r.progress("probes answered; watching until every container ran %s", opts.Watch)
	r.internalChecks(ctx, internal, preHeld)

	if err := r.watch(ctx); err != nil {
		return nil, err
	}
	r.healthChecks(ctx)
	r.benchSpecs = specs
	r.runBench(ctx)
	return r.report, nil
}

func projectDir(p *types.Project) string {
	if p.WorkingDir != "" {
		return p.WorkingDir
	}
	return "."
}

// TeardownContextFrom returns the teardown context that WithTeardownContext
// stored in ctx, or nil.
func TeardownContextFrom(ctx context.Context) context.Context {
	t, _ := ctx.Value(teardownKey{}).(context.Context)
	return t
}

// WithTeardownContext stores in ctx the context that bounds verify's
// teardown: main's staged signal handler cancels ctx at the first signal
// and the teardown context at the third (see docs/verify.md).
func WithTeardownContext(ctx, teardown context.Context) context.Context {
	return context.WithValue(ctx, teardownKey{}, teardown)
}

type teardownKey struct{}

// teardownBudget bounds a teardown that nobody abandons.
const teardownBudget = 2 * time.Minute

// teardown removes everything of the run: the stack (compose down or
// docker stack rm), the probes, everything labelled with the run id, the
// lease last; with --keep the stack stays. It runs with the teardown
// context, not ctx, which has usually ended. It returns "" when nothing of
// the run remains on the engine (or only the kept stack), else what is
// left and how to remove it.
func (r *runner) teardown(ctx context.Context) string {
	base := r.opts.TeardownContext
	if base == nil {
		base = TeardownContextFrom(ctx)
	}
	if base == nil {
		base = context.WithoutCancel(ctx)
	}
	tctx, cancel := context.WithTimeout(base, teardownBudget)
	defer cancel()
	if r.leaseHeld != nil {
		<-r.leaseHeld // the lease, started before anything else
		<-r.imageReady
	}
	// The lease goes first: what is left of this run is stale from now on,
	// for this teardown as for any other run's sweep.
	r.lease.release()
	keep := r.opts.Keep && r.teardownStack != nil
	if keep {
		r.progress("removing the probes, keeping %s", r.name)
	} else {
		r.progress("tearing down %s", r.name)
	}
	// The probe containers beside the stack's removal: they are not on
	// the stack's networks.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer recoverTo(func(e error) { r.progress("warning: %v", e) })
		r.removeProbes(tctx)
	}()
	if r.teardownStack != nil && !keep {
		func() {
			defer recoverTo(func(e error) { r.progress("warning: %v", e) })
			r.teardownStack(tctx)
		}()
	}
	wg.Wait()
	r.progress("stack and probes removed")
	if keep {
		// The kept stack is left to the next run, or --cleanup.
		if r.lease != nil {
			_ = r.cli.ContainerRemove(tctx, r.lease.id, container.RemoveOptions{Force: true})
		}
		// The lease's image: its own, or the probe image, which the lease
		// held until now.
		if _, err := r.cli.ImageRemove(tctx, r.leaseImage, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			r.progress("warning: remove lease image: %v", err)
		}
		return ""
	}
	// Whatever is left (e.g. after an interrupted up), the lease and the
	// probe image go by label.
	if _, err := Cleanup(tctx, r.cli, r.runID); err != nil {
		r.progress("warning: %v", err)
	}
	if r.swarm != nil {
		r.leaveSwarm(tctx)
	}
	r.progress("labelled objects removed")
	left := r.leftovers(context.WithoutCancel(ctx))
	if left != "" {
		r.progress("%s", left)
		return left
	}
	r.progress("teardown done: nothing of %s remains", r.name)
	return ""
}

// composeDown is the compose stack's own removal.
func (r *runner) composeDown(ctx context.Context) {
	var out bytes.Buffer
	if err := r.compose.Run(ctx, &out, &out, "-p", r.name, "down", "-v", "--remove-orphans", "--timeout", "5"); err != nil {
		r.progress("warning: compose down: %v: %s", err, lastLines(out.String(), 3))
	}
}

// leftovers lists, after teardown, what of the run is still on the engine.
func (r *runner) leftovers(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	left, err := listRun(ctx, r.cli, r.runID)
	if err != nil {
		return fmt.Sprintf("teardown could not check what is left of %s (%v): run unhost verify --cleanup", r.name, err)
	}
	if len(left) == 0 {
		return ""
	}
	var parts []string
	for _, l := range left {
		parts = append(parts, l.Kind+" "+l.Name)
	}
	return fmt.Sprintf("teardown left %s behind: %s; remove it with: unhost verify --cleanup (this run's lease is gone)", r.name, strings.Join(parts, ", "))
}

// removeProbes closes the probe sessions and removes their containers
// and the probe image.
func (r *runner) removeProbes(ctx context.Context) {
	r.mu.Lock()
	for _, s := range r.sessions {
		if s != nil {
			s.close()
		}
	}
	probes := r.probes
	r.mu.Unlock()
	for _, id := range probes {
		_ = r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	}
	if _, err := r.cli.ImageRemove(ctx, r.image, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
		r.progress("warning: remove probe image: %v", err)
	}
}

// collectContainers finds the first container of each running service.
func (r *runner) collectContainers(ctx context.Context) error {
	f := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+r.name))
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list test containers: %w", err)
	}
	sort.Slice(cs, func(i, j int) bool {
		return cs[i].Labels["com.docker.compose.container-number"] < cs[j].Labels["com.docker.compose.container-number"]
	})
	r.containers = map[string]container.InspectResponse{}
	for _, c := range cs {
		svc := c.Labels["com.docker.compose.service"]
		if _, ok := r.containers[svc]; ok || svc == "" {
			continue
		}
		in, err := r.cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", svc, err)
		}
		r.containers[svc] = in
	}
	return nil
}

// stackFailed reports, per service, why the stack did not come up.
func (r *runner) stackFailed(ctx context.Context, err error, out string) {
	var names []string
	for name := range r.prep.Project.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	found := false
	for _, svc := range names {
		c, ok := r.containers[svc]
		switch {
		case !ok:
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Fail, Reason: "no container was created"})
			found = true
		case c.State == nil:
		case c.State.Status != "running" || c.State.Restarting:
			reason := fmt.Sprintf("%s (exit code %d)", c.State.Status, c.State.ExitCode)
			reason += r.writeHint(ctx, c.ID)
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Fail, Reason: reason})
			found = true
		case c.State.Health != nil && c.State.Health.Status != "healthy":
			reason := "healthcheck " + c.State.Health.Status
			if n := len(c.State.Health.Log); n > 0 {
				reason += ": " + strings.TrimSpace(c.State.Health.Log[n-1].Output)
			}
			reason += r.writeHint(ctx, c.ID)
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Fail, Reason: reason})
			found = true
		default:
			r.report.add(Check{Name: CheckStack, Service: svc, Status: Pass, Reason: "running"})
		}
	}
	if !found {
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("not up and healthy within %s", r.opts.Timeout)
		}
		r.report.add(Check{Name: CheckStack, Service: "*", Status: Fail, Reason: fmt.Sprintf("%s: %s", msg, lastLines(out, 3))})
	}
}

// writeHint explains a failure caused by read-only binds, from the logs.
func (r *runner) writeHint(ctx context.Context, id string) string {
	logs, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "50"})
	if err != nil {
		return ""
	}
	defer logs.Close()
	var buf bytes.Buffer
	_, _ = stdcopy.StdCopy(&buf, &buf, logs)
	text := buf.String()
	if strings.Contains(strings.ToLower(text), "read-only file system") {
		return ": it cannot write to a bind mount, which verify mounts read-only so that production data is never written (--writable-binds opts out)"
	}
	if l := lastLines(text, 1); l != "" {
		return ": last log line: " + l
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

// lastStart is when the last container of the stack started.
func (r *runner) lastStart() time.Time {
	var last time.Time
	for _, c := range r.containers {
		if c.State == nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && t.After(last) {
			last = t
		}
	}
	return last
}

// healthChecks: every container still running, healthy where it has a
// healthcheck, never restarted, for at least the watch window.
func (r *runner) healthChecks(ctx context.Context) {
	for svc, c := range r.containers {
		in, err := r.cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Fail, Reason: fmt.Sprintf("container gone: %v", err)})
			continue
		}
		st := in.State
		up := "?"
		if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil {
			up = time.Since(t).Round(100 * time.Millisecond).String()
		}
		switch {
		case r.swarm != nil && r.swarm.failures[svc] != "":
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Fail, Reason: fmt.Sprintf("a task of %s failed and swarm replaced it: %s", svc, r.swarm.failures[svc])})
		case st.Status != "running":
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Fail, Reason: fmt.Sprintf("%s (exit code %d) after the stack came up%s", st.Status, st.ExitCode, r.writeHint(ctx, c.ID))})
		case in.RestartCount > 0 || st.StartedAt != c.State.StartedAt:
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Fail, Reason: fmt.Sprintf("restarted %d times since it was created%s", in.RestartCount, r.writeHint(ctx, c.ID))})
		case st.Health != nil && st.Health.Status != "healthy":
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Fail, Reason: "healthcheck " + st.Health.Status})
		case st.Health != nil:
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Pass, Reason: fmt.Sprintf("healthy, running %s without restart", up)})
		default:
			r.report.add(Check{Name: CheckHealth, Service: svc, Status: Pass, Reason: fmt.Sprintf("running %s without restart (no healthcheck)", up)})
		}
	}
}

// task is a probe task and what to report from its result.
type task struct {
	ProbeTask
	wait   time.Duration
	report func(ProbeResult)
}

func (r *runner) portChecks(tasks map[string][]task) {
	for _, m := range r.prep.Ports {
		c, ok := r.containers[m.Service]
		if !ok {
			continue
		}
		target := fmt.Sprintf("%d/%s", m.Target, m.Protocol)
		if m.Real != "" {
			target = fmt.Sprintf("%s -> %s (test %s)", m.Real, target, m.Test)
		}
		m := m
		bindings := c.NetworkSettings.Ports[containerPort(m.Target, m.Protocol)]
		var hostPorts []string
		for _, b := range bindings {
			hostPorts = append(hostPorts, b.HostPort)
		}
		// Docker lists a port once per address family (0.0.0.0 and ::).
		sort.Strings(hostPorts)
		hostPorts = slices.Compact(hostPorts)
		if len(bindings) == 0 || m.Test != "" && !contains(hostPorts, m.Test) {
			r.report.add(Check{Name: CheckPort, Service: m.Service, Target: target, Status: Fail,
				Reason: fmt.Sprintf("%d/%s is not in Docker's port table for %s (published: %s)", m.Target, m.Protocol, m.Service, orNone(hostPorts))})
			continue
		}
		t := task{ProbeTask: ProbeTask{Kind: "listening", Addr: fmt.Sprintf("%d/%s", m.Target, m.Protocol)}, wait: r.opts.Timeout}
		svc := m.Service
		t.report = func(res ProbeResult) {
			if !res.OK {
				r.report.add(Check{Name: CheckPort, Service: svc, Target: target, Status: Fail,
					Reason: fmt.Sprintf("published on host port %s, but inside %s's network namespace: %s", strings.Join(hostPorts, ","), svc, res.Detail)})
				return
			}
			if m.Protocol != "udp" {
				r.report.add(Check{Name: CheckPort, Service: svc, Target: target, Status: Pass, Reason: fmt.Sprintf("published on host port %s; %s inside %s's namespace", strings.Join(hostPorts, ","), res.Detail, svc)})
			}
		}
		tasks[svc] = append(tasks[svc], t)
		if m.Protocol == "udp" {
			// Does the service answer a datagram? If it does inside its
			// namespace, it must also answer through the published port.
			u := task{ProbeTask: ProbeTask{Kind: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", m.Target)}, wait: time.Second}
			hostIP := m.HostIP
			if hostIP == "" || hostIP == "0.0.0.0" || hostIP == "::" {
				hostIP = "127.0.0.1"
			}
			hostPort := hostPorts[0]
			u.report = func(res ProbeResult) {
				if !res.OK {
					r.report.add(Check{Name: CheckPort, Service: svc, Target: target, Status: Pass,
						Reason: fmt.Sprintf("bound inside %s's namespace; it does not answer a probe datagram (%s), so the published path cannot be tested further", svc, res.Detail)})
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				host := Probe(ctx, ProbeTask{Kind: "udp", Addr: net.JoinHostPort(hostIP, hostPort)})
				if !host.OK {
					r.report.add(Check{Name: CheckPort, Service: svc, Target: target, Status: Fail,
						Reason: fmt.Sprintf("%s answers datagrams inside its namespace, but not through the published port %s: %s", svc, net.JoinHostPort(hostIP, hostPort), host.Detail)})
					return
				}
				r.report.add(Check{Name: CheckPort, Service: svc, Target: target, Status: Pass,
					Reason: fmt.Sprintf("bound inside %s's namespace and answers datagrams through %s", svc, net.JoinHostPort(hostIP, hostPort))})
			}
			tasks[svc] = append(tasks[svc], u)
		}
	}
}

func containerPort(port uint32, proto string) nat.Port {
	return nat.Port(fmt.Sprintf("%d/%s", port, proto))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ",")
}

// beginReport starts the run's report (the real and test ports, the services
// skipped) and returns the stack-internal ports with those that a process
// outside the test stack already holds on the host's loopback (the old
// host-network deployment may): the internal-port check must not blame the
// test stack for them.
func (r *runner) beginReport(rep *Report) ([]internalPort, map[int]bool) {
	rep.Ports = r.prep.Ports
	rep.Exposure, rep.ExposureNote = r.exposure, r.exposureNote
	if rep.Ports == nil {
		rep.Ports = []PortMapping{}
	}
	r.report = rep
	for _, s := range r.prep.Skipped {
		r.report.add(Check{Name: CheckStack, Service: s.Service, Status: Skip, Reason: s.Reason})
	}
	for _, name := range sortedKeys(r.prep.Notes) {
		r.report.add(Check{Name: CheckStack, Service: name, Status: Note, Reason: "changed for the test run: " + r.prep.Notes[name]})
	}
	internal := r.internalPorts()
	preHeld := map[int]bool{}
	for _, ip := range internal {
		if ip.Proto == "tcp" && hostLoopbackAccepts(ip.Port) {
			preHeld[ip.Port] = true
		}
	}
	return internal, preHeld
}

// watch waits out the watch window, which runs from each container's start
// so that the time compose (or swarm) took to see it running and the probes
// count towards it. It fails when verify is interrupted meanwhile.
func (r *runner) watch(ctx context.Context) error {
	if wait := time.Until(r.lastStart().Add(r.opts.Watch)); wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("verify interrupted: %w", ctx.Err())
	}
	return nil
}
