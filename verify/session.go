package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// ProbeBatch is one request to a probe serving on stdin.
type ProbeBatch struct {
	DeadlineMS int         `json:"deadline_ms"`
	Tasks      []ProbeTask `json:"tasks"`
}

// ServeProbes reads one JSON ProbeBatch per line from r and answers each
// with one JSON line of results on w, until r ends. Starting a container
// costs about a quarter second here: a probe started while compose is
// still bringing the stack up is ready when the checks begin.
func ServeProbes(ctx context.Context, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var b ProbeBatch
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			return fmt.Errorf("bad probe batch: %w", err)
		}
		bctx, cancel := context.WithTimeout(ctx, time.Duration(b.DeadlineMS)*time.Millisecond)
		err := RunProbeBatch(bctx, b.Tasks, w)
		cancel()
		if err != nil {
			return err
		}
	}
	return sc.Err()
}

// session is a probe container serving in a target's namespace.
type session struct {
	id     string
	conn   types.HijackedResponse
	lines  *bufio.Scanner
	stderr *strings.Builder
	mu     sync.Mutex
}

// startSession creates and starts a serving probe container in target's
// network namespace, attached to its stdin and stdout.
func startSession(ctx context.Context, c *client.Client, img, target string, labels map[string]string, created func(string)) (*session, error) {
	return startAgent(ctx, c, img, labels, &container.HostConfig{NetworkMode: container.NetworkMode("container:" + target)}, nil, created)
}

// startAgent creates and starts a serving probe container with the host
// configuration hc (its network: a container's namespace, the host's, or
// a network with published ports), attached to its stdin and stdout.
func startAgent(ctx context.Context, c *client.Client, img string, labels map[string]string, hc *container.HostConfig, cfg func(*container.Config), created func(string)) (*session, error) {
	cc := &container.Config{
		Image:       img,
		Cmd:         []string{"probe", "serve"},
		Labels:      labels,
		OpenStdin:   true,
		StdinOnce:   true,
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
	}
	if cfg != nil {
		cfg(cc)
	}
	cr, err := c.ContainerCreate(ctx, cc, hc, nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("create probe container: %w", err)
	}
	created(cr.ID)
	conn, err := c.ContainerAttach(ctx, cr.ID, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, fmt.Errorf("attach probe container: %w", err)
	}
	if err := c.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start probe container: %w", err)
	}
	pr, pw := io.Pipe()
	s := &session{id: cr.ID, conn: conn, stderr: &strings.Builder{}}
	go func() {
		_, err := stdcopy.StdCopy(pw, &lockedWriter{w: s.stderr, mu: &s.mu}, conn.Reader)
		pw.CloseWithError(err)
	}()
	s.lines = bufio.NewScanner(pr)
	s.lines.Buffer(make([]byte, 64<<10), 16<<20)
	return s, nil
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run sends one batch and waits for its results.
func (s *session) run(ctx context.Context, deadline time.Duration, tasks []ProbeTask) ([]ProbeResult, error) {
	b, err := json.Marshal(ProbeBatch{DeadlineMS: int(deadline / time.Millisecond), Tasks: tasks})
	if err != nil {
		return nil, err
	}
	if _, err := s.conn.Conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("send to probe: %w", err)
	}
	type answer struct {
		results []ProbeResult
		err     error
	}
	ch := make(chan answer, 1)
	go func() {
		if !s.lines.Scan() {
			err := s.lines.Err()
			if err == nil {
				err = io.EOF
			}
			s.mu.Lock()
			msg := strings.TrimSpace(s.stderr.String())
			s.mu.Unlock()
			ch <- answer{err: fmt.Errorf("probe ended: %w %s", err, msg)}
			return
		}
		var res []ProbeResult
		if err := json.Unmarshal(s.lines.Bytes(), &res); err != nil {
			ch <- answer{err: fmt.Errorf("probe answer: %w", err)}
			return
		}
		ch <- answer{results: res}
	}()
	select {
	case a := <-ch:
		return a.results, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(deadline + 10*time.Second):
		return nil, errors.New("probe did not answer")
	}
}

func (s *session) close() {
	_ = s.conn.CloseWrite()
	s.conn.Close()
}
