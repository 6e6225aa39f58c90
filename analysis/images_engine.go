package analysis

import (
	"context"
	"fmt"
	"sort"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// EngineImages reads exposed ports of local images from the Docker Engine.
type EngineImages struct {
	cli *client.Client
}

// NewEngineImages connects to the engine named by the environment
// (DOCKER_HOST, ...), negotiating the API version. It fails fast when no
// engine answers, so that runs without Docker (a CI bot) are not slowed.
func NewEngineImages(ctx context.Context) (*EngineImages, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no docker engine answers: %w", err)
	}
	return &EngineImages{cli: cli}, nil
}

// Close releases the client.
func (e *EngineImages) Close() error { return e.cli.Close() }

// ExposedPorts returns the image's exposed ports ("80/tcp"), sorted.
func (e *EngineImages) ExposedPorts(image string) ([]string, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := e.cli.ImageInspect(ctx, image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("inspect image %s: %w", image, err)
	}
	var out []string
	if info.Config != nil {
		for p := range info.Config.ExposedPorts {
			out = append(out, string(p))
		}
	}
	sort.Strings(out)
	return out, true, nil
}
