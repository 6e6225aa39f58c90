package netbench

import (
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

func TestSummarize(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	shuffled := slices.Clone(hundred)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	tests := []struct {
		name    string
		samples []time.Duration
		want    Stats
	}{
		{"empty", nil, Stats{}},
		{"one", []time.Duration{ms(7)}, Stats{N: 1, P50: ms(7), P99: ms(7), Min: ms(7), Max: ms(7)}},
		{"two", []time.Duration{ms(2), ms(1)}, Stats{N: 2, P50: ms(1), P99: ms(2), Min: ms(1), Max: ms(2)}},
		// Ranks ceil(2.5)=3 and ceil(4.95)=5.
		{"five unsorted", []time.Duration{ms(5), ms(1), ms(3), ms(2), ms(4)}, Stats{N: 5, P50: ms(3), P99: ms(5), Min: ms(1), Max: ms(5)}},
		{"hundred sorted", hundred, Stats{N: 100, P50: ms(50), P99: ms(99), Min: ms(1), Max: ms(100)}},
		{"hundred shuffled", shuffled, Stats{N: 100, P50: ms(50), P99: ms(99), Min: ms(1), Max: ms(100)}},
		// Rank ceil(99*101/100)=100 (the 100th of 101 samples).
		{"hundred and one", append(slices.Clone(hundred), ms(1000)), Stats{N: 101, P50: ms(51), P99: ms(100), Min: ms(1), Max: ms(1000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.samples)
			got := Summarize(tt.samples)
			if !slices.IsSorted(got.Samples) || len(got.Samples) != len(tt.samples) {
				t.Errorf("Samples %v: want the %d samples, sorted", got.Samples, len(tt.samples))
			}
			got.Samples = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(before, tt.samples) {
				t.Error("Summarize reordered the caller's slice")
			}
		})
	}
}

func listen(t *testing.T) *Server {
	t.Helper()
	s, err := Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func checkStats(t *testing.T, what string, st Stats, n int) {
	t.Helper()
	if st.N != n || st.Min <= 0 || st.P50 < st.Min || st.P99 < st.P50 || st.Max < st.P99 {
		t.Errorf("%s: implausible stats %+v for %d samples", what, st, n)
	}
}

func TestServerClients(t *testing.T) {
	s := listen(t)
	ctx := t.Context()

	st, err := RTT(ctx, s.Addr(), 500, 64, 50)
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, "rtt", st, 500)
	if st, err = RTT(ctx, s.Addr(), 20, MaxRTTSize, 1); err != nil {
		t.Fatal(err)
	}
	checkStats(t, "rtt of the largest message", st, 20)

	if st, err = ConnectEcho(ctx, s.Addr(), 30, 0); err != nil {
		t.Fatal(err)
	}
	checkStats(t, "connect-echo", st, 30)
	if st, err = ConnectEcho(ctx, s.Addr(), 3, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkStats(t, "connect-echo with a gap", st, 3)

	mbit, count, err := Throughput(ctx, s.Addr(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if mbit <= 0 || count <= 0 {
		t.Errorf("throughput = %v Mbit/s over %d bytes, want both positive", mbit, count)
	}
	if got, want := s.Conns(), int64(2+30+3+1); got != want {
		t.Errorf("Conns = %d, want %d", got, want)
	}
}

func TestServerModes(t *testing.T) {
	s := listen(t)
	// An unknown mode byte: the server closes.
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{'X'}); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Errorf("unknown mode: read %q, %v; want EOF at once", b, err)
	}

	// Close ends an open echo connection and the accept loop.
	e, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_ = e.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := e.Write([]byte("Ex")); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(e, b[:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Read(b[:]); err == nil {
		t.Error("echo connection still open after Close")
	}
	if _, err := RTT(t.Context(), s.Addr(), 1, 1, 0); err == nil {
		t.Error("RTT to a closed server succeeded")
	}
}

func TestListenContextCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after its context ended")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("server still accepts after its context ended")
	}
}

// refused returns an address on which nothing listens.
func refused(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBadInputAndErrors(t *testing.T) {
	ctx := t.Context()
	s := listen(t)
	a, gone := s.Addr(), refused(t)
	tests := []struct {
		name string
		run  func() error
		want string // in the error
	}{
		{"rtt n", func() error { _, err := RTT(ctx, a, 0, 1, 0); return err }, "round trips must be positive"},
		{"rtt size", func() error { _, err := RTT(ctx, a, 1, 0, 0); return err }, "message size"},
		{"rtt size too big", func() error { _, err := RTT(ctx, a, 1, MaxRTTSize+1, 0); return err }, "message size"},
		{"rtt warmup", func() error { _, err := RTT(ctx, a, 1, 1, -1); return err }, "warm-up"},
		{"rtt refused", func() error { _, err := RTT(ctx, gone, 1, 1, 0); return err }, "rtt " + gone},
		{"connect-echo n", func() error { _, err := ConnectEcho(ctx, a, -1, 0); return err }, "connects must be positive"},
		{"connect-echo gap", func() error { _, err := ConnectEcho(ctx, a, 1, -time.Second); return err }, "gap"},
		{"connect-echo refused", func() error { _, err := ConnectEcho(ctx, gone, 1, 0); return err }, "connect-echo " + gone},
		{"throughput d", func() error { _, _, err := Throughput(ctx, a, 0); return err }, "duration must be positive"},
		{"throughput refused", func() error { _, _, err := Throughput(ctx, gone, time.Millisecond); return err }, "throughput " + gone},
		{"connect n", func() error { _, err := ConnectOnly(ctx, a, 0, 0); return err }, "connects must be positive"},
		{"connect rate NaN", func() error { _, err := ConnectOnly(ctx, a, 1, math.NaN()); return err }, "rate is not a number"},
		{"connect refused", func() error { _, err := ConnectOnly(ctx, gone, 1, 0); return err }, "connect " + gone},
		{"get n", func() error { _, _, err := HTTPGet(ctx, "http://"+a+"/", 0, 0); return err }, "requests must be positive"},
		{"get rate NaN", func() error { _, _, err := HTTPGet(ctx, "http://"+a+"/", 1, math.NaN()); return err }, "rate is not a number"},
		{"get scheme", func() error { _, _, err := HTTPGet(ctx, "redis://"+a, 1, 0); return err }, "not an http or https url"},
		{"get no host", func() error { _, _, err := HTTPGet(ctx, "http:///x", 1, 0); return err }, "not an http or https url"},
		{"get unparsable", func() error { _, _, err := HTTPGet(ctx, "http://[::1", 1, 0); return err }, "not an http or https url"},
		{"get refused", func() error { _, _, err := HTTPGet(ctx, "http://"+gone+"/x", 1, 0); return err }, "http get http://" + gone + "/x: dial tcp"},
		// The echo server answers a GET by closing: a transport error.
		{"get not http", func() error { _, _, err := HTTPGet(ctx, "http://"+a+"/", 1, 0); return err }, "http get http://" + a + "/: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("error %q: want one lower-case line containing %q", msg, tt.want)
			}
		})
	}
}

// arrivals records when each event happened.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
}

