package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/detect"
	"github.com/unhost/unhost/internal/gctune"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
	"github.com/unhost/unhost/plan"
	"github.com/unhost/unhost/templates"
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
	noEngine       bool

	stdout, stderr io.Writer
	env            []string
}

func newMigrateCmd() *cobra.Command {
	o := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate [flags]",
		Short: "Rewrite host-network Compose files to bridge networks",
		Long: `Rewrite the services of a Compose project that use network_mode: host to
bridge networks: explicit port mappings with the same reach as before,
stack-internal ports left unpublished, localhost references turned into
service names. Prints a unified diff (default), the plan (--format json) or
a pull-request body (--format markdown).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if !o.all && len(args) > 0 {
				return usageErr(fmt.Errorf("migrate takes no arguments (did you mean --all %s?)", strings.Join(args, " ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.stdout, o.stderr, o.env = cmd.OutOrStdout(), cmd.ErrOrStderr(), os.Environ()
			if o.all {
				return runMigrateAll(cmd.Context(), o, args)
			}
			return runMigrate(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "file", "f", nil, "compose file (repeatable; default: COMPOSE_FILE, then compose.yaml and its override)")
	f.StringVar(&o.projectDir, "project-directory", "", "working directory of the project (default: the first file's folder)")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "environment file (repeatable)")
	f.StringVarP(&o.projectName, "project-name", "p", "", "project name")
	f.StringArrayVar(&o.profiles, "profile", nil, "migrate only services of this profile (repeatable); analysis always sees every profile")
	f.StringVar(&o.format, "format", "diff", "output: diff, json (the plan) or markdown (a pull-request body)")
	f.BoolVar(&o.write, "write", false, "edit the files in place (atomically, with a backup beside each)")
	f.StringVarP(&o.output, "output", "o", "", "write the rewritten file to this path (one input file only)")
	f.BoolVar(&o.noBackup, "no-backup", false, "with --write, leave no *.unhost-backup copy")
	f.BoolVar(&o.check, "check", false, "write nothing; exit 3 when migrate would change any file")
	f.StringArrayVar(&o.publish, "publish", nil, "auto (default), all, none, or SERVICE:PORT[/udp] to always publish a port (repeatable)")
	f.StringVar(&o.publishAddress, "publish-address", "", "publish ports that would be open on all interfaces on this address instead")
	f.StringArrayVar(&o.force, "force", nil, "migrate this service even if it seems to need the host network (repeatable)")
	f.StringVar(&o.inventory, "inventory", "", "runtime evidence: an inventory written by `unhost detect`")
	f.StringVar(&o.fromRunning, "from-running", "", "runtime evidence: detect the running project PROJECT first (needs root and the engine)")
	f.StringVar(&o.target, "target", "", "bridge or swarm (default: swarm when the files attach the external host network or use swarm's deploy: settings)")
	f.StringVar(&o.publishMode, "publish-mode", "", "swarm: ingress (default, the routing mesh) or host (keeps client addresses; one task per node)")
	f.StringVar(&o.endpointMode, "endpoint-mode", "", "swarm: write deploy.endpoint_mode vip or dnsrr on migrated services (default: leave as written)")
	f.BoolVar(&o.all, "all", false, "find every Compose project under the PATH arguments (default .) as scan does, and migrate each")
	f.BoolVar(&o.noEngine, "no-engine", false, "do not ask the Docker engine for image metadata")
	return cmd
}

func runMigrate(ctx context.Context, o *migrateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	defer gctune.Raise()()
	switch o.format {
	case "diff", "json", "markdown":
	default:
		return usageErr(fmt.Errorf("--format %q: want diff, json or markdown", o.format))
	}
	if o.check && (o.write || o.output != "") {
		return usageErr(errors.New("--check writes nothing: drop --write and -o"))
	}
	opts, err := o.migrateOptions()
	if err != nil {
		return err
	}
	c, err := load.LoadCompose(ctx, load.ComposeOptions{Files: o.files, ProjectDirectory: o.projectDir,
		EnvFiles: o.envFiles, ProjectName: o.projectName, Env: o.env})
	if err != nil {
		return err
	}
	if o.output != "" && len(c.Files) != 1 {
		return usageErr(errors.New("-o takes one input file; use --write for several"))
	}
	if len(o.profiles) > 0 {
		sel, err := selectProfiles(c, o.profiles)
		if err != nil {
			return usageErr(err)
		}
		opts.Selected = sel
	}
	if o.fromRunning != "" {
		inv, err := detect.Observe(ctx, detect.Options{Projects: []string{o.fromRunning}})
		switch {
		case errors.Is(err, detect.ErrPIDNamespace):
			fmt.Fprintf(o.stderr, "unhost: warning: %v: using static evidence only\n", err)
		case err != nil:
			return fmt.Errorf("--from-running %s: %w", o.fromRunning, err)
		default:
			for _, w := range inv.Warnings {
				fmt.Fprintf(o.stderr, "unhost: warning: %s\n", w)
			}
			opts.Inventory = inv
		}
	}
	if !o.noEngine {
		if ei, err := analysis.NewEngineImages(ctx); err == nil {
			defer ei.Close()
			opts.Images = ei
		}
	}
	opts.WorkDir, _ = os.Getwd()
	res, err := migrate.Migrate(c, opts)
	if err == nil && o.target == "" && res.Plan.Target == plan.TargetSwarm {
		fmt.Fprintln(o.stderr, "unhost: the files look like a swarm stack (the external host network, or swarm's deploy: settings): migrating for docker stack deploy; --target bridge to choose otherwise")
	}
	if err != nil {
		var ue *migrate.UsageError
		if errors.As(err, &ue) {
			return usageErr(err)
		}
		return err
	}
	if err := migrate.Check(ctx, c, res); err != nil {
		return fmt.Errorf("internal error, nothing written: %w", err)
	}
	wd, _ := os.Getwd()
	var diff strings.Builder
	for _, f := range res.Files {
		diff.WriteString(f.Diff(load.DisplayPath(f.Abs, wd)))
	}
	if o.check {
		if res.Plan.Changed {
			for _, f := range res.Files {
				fmt.Fprintf(o.stderr, "%s: would be migrated\n", f.Path)
			}
			return silentExit(ExitFindings)
		}
		return nil
	}
	switch o.format {
	case "diff":
		io.WriteString(o.stdout, diff.String())
	case "json":
		b, err := json.MarshalIndent(res.Plan, "", "  ")
		if err != nil {
			return err
		}
		o.stdout.Write(append(b, '\n'))
	case "markdown":
		md, err := templates.Render("migrate.md.tmpl", map[string]any{
			"Projects": []map[string]any{{"Plan": res.Plan, "Diff": migrate.RedactDiff(diff.String())}}})
		if err != nil {
			return err
		}
		io.WriteString(o.stdout, md)
	}
	if o.output != "" {
		data := c.Files[0].Data
		if len(res.Files) > 0 {
			data = res.Files[0].New
		}
		if err := os.WriteFile(o.output, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.output, err)
		}
	}
	if o.write {
		return o.writeFiles(res.Files, wd)
	}
	return nil
}

func validIP(s string) bool {
	s = strings.Trim(s, "[]")
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r == '.' || r == ':' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return strings.Count(s, ".") == 3 || strings.Contains(s, ":")
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

// migrateOptions turns the flags that apply to every project (target,
// publication, --force, --inventory) into migrate's options; runMigrate
// and runMigrateAll both start from it.
func (o *migrateOptions) migrateOptions() (migrate.Options, error) {
	opts := migrate.Options{Policy: migrate.PolicyAuto, PublishAddress: o.publishAddress,
		Target: plan.Target(o.target), PublishMode: o.publishMode, EndpointMode: o.endpointMode}
	switch plan.Target(o.target) {
	case "", plan.TargetBridge, plan.TargetSwarm:
	default:
		return opts, usageErr(fmt.Errorf("--target %q: want bridge or swarm", o.target))
	}
	switch o.publishMode {
	case "", "ingress", "host":
	default:
		return opts, usageErr(fmt.Errorf("--publish-mode %q: want ingress or host", o.publishMode))
	}
	switch o.endpointMode {
	case "", "vip", "dnsrr":
	default:
		return opts, usageErr(fmt.Errorf("--endpoint-mode %q: want vip or dnsrr", o.endpointMode))
	}
	for _, p := range o.publish {
		switch p {
		case migrate.PolicyAuto, migrate.PolicyAll, migrate.PolicyNone:
			opts.Policy = p
			continue
		}
		pr, err := migrate.ParsePortRef(p)
		if err != nil {
			return opts, usageErr(fmt.Errorf("--publish %w", err))
		}
		opts.Publish = append(opts.Publish, pr)
	}
	if o.publishAddress != "" && !validIP(o.publishAddress) {
		return opts, usageErr(fmt.Errorf("--publish-address %q: not an IP address", o.publishAddress))
	}
	if len(o.force) > 0 {
		opts.Force = map[string]bool{}
		for _, f := range o.force {
			opts.Force[f] = true
		}
	}
	if o.inventory != "" && o.fromRunning != "" {
		return opts, usageErr(errors.New("--inventory and --from-running both give runtime evidence: choose one"))
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

// writeFiles writes rewritten files in place (--write), each atomically and
// with a backup unless --no-backup, and says so on stderr.
func (o *migrateOptions) writeFiles(files []migrate.FileResult, wd string) error {
	for _, f := range files {
		backup, err := writeFileAtomic(f.Abs, f.New, !o.noBackup)
		if err != nil {
			return err
		}
		if backup != "" {
			fmt.Fprintf(o.stderr, "wrote %s (backup: %s)\n", f.Path, load.DisplayPath(backup, wd))
		} else {
			fmt.Fprintf(o.stderr, "wrote %s\n", f.Path)
		}
	}
	return nil
}
