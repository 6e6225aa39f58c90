// Package netbench holds the measurement primitives of `unhost verify
// --bench`: an echo/sink server for path baselines, and clients that time
// round trips, connection setup, bulk throughput, bare connects and HTTP
// GETs. It knows nothing of Docker; the verify package runs these functions
// inside probe containers and compares their results.
//
// Every client takes a context and stops early when it is done; callers
// should give it a deadline, since a peer that stops reading or answering
// otherwise blocks a client until the context ends.
package netbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"time"
)

// Stats summarises latency samples with nearest-rank percentiles: the
// p-th percentile of N sorted samples is the sample of rank ceil(p/100*N).
type Stats struct {
	N                  int
	P50, P99, Min, Max time.Duration
	// Samples are the samples, sorted: measurements taken apart (rounds
	// interleaved between paths) are pooled from them.
	Samples []time.Duration
}

// Summarize returns the Stats of samples. It sorts a copy, so the caller's
// slice keeps its order. No samples give the zero Stats (N == 0).
func Summarize(samples []time.Duration) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Stats{
		N:       len(s),
		P50:     s[nearestRank(50, len(s))-1],
		P99:     s[nearestRank(99, len(s))-1],
		Min:     s[0],
		Max:     s[len(s)-1],
		Samples: s,
	}
}

// nearestRank is ceil(p/100*n), at least 1, for 0 < p <= 100 and n > 0.
func nearestRank(p, n int) int {
	return max(1, (p*n+99)/100)
}

// limiter spaces events at least interval apart, the first one immediate:
// a token bucket of burst 1. Its spacing is measured from the moment wait
// returns, so a late event never lets the next one come early, and no
// window of one second holds more than rate events.
type limiter struct {
	interval time.Duration
	next     time.Time
}

// newLimiter returns a limiter for rate events per second, or nil (no
// limit) for rate <= 0 or +Inf. The interval is rounded up so that
// rounding never allows more than rate events in a second.
func newLimiter(rate float64) (*limiter, error) {
	if math.IsNaN(rate) {
		return nil, errors.New("rate is not a number")
	}
	if rate <= 0 || math.IsInf(rate, 1) {
		return nil, nil
	}
	return &limiter{interval: time.Duration(math.Ceil(float64(time.Second) / rate))}, nil
}

// wait blocks until the next event is allowed or ctx is done. A nil
// limiter never waits.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	if err := sleep(ctx, time.Until(l.next)); err != nil {
		return err
	}
	l.next = time.Now().Add(l.interval)
	return nil
}

// sleep pauses for d (nothing for d <= 0) or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dial opens a TCP connection to addr and arranges for its pending reads
// and writes to fail when ctx is done; stop undoes that arrangement.
func dial(ctx context.Context, addr string) (c net.Conn, stop func() bool, err error) {
	var d net.Dialer
	c, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return c, stop, nil
}

// fail wraps err as "op addr: err", preferring ctx's error when ctx is done
// (an expired deadline set by dial is only its symptom).
func fail(ctx context.Context, op, addr string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return fmt.Errorf("%s %s: %w", op, addr, err)
}
