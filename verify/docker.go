package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/unhost/unhost/internal/jsonstream"
)

// NewClient connects to the engine ResolveEngine decides on.
func NewClient(ctx context.Context) (*client.Client, error) {
	e, err := ResolveEngine(ctx)
	if err != nil {
		return nil, err
	}
	return e.Client(ctx)
}

// checkStatic refuses a binary that cannot run in a FROM scratch image.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("probe binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("probe binary %s is dynamically linked: build unhost with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// loadProbeImage makes an image holding only the static binary as /unhost
// (the entrypoint), see loadImage: unlike an ImageBuild of the same
// Dockerfile (about 2s here), this takes about 0.2s.
func loadProbeImage(ctx context.Context, c *client.Client, binary, tag string, labels map[string]string) error {
	if err := checkStatic(binary); err != nil {
		return err
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read probe binary: %w", err)
	}
	if err := loadImage(ctx, c, tag, labels, tarFile{"unhost", 0o755, bin}); err != nil {
		return fmt.Errorf("probe image: %w", err)
	}
	return nil
}

// loadImage makes, as tag, an image of one layer holding only the
// executable exe, its entrypoint, for this binary's platform, labelled
// with labels, and imports it through the Docker API (ImageImport of the
// layer, with the entrypoint and labels as changes): nothing is pulled,
// and the engine takes the layer as it comes, where a load of an image
// archive (ImageLoad) first unpacks the archive and costs it about twice
// as much. The image is created now: a sweep spares a starting run's
// image for imageGrace by its age (its lease follows a moment later).
func loadImage(ctx context.Context, c *client.Client, tag string, labels map[string]string, exe tarFile) error {
	var layer bytes.Buffer
	if err := writeTar(&layer, exe); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	entry, err := json.Marshal([]string{"/" + exe.name})
	if err != nil {
		return err
	}
	changes := []string{"ENTRYPOINT " + string(entry)}
	for _, k := range sortedKeys(labels) {
		// A Dockerfile LABEL: the key and value each in double quotes.
		changes = append(changes, "LABEL "+strconv.Quote(k)+"="+strconv.Quote(labels[k]))
	}
	rc, err := c.ImageImport(ctx, image.ImportSource{Source: &layer, SourceName: "-"}, tag,
		image.ImportOptions{Changes: changes, Platform: "linux/" + runtime.GOARCH})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer rc.Close()
	if err := jsonstream.Check(rc); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

type tarFile struct {
	name string
	mode int64
	data []byte
}

func writeTar(w io.Writer, files ...tarFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Leftover is what a cleanup removed, by kind, for reporting.
type Leftover struct {
	Kind string
	Name string
}

// Cleanup removes every container, network, volume, image and stack
// labelled by a verify run. With onlyRun set, only that run's; otherwise
// only those of runs whose lease is gone (see lease), never those of a run
// whose lease container still runs, wherever that run is.
func Cleanup(ctx context.Context, c *client.Client, onlyRun string) ([]Leftover, error) {
	f := filters.NewArgs()
	if onlyRun != "" {
		f.Add("label", LabelRun+"="+onlyRun)
	} else {
		f.Add("label", LabelRun)
	}
	live := map[string]bool{}
	if onlyRun == "" {
		var err error
		if live, err = liveRuns(ctx, c); err != nil {
			return nil, err
		}
	}
	stale := func(l map[string]string) bool {
		return onlyRun != "" || !live[l[LabelRun]]
	}
	var errs []error
	// Stacks first: swarm would replace their task containers.
	removed, err := cleanupStacks(ctx, c, onlyRun, stale)
	if err != nil {
		errs = append(errs, err)
	}
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	// Runs with objects other than their image: not starting.
	others := map[string]bool{}
	for _, l := range removed {
		others[strings.TrimPrefix(l.Name, "unhost-verify-")] = true
	}
	for _, ct := range cs {
		others[ct.Labels[LabelRun]] = true
	}
	for _, ct := range cs {
		if !stale(ct.Labels) {
			continue
		}
		if err := c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) && !removing(err) {
			errs = append(errs, err)
			continue
		}
		name := ct.ID[:12]
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		removed = append(removed, Leftover{"container", name})
	}
	ns, err := c.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return removed, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns {
		if !stale(n.Labels) {
			continue
		}
		if err := c.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, Leftover{"network", n.Name})
	}
	vs, err := c.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return removed, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Volumes {
		if !stale(v.Labels) {
			continue
		}
		if err := c.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, Leftover{"volume", v.Name})
	}
	is, err := c.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return removed, fmt.Errorf("list images: %w", err)
	}
	for _, im := range is {
		if !stale(im.Labels) {
			continue
		}
		// A starting run loads its image a moment before its lease.
		if onlyRun == "" && !others[im.Labels[LabelRun]] && time.Since(time.Unix(im.Created, 0)) < imageGrace {
			continue
		}
		if _, err := c.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		name := im.ID
		if len(im.RepoTags) > 0 {
			name = im.RepoTags[0]
		}
		removed = append(removed, Leftover{"image", name})
	}
	sort.Slice(removed, func(i, j int) bool {
		if removed[i].Kind != removed[j].Kind {
			return removed[i].Kind < removed[j].Kind
		}
		return removed[i].Name < removed[j].Name
	})
	if len(errs) > 0 {
		return removed, fmt.Errorf("cleanup: %w", errors.Join(errs...))
	}
	return removed, nil
}

// removing tells whether a removal failed because the engine is removing
// the object already (a lease container that ended: AutoRemove).
func removing(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")
}

// listRun lists what of run is on the engine: stacks' services,
// containers, networks, volumes and images labelled with its id.
func listRun(ctx context.Context, c *client.Client, run string) ([]Leftover, error) {
	f := filters.NewArgs(filters.Arg("label", LabelRun+"="+run))
	var out []Leftover
	if isManager(ctx, c) {
		svcs, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		for _, s := range svcs {
			out = append(out, Leftover{"service", s.Spec.Name})
		}
	}
	cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, ct := range cs {
		if ct.State == "removing" {
			continue // going: an ended lease's AutoRemove, or a removal under way
		}
		name := ct.ID[:12]
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		out = append(out, Leftover{"container", name})
	}
	ns, err := c.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns {
		out = append(out, Leftover{"network", n.Name})
	}
	vs, err := c.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Volumes {
		out = append(out, Leftover{"volume", v.Name})
	}
	is, err := c.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, im := range is {
		name := im.ID
		if len(im.RepoTags) > 0 {
			name = im.RepoTags[0]
		}
		out = append(out, Leftover{"image", name})
	}
	return out, nil
}
