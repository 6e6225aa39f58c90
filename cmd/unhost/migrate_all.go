package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
	"github.com/unhost/unhost/scan"
	"github.com/unhost/unhost/templates"
)

// migratedProject is one project of `migrate --all` that loaded and planned.
type migratedProject struct {
	name string // first file, as shown
	c    *load.Compose
	res  *migrate.Result
	diff string
}

// runMigrateAll finds every Compose project under paths as `unhost scan`
// does and migrates each: the bot's flow. Projects that fail to load are
// reported on stderr and do not stop the others; the exit status is then 1.
// Fragments and templates are not projects: they are skipped with a note.
func runMigrateAll(ctx context.Context, o *migrateOptions, paths []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.stdout == nil {
		o.stdout = os.Stdout
	}
	if o.stderr == nil {
		o.stderr = os.Stderr
	}
	switch o.format {
	case "diff", "json", "markdown":
	default:
		return usageErr(fmt.Errorf("--format %q: want diff, json or markdown", o.format))
	}
	if o.check && o.write {
		return usageErr(errors.New("--check writes nothing: drop --write"))
	}
	if len(o.files) > 0 || o.output != "" || o.projectName != "" || o.projectDir != "" || len(o.profiles) > 0 {
		return usageErr(errors.New("--all finds the projects itself: drop -f, -o, -p, --project-directory and --profile"))
	}
	base, err := o.migrateOptions()
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	projects, err := scan.Discover(paths, wd)
	if err != nil {
		return err
	}
	if !o.noEngine {
		if ei, err := analysis.NewEngineImages(ctx); err == nil {
			defer ei.Close()
			base.Images = ei
		}
	}
	var done []migratedProject
	failed := 0
	usedForce, usedPublish := map[string]bool{}, map[int]bool{}
	for _, p := range projects {
		name := p.Files[0].Show
		if !p.Loadable() {
			what := "a service fragment"
			if p.Files[0].Kind == scan.KindText {
				what = "a template that is not YAML"
			}
			fmt.Fprintf(o.stderr, "%s: skipped: %s, not a Compose project of its own\n", name, what)
			continue
		}
		var files []string
		for _, f := range p.Files {
			files = append(files, f.Abs)
		}
		c, err := load.LoadCompose(ctx, load.ComposeOptions{Files: files, EnvFiles: o.envFiles, Env: o.env, WorkDir: wd})
		if err != nil {
			reportProject(o.stderr, name, err)
			failed++
			continue
		}
		opts := base
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
			reportProject(o.stderr, name, err)
			failed++
			continue
		}
		if err := migrate.Check(ctx, c, res); err != nil {
			reportProject(o.stderr, name, fmt.Errorf("internal error, nothing written: %w", err))
			failed++
			continue
		}
		var diff strings.Builder
		for _, f := range res.Files {
			diff.WriteString(f.Diff(load.DisplayPath(f.Abs, wd)))
		}
		done = append(done, migratedProject{name: name, c: c, res: res, diff: diff.String()})
	}
	for f := range base.Force {
		if !usedForce[f] {
			return usageErr(fmt.Errorf("--force %s: no project has a service %q", f, f))
		}
	}
	for i, pr := range base.Publish {
		if !usedPublish[i] {
			return usageErr(fmt.Errorf("--publish %s:%d: no project has a service %q", pr.Service, pr.Port, pr.Service))
		}
	}
	if o.check {
		changed := false
		for _, d := range done {
			if d.res.Plan.Changed {
				changed = true
				for _, f := range d.res.Files {
					fmt.Fprintf(o.stderr, "%s: would be migrated\n", f.Path)
				}
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d project(s) could not be migrated", failed)
		}
		if changed {
			return silentExit(ExitFindings)
		}
		return nil
	}
	// only projects with something to say: a repository's other stacks
	// would drown the ones that use the host network
	var relevant []migratedProject
	for _, d := range done {
		if d.res.Plan.Changed || hasHostServices(d.res.Plan) {
			relevant = append(relevant, d)
		}
	}
	if err := writeAll(o, relevant); err != nil {
		return err
	}
	if o.write {
		for _, d := range relevant {
			if err := o.writeFiles(d.res.Files, wd); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d project(s) could not be migrated", failed)
	}
	return nil
}

// writeAll prints the projects' diffs, plans or one pull-request body.
func writeAll(o *migrateOptions, projects []migratedProject) error {
	switch o.format {
	case "diff":
		for _, d := range projects {
			if _, err := io.WriteString(o.stdout, d.diff); err != nil {
				return err
			}
		}
	case "json":
		plans := []*plan.Plan{}
		for _, d := range projects {
			plans = append(plans, d.res.Plan)
		}
		b, err := json.MarshalIndent(plans, "", "  ")
		if err != nil {
			return err
		}
		if _, err := o.stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	case "markdown":
		if len(projects) == 0 {
			fmt.Fprintln(o.stderr, "no Compose project uses the host network: no pull-request body")
			return nil
		}
		var data []map[string]any
		for _, d := range projects {
			data = append(data, map[string]any{"Plan": d.res.Plan, "Diff": d.diff})
		}
		md, err := templates.Render("migrate.md.tmpl", map[string]any{"Projects": data})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(o.stdout, md); err != nil {
			return err
		}
	}
	return nil
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
