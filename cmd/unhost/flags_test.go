package main

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/internal/streams"
	"github.com/unhost/unhost/load"
	"github.com/unhost/unhost/migrate"
)

// parse runs the command line on a root holding the command mk returns,
// whose runF records that it ran. It returns the exit code, stdout and
// stderr.
func parse(t *testing.T, mk func(f *factory, ran *bool) *cobra.Command, args ...string) (code int, ran bool, out, errOut string) {
	t.Helper()
	s, o, e := streams.Test()
	f := &factory{io: s}
	code = execute(context.Background(), rootWith(mk(f, &ran)), args, f)
	return code, ran, o.String(), e.String()
}

func migrateSeam(got **migrateOptions) func(*factory, *bool) *cobra.Command {
	return func(f *factory, ran *bool) *cobra.Command {
		return newMigrateCmd(f, func(o *migrateOptions) error { *ran, *got = true, o; return nil })
	}
}

func TestMigrateFlags(t *testing.T) {
	cases := []struct {
		args  []string
		check func(o *migrateOptions) bool
	}{
		{nil, func(o *migrateOptions) bool {
			return o.format == "diff" && o.maxFileSize == load.DefaultMaxFileSize && o.policy == migrate.PolicyAuto && !o.all
		}},
		{[]string{"--publish", "none", "--publish", "web:80/udp", "--publish", "db:5432"}, func(o *migrateOptions) bool {
			return o.policy == migrate.PolicyNone && reflect.DeepEqual(o.publishRefs,
				[]migrate.PortRef{{Service: "web", Port: 80, Protocol: "udp"}, {Service: "db", Port: 5432, Protocol: "tcp"}})
		}},
		{[]string{"--max-file-size", "512KiB"}, func(o *migrateOptions) bool { return o.maxFileSize == 512<<10 }},
		{[]string{"--max-file-size", "1m"}, func(o *migrateOptions) bool { return o.maxFileSize == 1<<20 }},
		{[]string{"--max-file-size=1000"}, func(o *migrateOptions) bool { return o.maxFileSize == 1000 }},
		{[]string{"--all", "repo", "other"}, func(o *migrateOptions) bool {
			return o.all && reflect.DeepEqual(o.paths, []string{"repo", "other"})
		}},
		{[]string{"--all", "--allow-outside", "--write", "--no-backup"}, func(o *migrateOptions) bool {
			return o.all && o.allowOutside && o.write && o.noBackup
		}},
		{[]string{"--publish-address", "10.0.0.5"}, func(o *migrateOptions) bool { return o.publishAddress == "10.0.0.5" }},
		{[]string{"--publish-address", "[::1]"}, func(o *migrateOptions) bool { return o.publishAddress == "[::1]" }},
		{[]string{"--target", "swarm", "--publish-mode", "host", "--endpoint-mode", "dnsrr"}, func(o *migrateOptions) bool {
			return o.target == "swarm" && o.publishMode == "host" && o.endpointMode == "dnsrr"
		}},
		{[]string{"-f", "a.yaml", "-f", "b.yaml", "-p", "shop", "--profile", "x", "--force", "web", "-o", "out.yaml", "--format", "json"},
			func(o *migrateOptions) bool {
				return reflect.DeepEqual(o.files, []string{"a.yaml", "b.yaml"}) && o.projectName == "shop" &&
					reflect.DeepEqual(o.profiles, []string{"x"}) && reflect.DeepEqual(o.force, []string{"web"}) &&
					o.output == "out.yaml" && o.format == "json"
			}},
		{[]string{"--inventory", "inv.json", "--check"}, func(o *migrateOptions) bool { return o.inventory == "inv.json" && o.check }},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var got *migrateOptions
			code, ran, _, errOut := parse(t, migrateSeam(&got), append([]string{"migrate"}, tc.args...)...)
			if code != ExitOK || !ran {
				t.Fatalf("exit %d, ran %v: %s", code, ran, errOut)
			}
			if !tc.check(got) {
				t.Errorf("options %+v", *got)
			}
		})
	}
}