func (a *arrivals) add() {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	a.mu.Unlock()
}

func (a *arrivals) get() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.times)
}

// checkRate asserts that times holds n events, that no one-second window
// [t, t+1s) holds more than rate of them, and that they spread over at
// least 90% of (n-1)/rate. Lateness on a loaded machine only helps both.
func checkRate(t *testing.T, times []time.Time, n int, rate float64) {
	t.Helper()
	if len(times) != n {
		t.Fatalf("%d arrivals, want %d", len(times), n)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i, start := range times {
		in := 0
		for _, u := range times[i:] {
			if u.Sub(start) < time.Second {
				in++
			}
		}
		if float64(in) > rate {
			t.Errorf("%d arrivals in the second from arrival %d, rate %v", in, i, rate)
		}
	}
	want := time.Duration(float64(n-1) / rate * 0.9 * float64(time.Second))
	if got := times[n-1].Sub(times[0]); got < want {
		t.Errorf("%d arrivals spread over %s, want at least %s", n, got, want)
	}
}

func TestHTTPGetRate(t *testing.T) {
	var arr arrivals
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arr.add()
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	const n, rate = 12, 20.0
	st, status, err := HTTPGet(t.Context(), srv.URL+"/", n, rate)
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, "http get", st, n)
	if status[200] != n || len(status) != 1 {
		t.Errorf("status counts %v, want %d × 200", status, n)
	}
	checkRate(t, arr.get(), n, rate)
}

