package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a strings.Builder safe for the handler's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLines waits until the handler has written n lines.
func waitLines(t *testing.T, b *syncBuffer, n int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(b.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("want %d lines, have %q", n, b.String())
		}
		time.Sleep(time.Millisecond)
	}
	return b.String()
}

func TestStagedSignals(t *testing.T) {
	sigs := make(chan os.Signal, 3)
	var errOut syncBuffer
	run, stop := stagedContexts(sigs, &errOut, time.Hour)
	defer stop()
	teardown := teardownContext(run)
	if run.Err() != nil || teardown.Err() != nil {
		t.Fatal("cancelled before any signal")
	}

	sigs <- syscall.SIGTERM
	<-run.Done()
	out := waitLines(t, &errOut, 1)
	if teardown.Err() != nil {
		t.Fatal("the first signal cancelled the teardown")
	}
	if !strings.Contains(out, "interrupted, tearing down") {
		t.Errorf("first signal: %q", out)
	}
	// a context derived from the run context still finds the teardown one
	derived, cancel := context.WithTimeout(run, time.Minute)
	defer cancel()
	if teardownContext(derived) != teardown {
		t.Error("teardownContext of a derived context is not the teardown context")
	}

	sigs <- syscall.SIGINT
	out = waitLines(t, &errOut, 2)
	if teardown.Err() != nil {
		t.Fatal("the second signal cancelled the teardown")
	}
	if !strings.Contains(out, "still tearing down") {
		t.Errorf("second signal: %q", out)
	}

	sigs <- syscall.SIGHUP
	<-teardown.Done()
	out = waitLines(t, &errOut, 3)
	if !strings.Contains(out, "abandoning the teardown") {
		t.Errorf("third signal: %q", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "unhost: ") {
			t.Errorf("line %q", l)
		}
	}
}

func TestTeardownDeadline(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var errOut syncBuffer
	run, stop := stagedContexts(sigs, &errOut, 20*time.Millisecond)
	defer stop()
	sigs <- os.Interrupt
	select {
	case <-teardownContext(run).Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the teardown deadline did not cancel the teardown context")
	}
	if out := waitLines(t, &errOut, 2); !strings.Contains(out, "abandoning it") {
		t.Errorf("stderr %q", out)
	}
}

// Without main's handler (tests, library use) teardown is never cancelled,
// even when the run context is.
func TestTeardownContextWithoutMain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	td := teardownContext(ctx)
	cancel()
	if td.Err() != nil {
		t.Error("teardown context cancelled with the run context")
	}
}