// Every bad flag value is a usage error found before the command runs,
// with one line on stderr that names the flag.
func TestMigrateBadFlagValues(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--publish-address", "dead.beef.cafe.bad"}, "--publish-address"},
		{[]string{"--publish-address", "999.1.1.1"}, "--publish-address"},
		{[]string{"--publish-address", "10.0.0"}, "--publish-address"},
		{[]string{"--publish-address", "fe80::1%eth0"}, "--publish-address"},
		{[]string{"--publish", "web"}, "--publish"},
		{[]string{"--publish", "web:0"}, "--publish"},
		{[]string{"--publish", "web:99999"}, "--publish"},
		{[]string{"--publish", "web:80/sctp"}, "--publish"},
		{[]string{"--publish", ":80"}, "--publish"},
		{[]string{"--publish", "some"}, "--publish"},
		{[]string{"--target", "k8s"}, "--target"},
		{[]string{"--target", "bridge", "--publish-mode", "host"}, "--publish-mode"},
		{[]string{"--publish-mode", "mesh"}, "--publish-mode"},
		{[]string{"--endpoint-mode", "rr"}, "--endpoint-mode"},
		{[]string{"--format", "yaml"}, "--format"},
		{[]string{"--max-file-size", "0"}, "--max-file-size"},
		{[]string{"--max-file-size", "-1"}, "--max-file-size"},
		{[]string{"--max-file-size", "8XB"}, "--max-file-size"},
		{[]string{"--max-file-size", "huge"}, "--max-file-size"},
		{[]string{"--max-file-size", "99999999999G"}, "--max-file-size"},
		{[]string{"--check", "--write"}, "--check"},
		{[]string{"--check", "-o", "x.yaml"}, "--check"},
		{[]string{"--write", "-o", "x.yaml"}, "-o"},
		{[]string{"--no-backup"}, "--no-backup"},
		{[]string{"--all", "-f", "x.yaml"}, "--all"},
		{[]string{"--all", "--from-running", "shop"}, "--all"},
		{[]string{"--allow-outside"}, "--allow-outside"},
		{[]string{"stray"}, "--all stray"},
		{[]string{"--inventory", "inv.json", "--from-running", "shop"}, "--inventory"},
		{[]string{"--force", ""}, "--force"},
		{[]string{"--bench-report", "r.json"}, "--bench-report"},
		{[]string{"--bogus"}, "--bogus"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var got *migrateOptions
			code, ran, out, errOut := parse(t, migrateSeam(&got), append([]string{"migrate"}, tc.args...)...)
			if code != ExitUsage || ran {
				t.Errorf("exit %d, ran %v; want exit 2 before running", code, ran)
			}
			if out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stdout %q, stderr %q: want one line naming %s", out, errOut, tc.want)
			}
		})
	}
}

// The real command: a bad flag value is reported as such even when the
// files named are missing, so it was checked before any file was read.
func TestBadFlagsBeforeReading(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"migrate", "--no-engine", "-f", "missing.yaml", "--publish-address", "dead.beef.cafe.bad"},
		{"migrate", "--no-engine", "-f", "missing.yaml", "--inventory", "missing.json", "--publish", "web:99999"},
		{"migrate", "--no-engine", "-f", "missing.yaml", "--max-file-size", "0"},
		{"migrate", "--no-engine", "--all", "missing-dir", "--target", "k8s"},
		{"scan", "missing-dir", "--max-file-size", "1x"},
		{"detect", "-p", "x", "-o", "/no/such/dir/inv.json", "--format", "yaml"},
		{"verify", "-f", "missing.yaml", "--bench-time", "10s"},
		{"verify", "-f", "missing.yaml", "--bench", "--bench-rate", "0"},
		{"verify", "-f", "missing.yaml", "--bench", "--bench-time", "-1s"},
	} {
		_, errOut, code := runIn(t, dir, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want 2: %s", args, code, errOut)
		}
	}
}