func TestConnectOnlyRate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var arr arrivals
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			arr.add()
			c.Close()
		}
	}()
	const n, rate = 12, 20.0
	st, err := ConnectOnly(t.Context(), ln.Addr().String(), n, rate)
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, "connect", st, n)
	deadline := time.Now().Add(10 * time.Second)
	for len(arr.get()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	checkRate(t, arr.get(), n, rate)
}

func TestLimiter(t *testing.T) {
	for _, rate := range []float64{0, -1, math.Inf(1)} {
		if l, err := newLimiter(rate); l != nil || err != nil {
			t.Errorf("newLimiter(%v) = %v, %v; want no limit", rate, l, err)
		}
	}
	// Rounding never lets rate+1 events into one second.
	for _, rate := range []float64{3, 7, 0.3, 50, 1e9, 3e9} {
		l, err := newLimiter(rate)
		if err != nil {
			t.Fatal(err)
		}
		if l.interval <= 0 || float64(l.interval)*rate < float64(time.Second) {
			t.Errorf("rate %v: interval %s lets more than rate events into a second", rate, l.interval)
		}
	}
	// The first event is immediate, then every one is at least an
	// interval after the previous one returned.
	l, err := newLimiter(4)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var prev time.Time
	for i := range 4 {
		if err := l.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if i == 0 && now.Sub(start) >= l.interval {
			t.Errorf("first event after %s, want immediate", now.Sub(start))
		}
		if i > 0 && now.Sub(prev) < l.interval {
			t.Errorf("event %d %s after the previous one, want at least %s", i, now.Sub(prev), l.interval)
		}
		prev = now
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait on a cancelled context = %v", err)
	}
}

func TestConnectOnlySendsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 20
	read := make(chan int64, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				got, _ := io.Copy(io.Discard, c)
				read <- got
			}()
		}
	}()
	if _, err := ConnectOnly(t.Context(), ln.Addr().String(), n, 0); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case got := <-read:
			if got != 0 {
				t.Errorf("connection %d: the server read %d bytes, want none", i, got)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("only %d of %d connections ended", i, n)
		}
	}
}

func TestHTTPGetStatus(t *testing.T) {
	var hits arrivals
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 3*maxBody))
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { hits.add() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		path string
		want map[int]int
	}{
		{"/ok", map[int]int{200: 5}},
		{"/missing", map[int]int{404: 5}},
		{"/big", map[int]int{200: 3}},
		{"/away", map[int]int{302: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			n := 0
			for _, c := range tt.want {
				n += c
			}
			st, status, err := HTTPGet(t.Context(), srv.URL+tt.path, n, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkStats(t, "http get", st, n)
			if !maps.Equal(status, tt.want) {
				t.Errorf("status counts %v, want %v", status, tt.want)
			}
		})
	}
	if len(hits.get()) != 0 {
		t.Error("HTTPGet followed a redirect")
	}
}

func TestRTTCancel(t *testing.T) {
	s := listen(t)
	// A peer that accepts and never answers, so RTT blocks in a read.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	for _, addr := range []string{s.Addr(), mute.Addr().String()} {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		_, err := RTT(ctx, addr, math.MaxInt32, 64, 0) // stopped only by ctx
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RTT %s with a 100ms deadline: %v, want the deadline's error", addr, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("RTT %s stopped %s after its 100ms deadline", addr, took)
		}
	}
}
