package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/diagram"
	"github.com/unhost/unhost/internal/atomicfile"
	"github.com/unhost/unhost/internal/streams"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
	"github.com/unhost/unhost/scan"
	"github.com/unhost/unhost/templates"
	"github.com/unhost/unhost/verify"
)

type migrateOptions struct {
	files          []string
	projectDir     string
	envFiles       []string
	projectName    string
	profiles       []string
	format         string
	write          bool
	output         string
	noBackup       bool
	check          bool
	publish        []string
	publishAddress string
	force          []string
	inventory      string
	fromRunning    string
	target         string
	publishMode    string
	endpointMode   string
	all            bool
	paths          []string // --all: where to look for projects
	noEngine       bool
	maxFileSize    int64
	allowOutside   bool
	benchReport    string         // verify --bench --format json report for the markdown body
	bench          *verify.Report // read from benchReport

	// Set by validate from the flags above.
	policy      string
	publishRefs []migrate.PortRef

	io  *streams.IO
	env []string
	// beforeRename is atomicfile.Options.BeforeRename for --write (tests).
	beforeRename func(path string)
}

// newMigrateCmd returns `unhost migrate`. runF, when not nil, runs instead
// of the migration with the parsed and validated options (tests of flag
// parsing run nothing).
func newMigrateCmd(f *factory, runF func(*migrateOptions) error) *cobra.Command {
	o := &migrateOptions{maxFileSize: load.DefaultMaxFileSize}
	cmd := &cobra.Command{
		Use:   "migrate [flags] | migrate --all [PATH]...",
		Short: "Rewrite host-network Compose files to bridge networks",
		Long: `Rewrite the services of a Compose project that use network_mode: host to
bridge networks: explicit port mappings with the same reach as before,
stack-internal ports left unpublished, localhost references turned into
service names. Prints a unified diff (default), the plan (--format json) or
a pull-request body (--format markdown).

Every run prints the plan's blockers and warnings on stderr, one line each,
whatever the format. Exit status: 0 done, 3 a blocker is left (also with
--write and -o, which still write) or --check would change a file, 1 error,
2 bad usage.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.paths = args
			o.io, o.env = f.io, f.env
			if err := o.validate(); err != nil {
				return usageErr(err)
			}
			if runF != nil {
				return runF(o)
			}
			return runMigrate(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.files, "file", "f", nil, "compose `FILE` (repeatable; default: COMPOSE_FILE, then compose.yaml and its override)")
	fl.StringVar(&o.projectDir, "project-directory", "", "working `FOLDER` of the project (default: the first file's folder)")
	fl.StringArrayVar(&o.envFiles, "env-file", nil, "environment `FILE` (repeatable)")
	fl.StringVarP(&o.projectName, "project-name", "p", "", "project `NAME`")
	fl.StringArrayVar(&o.profiles, "profile", nil, "migrate only services of this `PROFILE` (repeatable); analysis always sees every profile")
	fl.StringVar(&o.format, "format", "diff", "`FORMAT` of the output: diff, json (the plan), markdown (a pull-request body) or mermaid (the stack after the migration, as a flowchart)")
	fl.BoolVar(&o.write, "write", false, "edit the files in place (all or none, atomically, with a backup beside each)")
	fl.StringVarP(&o.output, "output", "o", "", "write the rewritten file to `FILE`, with the input's mode (one input file only)")
	fl.BoolVar(&o.noBackup, "no-backup", false, "with --write, leave no *.unhost-backup copy")
	fl.BoolVar(&o.check, "check", false, "write nothing; exit 3 when migrate would change any file or a blocker is left")
	fl.StringArrayVar(&o.publish, "publish", nil, "`SPEC`: auto (default), all, none, or SERVICE:PORT[/udp] to always publish a port (repeatable)")
	fl.StringVar(&o.publishAddress, "publish-address", "", "publish ports that would be open on all interfaces on this `IP` instead")
	fl.StringArrayVar(&o.force, "force", nil, "migrate this `SERVICE` even if it seems to need the host network (repeatable)")
	fl.StringVar(&o.inventory, "inventory", "", "runtime evidence: an inventory `FILE` written by unhost detect")
	fl.StringVar(&o.fromRunning, "from-running", "", "runtime evidence: detect the running `PROJECT` first (needs root and the engine)")
	fl.StringVar(&o.target, "target", "", "`TARGET`: bridge or swarm (default: swarm when the files attach the external host network or use swarm's deploy: settings)")
	fl.StringVar(&o.publishMode, "publish-mode", "", "`MODE` for swarm: ingress (default, the routing mesh) or host (keeps client addresses; one task per node)")
	fl.StringVar(&o.endpointMode, "endpoint-mode", "", "`MODE` for swarm: write deploy.endpoint_mode vip or dnsrr on migrated services (default: leave as written)")
	fl.BoolVar(&o.all, "all", false, "find every Compose project under the PATH arguments (default .) as scan does, and migrate each")
	fl.BoolVar(&o.noEngine, "no-engine", false, "do not ask the Docker engine for image metadata")
	addMaxFileSizeFlag(fl, &o.maxFileSize)
	fl.StringVar(&o.benchReport, "bench-report", "", "with --format markdown: add a Performance section from this `FILE`, a report of unhost verify --bench --format json")
	fl.BoolVar(&o.allowOutside, "allow-outside", false, "with --all: read and write files outside the PATH arguments (symlinks, ../, /proc)")
	return cmd
}

// validate checks every flag value, before any file is read, and parses
// what migrate needs parsed. Its errors are usage errors.
func (o *migrateOptions) validate() error {
	switch o.format {
	case "diff", "json", "markdown", "mermaid":
	default:
		return fmt.Errorf("--format %q: want diff, json, markdown or mermaid", o.format)
	}
	switch {
	case o.check && (o.write || o.output != ""):
		return errors.New("--check writes nothing: drop --write and -o")
	case o.write && o.output != "":
		return errors.New("--write and -o exclude each other")
	case o.noBackup && !o.write:
		return errors.New("--no-backup is for --write")
	case o.benchReport != "" && o.format != "markdown":
		return errors.New("--bench-report is for --format markdown")
	}
	if o.all {
		if len(o.files) > 0 || o.output != "" || o.projectName != "" || o.projectDir != "" || len(o.profiles) > 0 || o.fromRunning != "" {
			return errors.New("--all finds the projects itself: drop -f, -o, -p, --project-directory, --profile and --from-running")
		}
	} else {
		if len(o.paths) > 0 {
			return fmt.Errorf("migrate takes no arguments (did you mean --all %s?)", strings.Join(o.paths, " "))
		}
		if o.allowOutside {
			return errors.New("--allow-outside is for --all: migrate -f reads what it is given")
		}
	}
	switch plan.Target(o.target) {
	case "", plan.TargetBridge, plan.TargetSwarm:
	default:
		return fmt.Errorf("--target %q: want bridge or swarm", o.target)
	}
	switch o.publishMode {
	case "", "ingress", "host":
	default:
		return fmt.Errorf("--publish-mode %q: want ingress or host", o.publishMode)
	}
	switch o.endpointMode {
	case "", "vip", "dnsrr":
	default:
		return fmt.Errorf("--endpoint-mode %q: want vip or dnsrr", o.endpointMode)
	}
	if plan.Target(o.target) == plan.TargetBridge && (o.publishMode != "" || o.endpointMode != "") {
		return errors.New("--endpoint-mode and --publish-mode are for --target swarm")
	}
	o.policy, o.publishRefs = migrate.PolicyAuto, nil
	for _, p := range o.publish {
		switch p {
		case migrate.PolicyAuto, migrate.PolicyAll, migrate.PolicyNone:
			o.policy = p
			continue
		}
		pr, err := migrate.ParsePortRef(p)
		if err != nil {
			return fmt.Errorf("--publish %w", err)
		}
		o.publishRefs = append(o.publishRefs, pr)
	}
	if o.publishAddress != "" {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(o.publishAddress, "["), "]"))
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("--publish-address %q: not an IP address", o.publishAddress)
		}
	}
	for _, f := range o.force {
		if f == "" {
			return errors.New("--force: empty service name")
		}
	}
	if o.inventory != "" && o.fromRunning != "" {
		return errors.New("--inventory and --from-running both give runtime evidence: choose one")
	}
	return nil
}

// migrateJob is one project to migrate: the flags' files, or one that
// --all found.
type migrateJob struct {
	name string // first file, as shown
	load load.ComposeOptions
}

// migrated is one project that loaded and planned.
type migrated struct {
	name    string
	c       *load.Compose
	res     *migrate.Result
	diff    string // exact, for standard output and git apply
	workDir string // what the diff's paths are relative to
	inv     *detect.Inventory
}

// diagram draws the stack after the migration as a Mermaid flowchart,
// with the connections the inventory saw, if one was used.
func (d migrated) diagram() string {
	var opts diagram.Options
	if d.inv != nil {
		opts.Window = d.inv.Duration
		for _, e := range d.inv.Edges {
			opts.Edges = append(opts.Edges, diagram.Edge{From: e.From, To: e.To, Port: e.Port, Protocol: e.Protocol, Count: e.Count})
		}
	}
	return diagram.MermaidWith(d.res.Plan, opts)
}

// redactedDiff is the diff for people (a pull-request body): each file is
// redacted whole before it is diffed, so that secrets spanning lines
// (PEM blocks, multi-line commands) are seen.
func (d migrated) redactedDiff() string {
	var b strings.Builder
	for _, f := range d.res.Files {
		b.WriteString(migrate.RedactedDiff(load.DisplayPath(f.Abs, d.workDir), f.Old, f.New))
	}
	return b.String()
}

// runMigrate migrates the project the flags name, or with --all every
// project found under o.paths as `unhost scan` finds them (the bot's
// flow). Both go the same way: load, plan, re-check, report, write. With
// --all, a project that fails to load is reported on stderr and does not
// stop the others (the exit status is then 1); fragments and templates are
// not projects and are skipped with a note.
func runMigrate(ctx context.Context, o *migrateOptions) error {
	base, err := o.baseOptions()
	if err != nil {
		return err
	}
	if o.benchReport != "" {
		// Before the work: a bad report should not cost a migration.
		if o.bench, err = verify.ReadReport(o.benchReport); err != nil {
			return fmt.Errorf("--bench-report: %w", err)
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	jobs, err := o.jobs(wd)
	if err != nil {
		return err
	}
	if o.fromRunning != "" {
		inv, err := detect.Observe(ctx, detect.Options{Projects: []string{o.fromRunning}})
		switch {
		case errors.Is(err, detect.ErrPIDNamespace):
			fmt.Fprintf(o.io.ErrOut, "unhost: warning: %v: using static evidence only\n", err)
		case err != nil:
			return fmt.Errorf("--from-running %s: %w", o.fromRunning, err)
		default:
			for _, w := range inv.Warnings {
				fmt.Fprintf(o.io.ErrOut, "unhost: warning: %s\n", w)
			}
			base.Inventory = inv
		}
	}
	if !o.noEngine {
		if ei, err := analysis.NewEngineImages(ctx); err == nil {
			defer ei.Close()
			base.Images = ei
		}
	}
	base.WorkDir = wd
	var done []migrated
	failed := 0
	usedForce, usedPublish := map[string]bool{}, map[int]bool{}
	for _, j := range jobs {
		m, err := o.migrateOne(ctx, j, base, usedForce, usedPublish)
		if err != nil {
			if !o.all {
				return err
			}
			reportProject(o.io.ErrOut, j.name, err)
			failed++
			continue
		}
		done = append(done, m)
	}
	for f := range base.Force {
		if !usedForce[f] {
			return usageErr(fmt.Errorf("--force %s: no service %q in the project(s)", f, f))
		}
	}
	for i, pr := range base.Publish {
		if !usedPublish[i] {
			return usageErr(fmt.Errorf("--publish %s:%d: no service %q in the project(s)", pr.Service, pr.Port, pr.Service))
		}
	}
	blocked := reportFindings(o.io.ErrOut, done, len(jobs) > 1)
	result := func() error {
		if failed > 0 {
			return fmt.Errorf("%d project(s) could not be migrated", failed)
		}
		if blocked {
			return silentExit(ExitFindings)
		}
		return nil
	}
	if o.check {
		changed := false
		for _, d := range done {
			if findings, _ := migrate.CheckStatus(d.res.Plan, true); findings {
				changed = true
			}
			for _, f := range d.res.Files {
				fmt.Fprintf(o.io.ErrOut, "%s: would be migrated\n", f.Path)
			}
		}
		if err := result(); err != nil {
			return err
		}
		if changed {
			return silentExit(ExitFindings)
		}
		return nil
	}
	shown := done
	if o.all {
		// only projects with something to say: a repository's other
		// stacks would drown the ones that use the host network
		shown = nil
		for _, d := range done {
			if d.res.Plan.Changed || hasHostServices(d.res.Plan) {
				shown = append(shown, d)
			}
		}
	}
	// write first, so that the plan printed names the backups written
	if o.output != "" {
		if err := o.writeOutput(done[0]); err != nil {
			return err
		}
	}
	if o.write {
		backups, err := o.writeFiles(shown, wd)
		if err != nil {
			return err
		}
		for _, d := range shown {
			named := map[string]string{}
			for _, f := range d.res.Files {
				if b, ok := backups[f.Abs]; ok {
					named[filepath.ToSlash(f.Path)] = load.DisplayPath(b, wd)
				}
			}
			migrate.NameBackups(d.res.Plan, named)
		}
	}
	if err := o.print(shown); err != nil {
		return err
	}
	return result()
}

// baseOptions turns the flags that apply to every project into migrate's
// options. It reads --inventory.
func (o *migrateOptions) baseOptions() (migrate.Options, error) {
	opts := migrate.Options{Policy: o.policy, Publish: o.publishRefs, PublishAddress: o.publishAddress,
		Target: plan.Target(o.target), PublishMode: o.publishMode, EndpointMode: o.endpointMode}
	if len(o.force) > 0 {
		opts.Force = map[string]bool{}
		for _, f := range o.force {
			opts.Force[f] = true
		}
	}
	if o.inventory != "" {
		inv, err := detect.ReadInventory(o.inventory)
		if err != nil {
			return opts, err
		}
		opts.Inventory = inv
	}
	return opts, nil
}

// jobs lists the projects to migrate: the flags' one, or those --all finds.
func (o *migrateOptions) jobs(wd string) ([]migrateJob, error) {
	if !o.all {
		return []migrateJob{{load: load.ComposeOptions{Files: o.files, ProjectDirectory: o.projectDir,
			EnvFiles: o.envFiles, ProjectName: o.projectName, Env: o.env, MaxFileSize: o.maxFileSize}}}, nil
	}
	projects, err := scan.Discover(o.paths, wd)
	if err != nil {
		return nil, err
	}
	roots, err := searchRoots(o.paths)
	if err != nil {
		return nil, err
	}
	var jobs []migrateJob
	for _, p := range projects {
		name := p.Files[0].Show
		if !p.Loadable() {
			what := "a service fragment"
			if p.Files[0].Kind == scan.KindText {
				what = "a template that is not YAML"
			}
			fmt.Fprintf(o.io.ErrOut, "%s: skipped: %s, not a Compose project of its own\n", name, what)
			continue
		}
		var files []string
		for _, f := range p.Files {
			files = append(files, f.Abs)
		}
		jobs = append(jobs, migrateJob{name: name, load: load.ComposeOptions{Files: files, EnvFiles: o.envFiles,
			Env: o.env, WorkDir: wd, MaxFileSize: o.maxFileSize, Root: rootOf(files[0], roots), AllowOutside: o.allowOutside}})
	}
	return jobs, nil
}

// searchRoots are the absolute folders --all searches: each PATH, or the
// folder of a PATH that is a file.
func searchRoots(paths []string) ([]string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var roots []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
			abs = filepath.Dir(abs)
		}
		roots = append(roots, abs)
	}
	return roots, nil
}

// rootOf returns the longest root that holds file.
func rootOf(file string, roots []string) string {
	best := ""
	for _, r := range roots {
		if rel, err := filepath.Rel(r, file); err == nil && !strings.HasPrefix(rel, "..") && len(r) > len(best) {
			best = r
		}
	}
	return best
}

// migrateOne loads, plans and re-checks one project. --force and --publish
// entries apply to the projects that have the service; used records which
// did, so that an entry no project uses is a usage error.
func (o *migrateOptions) migrateOne(ctx context.Context, j migrateJob, base migrate.Options, usedForce map[string]bool, usedPublish map[int]bool) (migrated, error) {
	c, err := load.LoadCompose(ctx, j.load)
	if err != nil {
		return migrated{}, err
	}
	if j.name == "" {
		j.name = c.Files[0].Path
	}
	if o.output != "" && len(c.Files) != 1 {
		return migrated{}, usageErr(errors.New("-o takes one input file; use --write for several"))
	}
	opts := base
	if opts.Inventory == nil {
		// an inventory committed next to the compose files (the bot's
		// evidence: it has no engine)
		path, err := migrate.FindInventory(filepath.Dir(c.Files[0].Abs))
		if err != nil {
			return migrated{}, err
		}
		if path != "" {
			ci, err := migrate.ReadCommittedInventory(path, c)
			if err != nil {
				return migrated{}, err
			}
			opts.Committed = ci
		}
	}
	if len(o.profiles) > 0 {
		sel, err := selectProfiles(c, o.profiles)
		if err != nil {
			return migrated{}, usageErr(err)
		}
		opts.Selected = sel
	}
	opts.Force, opts.Publish = nil, nil
	services := c.Project.AllServices()
	for f := range base.Force {
		if _, ok := services[f]; ok {
			if opts.Force == nil {
				opts.Force = map[string]bool{}
			}
			opts.Force[f], usedForce[f] = true, true
		}
	}
	for i, pr := range base.Publish {
		if _, ok := services[pr.Service]; ok {
			opts.Publish = append(opts.Publish, pr)
			usedPublish[i] = true
		}
	}
	res, err := migrate.Migrate(c, opts)
	if err != nil {
		var ue *migrate.UsageError
		if errors.As(err, &ue) {
			return migrated{}, usageErr(err)
		}
		return migrated{}, err
	}
	if o.target == "" && res.Plan.Target == plan.TargetSwarm {
		fmt.Fprintf(o.io.ErrOut, "unhost: %s: the files look like a swarm stack (the external host network, or swarm's deploy: settings): migrating for docker stack deploy; --target bridge to choose otherwise\n", j.name)
	}
	if err := migrate.Check(ctx, c, res); err != nil {
		return migrated{}, fmt.Errorf("internal error, nothing written: %w", err)
	}
	var diff strings.Builder
	for _, f := range res.Files {
		diff.WriteString(f.Diff(load.DisplayPath(f.Abs, opts.WorkDir)))
	}
	inv := opts.Inventory
	if inv == nil && opts.Committed != nil && opts.Committed.Stale == "" {
		inv = opts.Committed.Inventory
	}
	return migrated{name: j.name, c: c, res: res, diff: diff.String(), workDir: opts.WorkDir, inv: inv}, nil
}

// reportFindings prints every blocker and warning of the plans on w, one
// line each, naming the project when there are several. It returns whether
// any blocker is left.
func reportFindings(w io.Writer, done []migrated, several bool) (blocked bool) {
	for _, d := range done {
		prefix := "unhost: "
		if several {
			prefix += d.name + ": "
		}
		for _, b := range d.res.Plan.Blockers {
			fmt.Fprintln(w, prefix+oneLine("blocker: "+stepText(b)))
		}
		for _, s := range d.res.Plan.Warnings {
			fmt.Fprintln(w, prefix+oneLine("warning: "+s))
		}
		// kept for a stated reason: a note, which sets no exit status
		for _, k := range migrate.Kept(d.res.Plan) {
			fmt.Fprintln(w, prefix+oneLine("note: "+k))
		}
		if findings, _ := migrate.CheckStatus(d.res.Plan, false); findings {
			blocked = true
		}
	}
	return blocked
}

// stepText is a plan step on one line: where, service, what, hint.
func stepText(s plan.Step) string {
	var b strings.Builder
	if s.Where != "" {
		b.WriteString(s.Where + ": ")
	}
	if s.Service != "" && !strings.HasPrefix(s.What, s.Service+" ") {
		b.WriteString(s.Service + ": ")
	}
	b.WriteString(s.What)
	if s.Hint != "" {
		b.WriteString(" (" + s.Hint + ")")
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// print writes the diffs, the plans or one pull-request body to stdout:
// one plan object for one project, an array with --all.
func (o *migrateOptions) print(done []migrated) error {
	out := o.io.Out
	switch o.format {
	case "diff":
		for _, d := range done {
			if _, err := io.WriteString(out, d.diff); err != nil {
				return err
			}
		}
	case "json":
		var v any
		if o.all {
			plans := []*plan.Plan{}
			for _, d := range done {
				plans = append(plans, d.res.Plan)
			}
			v = plans
		} else {
			v = done[0].res.Plan
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
	case "mermaid":
		for _, d := range done {
			if _, err := io.WriteString(out, d.diagram()); err != nil {
				return err
			}
		}
	case "markdown":
		if len(done) == 0 {
			fmt.Fprintln(o.io.ErrOut, "no Compose project uses the host network: no pull-request body")
			return nil
		}
		var data []map[string]any
		for _, d := range done {
			data = append(data, map[string]any{"Plan": d.res.Plan, "Diff": d.redactedDiff(), "Diagram": d.diagram()})
		}
		md, err := templates.Render("migrate.md.tmpl", map[string]any{"Projects": data, "Bench": benchSection(o.bench)})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(out, md); err != nil {
			return err
		}
	}
	return nil
}

// writeOutput writes the one input file, rewritten, to -o with the input's
// mode: a 0640 file that holds a secret stays 0640. When -o names the input
// itself it is replaced as --write replaces it, without a backup.
func (o *migrateOptions) writeOutput(d migrated) error {
	in := d.c.Files[0]
	data := in.Data
	if len(d.res.Files) > 0 {
		data = d.res.Files[0].New
	}
	fi, err := os.Stat(in.Abs)
	if err != nil {
		return fmt.Errorf("write %s: %w", o.output, err)
	}
	if ofi, err := os.Stat(o.output); err == nil && os.SameFile(fi, ofi) {
		_, err := atomicfile.Replace([]atomicfile.Change{{Path: o.output, Old: in.Data, New: data}},
			atomicfile.Options{BeforeRename: o.beforeRename})
		return err
	}
	return atomicfile.WriteFile(o.output, data, fi.Mode().Perm())
}

// writeFiles replaces the rewritten files of every project in place
// (--write), all or none: a file changed since it was read, or any failure,
// leaves every file as it was. It says what it wrote on stderr, and
// returns the backup written for each file (by absolute path).
func (o *migrateOptions) writeFiles(done []migrated, wd string) (map[string]string, error) {
	var changes []atomicfile.Change
	for _, d := range done {
		for _, f := range d.res.Files {
			changes = append(changes, atomicfile.Change{Path: f.Abs, Old: f.Old, New: f.New})
		}
	}
	if len(changes) == 0 {
		return nil, nil
	}
	opts := atomicfile.Options{Backup: !o.noBackup, BeforeRename: o.beforeRename}
	if o.all && !o.allowOutside {
		// the bot's --write never follows a symlink out of what it searched
		roots, err := searchRoots(o.paths)
		if err != nil {
			return nil, err
		}
		opts.Roots = roots
	}
	written, err := atomicfile.Replace(changes, opts)
	if err != nil {
		return nil, err
	}
	backups := map[string]string{}
	for _, w := range written {
		if w.Backup != "" {
			backups[w.Path] = w.Backup
			fmt.Fprintf(o.io.ErrOut, "wrote %s (backup: %s)\n", load.DisplayPath(w.Path, wd), load.DisplayPath(w.Backup, wd))
		} else {
			fmt.Fprintf(o.io.ErrOut, "wrote %s\n", load.DisplayPath(w.Path, wd))
		}
	}
	return backups, nil
}

// selectProfiles returns the services that `docker compose --profile`
// would run: those without profiles and those in a named one.
func selectProfiles(c *load.Compose, profiles []string) (map[string]bool, error) {
	known := map[string]bool{}
	sel := map[string]bool{}
	for name, s := range c.Project.AllServices() {
		for _, p := range s.Profiles {
			known[p] = true
		}
		if len(s.Profiles) == 0 {
			sel[name] = true
		}
		for _, p := range s.Profiles {
			for _, want := range profiles {
				if p == want || want == "*" {
					sel[name] = true
				}
			}
		}
	}
	for _, p := range profiles {
		if p != "*" && !known[p] {
			var names []string
			for k := range known {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("--profile %s: no service has this profile (known: %s)", p, strings.Join(names, ", "))
		}
	}
	return sel, nil
}

func hasHostServices(p *plan.Plan) bool {
	for _, s := range p.Services {
		if s.Action != plan.ActionUnchanged {
			return true
		}
	}
	return false
}

// reportProject prints a project's error on one line, naming the project
// unless the error already starts with it.
func reportProject(w io.Writer, name string, err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if !strings.HasPrefix(msg, name) {
		msg = name + ": " + msg
	}
	fmt.Fprintln(w, "unhost: "+msg)
}
