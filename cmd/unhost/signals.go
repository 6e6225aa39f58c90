package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// teardownGrace is how long teardown may run after the first signal before
// its context is cancelled as if a third signal had come.
const teardownGrace = 2 * time.Minute

// teardownKey keys the teardown context in the run context's values.
type teardownKey struct{}

// teardownContext returns the context for teardown work (removing the
// containers, networks and volumes a run created) of a command running
// under ctx, the run context. The run context is cancelled by the first
// signal; the teardown context only by a third signal or when teardown
// outlives teardownGrace, so teardown can finish after an interrupt.
//
// Outside main (tests that call runWith), teardown is never cancelled.
func teardownContext(ctx context.Context) context.Context {
	if t, ok := ctx.Value(teardownKey{}).(context.Context); ok {
		return t
	}
	return context.WithoutCancel(ctx)
}

// stagedContexts returns the run context (carrying the teardown context as
// a value, see teardownContext) and a stop function, driven by the signals
// read from sigs:
//
//  1. the first signal cancels the run context: commands stop and tear down;
//  2. a second one is reported, and teardown goes on;
//  3. a third one, or teardown still running grace after the first, cancels
//     the teardown context: teardown is abandoned (verify --cleanup removes
//     what is left later).
//
// Every stage says on stderr what happens, on one line.
func stagedContexts(sigs <-chan os.Signal, stderr io.Writer, grace time.Duration) (context.Context, func()) {
	teardown, cancelTeardown := context.WithCancel(context.Background())
	run, cancelRun := context.WithCancel(context.WithValue(context.Background(), teardownKey{}, teardown))
	done := make(chan struct{})
	go func() {
		var deadline <-chan time.Time
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-deadline:
				fmt.Fprintf(stderr, "unhost: teardown still running %s after the interrupt: abandoning it (unhost verify --cleanup removes what is left)\n", grace)
				cancelTeardown()
				return
			case s := <-sigs:
				switch n {
				case 1:
					fmt.Fprintf(stderr, "unhost: %s: interrupted, tearing down (signal twice more to abandon the teardown)\n", s)
					cancelRun()
					deadline = time.After(grace)
				case 2:
					fmt.Fprintf(stderr, "unhost: %s: still tearing down (once more to abandon the teardown)\n", s)
				default:
					fmt.Fprintf(stderr, "unhost: %s: abandoning the teardown (unhost verify --cleanup removes what is left)\n", s)
					cancelTeardown()
					return
				}
			}
		}
	}()
	return run, func() {
		close(done)
		cancelRun()
		cancelTeardown()
	}
}
