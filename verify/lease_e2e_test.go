package verify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/unhost/unhost/internal/dockertest"
)

// The sweep of runs whose lease is gone spares a starting run (an image
// alone, young: its lease follows a moment later) and a run whose lease
// holds, and removes a run that has objects but no lease.
func TestSweepByLease(t *testing.T) {
	cli := dockertest.Client(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "unhost")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/unhost")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	ctx := context.Background()
	runs := map[string]string{"starting": "", "held": "", "dead": ""}
	for run := range runs {
		labels := map[string]string{LabelRun: "sweeptest-" + run + "-" + dockertest.RunID()}
		runs[run] = labels[LabelRun]
		img := "unhost-verify-probe:" + labels[LabelRun]
		if err := loadProbeImage(ctx, cli, bin, img, labels); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := Cleanup(context.Background(), cli, labels[LabelRun]); err != nil {
				t.Error(err)
			}
		})
		switch run {
		case "held":
			// The lease from the lease program's image, as runs hold it.
			leaseImg := "unhost-verify-lease:" + labels[LabelRun]
			if err := loadImage(ctx, cli, leaseImg, labels, tarFile{"lease", 0o755, leaseProgram(runtime.GOARCH)}); err != nil {
				t.Fatal(err)
			}
			l, err := createLease(ctx, cli, leaseImg, nil, labels)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.hold(ctx, cli); err != nil {
				t.Fatal(err)
			}
			defer l.release()
			fallthrough
		case "dead":
			cr, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"probe", "lease"}, Labels: labels}, nil, nil, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			_ = cr
		}
	}
	if _, err := Cleanup(ctx, cli, ""); err != nil {
		t.Fatal(err)
	}
	for run, id := range runs {
		is, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filtersFor(id)})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filtersFor(id)})
		if err != nil {
			t.Fatal(err)
		}
		switch run {
		case "dead":
			if len(is)+len(cs) != 0 {
				t.Errorf("run without a lease: %d images, %d containers left", len(is), len(cs))
			}
		case "starting":
			if len(is) != 1 {
				t.Errorf("a starting run's image was removed")
			}
		case "held":
			if len(is) != 2 || len(cs) != 2 {
				t.Errorf("a run whose lease holds lost objects: %d images, %d containers", len(is), len(cs))
			}
		}
	}
}

func filtersFor(run string) filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelRun+"="+run))
}