func TestUnknownFlagSuggestion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--fromat", "json"}, "did you mean --format?"},
		{[]string{"migrate", "--inventroy", "x"}, "did you mean --inventory?"},
		{[]string{"migrate", "--publish-addr", "x"}, "did you mean --publish-address?"},
		{[]string{"scan", "--baselin", "x"}, "did you mean --baseline?"},
		{[]string{"detect", "--sample", "3"}, "did you mean --samples?"},
	} {
		_, errOut, code := runIn(t, t.TempDir(), tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	_, errOut, _ := runIn(t, t.TempDir(), "migrate", "--zzzzzzzz")
	if strings.Contains(errOut, "did you mean") {
		t.Errorf("suggestion for a flag close to none: %q", errOut)
	}
}

// cobra takes a back-quoted word in a flag's usage for its value name.
func TestHelpValueNames(t *testing.T) {
	out, _, code := runIn(t, t.TempDir(), "migrate", "--help")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--inventory FILE", "--max-file-size SIZE", "-o, --output FILE", "--publish-address IP", "--format FORMAT"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if strings.Contains(out, "unhost detect ") && strings.Contains(out, "--inventory unhost") {
		t.Error("help shows a command as the value name of --inventory")
	}
}

func TestDetectFlags(t *testing.T) {
	var got *detectOptions
	mk := func(f *factory, ran *bool) *cobra.Command {
		return newDetectCmd(f, func(o *detectOptions) error { *ran, got = true, o; return nil })
	}
	code, ran, _, errOut := parse(t, mk, "detect", "-p", "a", "-p", "b", "--samples", "5", "--interval", "2s", "-o", "inv.json", "--format", "text", "-q")
	if code != ExitOK || !ran {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !reflect.DeepEqual(got.projects, []string{"a", "b"}) || got.samples != 5 || got.interval.String() != "2s" ||
		got.output != "inv.json" || got.format != "text" || !got.quiet {
		t.Errorf("options %+v", *got)
	}
	for _, args := range [][]string{{"detect"}, {"detect", "--all", "-p", "a"}, {"detect", "--all", "--samples", "0"},
		{"detect", "--all", "--format", "yaml"}, {"detect", "--all", "--samples", "x"}, {"detect", "--all", "stray"}} {
		if code, ran, _, errOut := parse(t, mk, args...); code != ExitUsage || ran {
			t.Errorf("%q: exit %d, ran %v: %s", args, code, ran, errOut)
		}
	}
}

func TestScanFlags(t *testing.T) {
	var got *scanOptions
	mk := func(f *factory, ran *bool) *cobra.Command {
		return newScanCmd(f, func(o *scanOptions) error { *ran, got = true, o; return nil })
	}
	code, ran, _, errOut := parse(t, mk, "scan", "a", "b", "--format", "sarif", "--jobs", "2", "--max-file-size", "2MiB", "--allow-outside")
	if code != ExitOK || !ran {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !reflect.DeepEqual(got.paths, []string{"a", "b"}) || got.format != "sarif" || got.workers != 2 ||
		got.maxFileSize != 2<<20 || !got.allowOutside {
		t.Errorf("options %+v", *got)
	}
	code, _, _, _ = parse(t, mk, "scan")
	if code != ExitOK || got.maxFileSize != load.DefaultMaxFileSize {
		t.Errorf("default --max-file-size %d", got.maxFileSize)
	}
	if code, ran, _, _ := parse(t, mk, "scan", "--max-file-size", "0"); code != ExitUsage || ran {
		t.Errorf("--max-file-size 0: exit %d, ran %v", code, ran)
	}
}

func TestByteSizeString(t *testing.T) {
	for in, want := range map[int64]string{8 << 20: "8MiB", 512 << 10: "512KiB", 1 << 30: "1GiB", 1000: "1000", 1536 << 10: "1536KiB"} {
		s := byteSize(in)
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", in, got, want)
		}
	}
}

func TestVerifyHelpPlanFile(t *testing.T) {
	out, _, code := runIn(t, t.TempDir(), "verify", "--help")
	if code != ExitOK || !strings.Contains(out, "--plan FILE") {
		t.Errorf("exit %d; help lacks --plan FILE:\n%s", code, out)
	}
}
