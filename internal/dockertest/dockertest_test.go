package dockertest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-connections/nat"
)

// TestBuildRunCleanup builds the testserver image, runs it on the default
// bridge with a published port, checks that it answers HTTP and echoes its
// readiness lines, and that the scope cleanup and image removal leave nothing
// behind.
func TestBuildRunCleanup(t *testing.T) {
	cli := Client(t)
	var tag, scopeID string
	t.Run("run", func(t *testing.T) {
		tag = BuildImage(t, cli, "github.com/unhost/unhost/internal/testserver", map[string]string{"purpose": "dockertest"})
		if again := BuildImage(t, cli, "github.com/unhost/unhost/internal/testserver", map[string]string{"purpose": "dockertest"}); again != tag {
			t.Fatalf("second build in one test: got %s, want cached %s", again, tag)
		}
		s := NewScope(t, cli)
		scopeID = s.ID()
		id := s.Run(t, "", &container.Config{
			Image:        tag,
			Cmd:          []string{"-tcp", "0.0.0.0:8080", "-udp", "0.0.0.0:8081"},
			ExposedPorts: nat.PortSet{"8080/tcp": {}},
		}, &container.HostConfig{
			PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "0"}}},
		}, nil)
		WaitLog(t, cli, id, 10*time.Second, "listening tcp 0.0.0.0:8080", "listening udp 0.0.0.0:8081")
		ins, err := cli.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		b := ins.NetworkSettings.Ports["8080/tcp"]
		if len(b) == 0 {
			t.Fatalf("no published binding: %v", ins.NetworkSettings.Ports)
		}
		resp, err := http.Get("http://127.0.0.1:" + b[0].HostPort + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Fatalf("GET /: %d %q", resp.StatusCode, body)
		}
	})
	// The subtest's cleanups have run: nothing of the scope or the image remains.
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelScope+"="+scopeID))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("%d containers left after cleanup", len(cs))
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", tag))})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 {
		t.Errorf("image %s left after cleanup", tag)
	}
}
