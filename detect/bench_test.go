package detect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/unhost/unhost/internal/dockertest"
)

const (
	benchContainers = 60
	benchSockets    = 3 // per container: TCP 0.0.0.0, TCP 127.0.0.1, UDP 0.0.0.0
)

// BenchmarkDetectVsScript compares one sample of detection with the shell
// script it replaces (per container: `docker top`, then `ss -ltnup`, keeping
// the sockets whose pid is the container's) over 60 host-network containers
// with 3 sockets each. Each iteration runs both; the reported metrics are the
// time per run of each and their ratio. It fails if either misses a socket or
// if detect takes more than a tenth of the script's time.
//
//	CI=true go test -run '^$' -bench DetectVsScript -benchtime 5x ./detect/
func BenchmarkDetectVsScript(b *testing.B) {
	for _, tool := range []string{"docker", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("the script needs %s: %v", tool, err)
		}
	}
	cli := dockertest.Client(b)
	img := dockertest.BuildImage(b, cli, testserverPkg, nil)
	s := dockertest.NewScope(b, cli)
	project := "unhostbench-" + s.ID()
	ports := dockertest.FreePorts(b, benchContainers*benchSockets)

	ids := make([]string, benchContainers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i := range benchContainers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p := ports[i*benchSockets:]
			ids[i] = s.Run(b, fmt.Sprintf("%s-svc%02d-1", project, i), &container.Config{
				Image:  img,
				Labels: composeLabels(project, fmt.Sprintf("svc%02d", i)),
				Cmd: []string{
					"-tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p[0])),
					"-tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p[1])),
					"-udp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p[2])),
				},
			}, &container.HostConfig{NetworkMode: "host"}, nil)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		dockertest.WaitLog(b, cli, id, 30*time.Second, "listening udp 0.0.0.0:"+strconv.Itoa(ports[i*benchSockets+2]))
	}
	want := benchContainers * benchSockets
	ctx := context.Background()

	var detectTime, scriptTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		inv, err := Observe(ctx, Options{Docker: cli, Projects: []string{project}, Samples: 1})
		detectTime += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for _, svc := range inv.Services {
			got += len(svc.Listeners)
		}
		if got != want {
			b.Fatalf("detect found %d sockets, want %d", got, want)
		}

		t0 = time.Now()
		got, err = script(ctx, ids)
		scriptTime += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if got != want {
			b.Fatalf("script found %d sockets, want %d", got, want)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(detectTime.Milliseconds())/n, "detect-ms/op")
	b.ReportMetric(float64(scriptTime.Milliseconds())/n, "script-ms/op")
	ratio := float64(scriptTime) / float64(detectTime)
	b.ReportMetric(ratio, "script/detect")
	if ratio < 10 {
		b.Errorf("detect took %v per sample, the script %v: only %.1fx faster, goal is 10x", detectTime/time.Duration(b.N), scriptTime/time.Duration(b.N), ratio)
	}
}

// script does what the person's shell script does, for each container:
//
//	pids=$(docker top "$id" | awk 'NR>1 {print $2}')
//	ss -Hltnup | grep -E "pid=($pids)," | wc -l
//
// and returns the total of sockets found.
func script(ctx context.Context, ids []string) (int, error) {
	total := 0
	for _, id := range ids {
		out, err := exec.CommandContext(ctx, "docker", "top", id).Output()
		if err != nil {
			return 0, fmt.Errorf("docker top %.12s: %w", id, err)
		}
		pids := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		col := -1
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if col < 0 {
				for i, t := range f {
					if t == "PID" {
						col = i
					}
				}
				continue
			}
			if col < len(f) {
				pids[f[col]] = true
			}
		}
		ss, err := exec.CommandContext(ctx, "ss", "-Hltnup").Output()
		if err != nil {
			return 0, fmt.Errorf("ss: %w", err)
		}
		for _, line := range strings.Split(string(ss), "\n") {
			for _, m := range strings.Split(line, "pid=")[1:] {
				pid, _, _ := strings.Cut(m, ",")
				if pids[pid] {
					total++
					break
				}
			}
		}
	}
	return total, nil
}
