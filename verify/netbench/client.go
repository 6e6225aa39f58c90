package netbench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"time"
)

// MaxRTTSize is the largest message RTT sends. It stays well below the
// socket buffers along the path, so writing a whole message before reading
// its echo cannot stall.
const MaxRTTSize = 64 << 10

// maxPrealloc bounds the samples allocated ahead, so that a huge n stopped
// early by its context costs only what was measured.
const maxPrealloc = 1 << 16

// maxBody is how much of a response body HTTPGet reads.
const maxBody = 1 << 20

// RTT opens one connection to a Server's echo mode at addr, makes warmup
// untimed round trips, then times n round trips of a size-byte message
// (write size bytes, read the size bytes echoed back). It checks every echo.
func RTT(ctx context.Context, addr string, n, size, warmup int) (Stats, error) {
	switch {
	case n <= 0:
		return Stats{}, fmt.Errorf("rtt %s: round trips must be positive, got %d", addr, n)
	case size <= 0 || size > MaxRTTSize:
		return Stats{}, fmt.Errorf("rtt %s: message size must be 1 to %d bytes, got %d", addr, MaxRTTSize, size)
	case warmup < 0:
		return Stats{}, fmt.Errorf("rtt %s: warm-up must not be negative, got %d", addr, warmup)
	}
	c, stop, err := dial(ctx, addr)
	if err != nil {
		return Stats{}, fail(ctx, "rtt", addr, err)
	}
	defer c.Close()
	defer stop()
	if _, err := c.Write([]byte{modeEcho}); err != nil {
		return Stats{}, fail(ctx, "rtt", addr, err)
	}
	msg, echo := make([]byte, size), make([]byte, size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	samples := make([]time.Duration, 0, min(n, maxPrealloc))
	for i := range warmup + n {
		if ctx.Err() != nil {
			return Stats{}, fail(ctx, "rtt", addr, ctx.Err())
		}
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return Stats{}, fail(ctx, "rtt", addr, err)
		}
		if _, err := io.ReadFull(c, echo); err != nil {
			return Stats{}, fail(ctx, "rtt", addr, err)
		}
		took := time.Since(start)
		if !bytes.Equal(msg, echo) {
			return Stats{}, fmt.Errorf("rtt %s: echo differs from the message sent", addr)
		}
		if i >= warmup {
			samples = append(samples, took)
		}
	}
	return Summarize(samples), nil
}

// ConnectEcho measures connection setup n times: dial addr, write the echo
// mode and one byte, read that byte back, close. Each sample runs from
// before the dial to after the read; through a proxy that accepts for the
// backend (docker's userland proxy) a bare connect would only time the
// proxy's accept. gap is a pause between attempts (0 for none).
func ConnectEcho(ctx context.Context, addr string, n int, gap time.Duration) (Stats, error) {
	switch {
	case n <= 0:
		return Stats{}, fmt.Errorf("connect-echo %s: connects must be positive, got %d", addr, n)
	case gap < 0:
		return Stats{}, fmt.Errorf("connect-echo %s: gap must not be negative, got %s", addr, gap)
	}
	samples := make([]time.Duration, 0, min(n, maxPrealloc))
	for i := range n {
		if i > 0 {
			if err := sleep(ctx, gap); err != nil {
				return Stats{}, fail(ctx, "connect-echo", addr, err)
			}
		}
		took, err := connectEcho(ctx, addr)
		if err != nil {
			return Stats{}, fail(ctx, "connect-echo", addr, err)
		}
		samples = append(samples, took)
	}
	return Summarize(samples), nil
}

func connectEcho(ctx context.Context, addr string) (time.Duration, error) {
	start := time.Now()
	c, stop, err := dial(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	defer stop()
	if _, err := c.Write([]byte{modeEcho, 'x'}); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if b[0] != 'x' {
		return 0, fmt.Errorf("echoed %q, sent 'x'", b[0])
	}
	return took, nil
}

// Throughput sends 64 KiB buffers on one connection to a Server's sink mode
// at addr for d, closes its write side and reads the count of bytes the
// server received. It returns that count and the rate in Mbit/s, count*8
// over the time from the first write until the count arrived. A count other
// than the bytes sent is an error.
func Throughput(ctx context.Context, addr string, d time.Duration) (mbitPerS float64, count int64, err error) {
	if d <= 0 {
		return 0, 0, fmt.Errorf("throughput %s: duration must be positive, got %s", addr, d)
	}
	c, stop, err := dial(ctx, addr)
	if err != nil {
		return 0, 0, fail(ctx, "throughput", addr, err)
	}
	defer c.Close()
	defer stop()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return 0, 0, fmt.Errorf("throughput %s: connection cannot close its write side", addr)
	}
	if _, err := c.Write([]byte{modeSink}); err != nil {
		return 0, 0, fail(ctx, "throughput", addr, err)
	}
	buf := make([]byte, bufSize)
	var sent int64
	start := time.Now()
	for end := start.Add(d); time.Now().Before(end); {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			return 0, 0, fail(ctx, "throughput", addr, err)
		}
	}
	if err := cw.CloseWrite(); err != nil {
		return 0, 0, fail(ctx, "throughput", addr, err)
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, 0, fail(ctx, "throughput", addr, fmt.Errorf("reading the byte count: %w", err))
	}
	elapsed := time.Since(start)
	got := binary.BigEndian.Uint64(b[:])
	if got != uint64(sent) {
		return 0, 0, fmt.Errorf("throughput %s: server counted %d bytes, %d were sent", addr, got, sent)
	}
	return float64(sent) * 8 / elapsed.Seconds() / 1e6, sent, nil
}

// ConnectOnly makes n bare connects to addr, at most rate a second (rate <=
// 0: unlimited), and times each dial. It never writes a byte, so it is safe
// for ports whose protocol is unknown (a GET sent to Redis runs as a
// command). Through docker's userland proxy it times the proxy's accept,
// not the service's.
func ConnectOnly(ctx context.Context, addr string, n int, rate float64) (Stats, error) {
	if n <= 0 {
		return Stats{}, fmt.Errorf("connect %s: connects must be positive, got %d", addr, n)
	}
	lim, err := newLimiter(rate)
	if err != nil {
		return Stats{}, fmt.Errorf("connect %s: %w", addr, err)
	}
	var d net.Dialer
	samples := make([]time.Duration, 0, min(n, maxPrealloc))
	for range n {
		if err := lim.wait(ctx); err != nil {
			return Stats{}, fail(ctx, "connect", addr, err)
		}
		start := time.Now()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return Stats{}, fail(ctx, "connect", addr, err)
		}
		samples = append(samples, time.Since(start))
		_ = c.Close()
	}
	return Summarize(samples), nil
}

// HTTPGet sends n GET requests to url, at most rate a second (rate <= 0:
// unlimited), over one keep-alive connection (its own Transport, one
// connection per host, no proxy from the environment). It does not follow
// redirects: a 3xx is counted as it is, so no request leaves for another
// host. Each latency runs from the start of the request until its body
// has been read (up to 1 MiB; a longer body costs the next request a new
// connection). It returns the latencies and the count of each status code;
// a transport error stops it.
func HTTPGet(ctx context.Context, url string, n int, rate float64) (Stats, map[int]int, error) {
	if n <= 0 {
		return Stats{}, nil, fmt.Errorf("http get %s: requests must be positive, got %d", url, n)
	}
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Stats{}, nil, fmt.Errorf("http get %s: not an http or https url", url)
	}
	lim, err := newLimiter(rate)
	if err != nil {
		return Stats{}, nil, fmt.Errorf("http get %s: %w", url, err)
	}
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	samples := make([]time.Duration, 0, min(n, maxPrealloc))
	status := make(map[int]int)
	for range n {
		if err := lim.wait(ctx); err != nil {
			return Stats{}, nil, fail(ctx, "http get", url, err)
		}
		took, code, err := get(ctx, client, url)
		if err != nil {
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err // it repeats the method and url
			}
			return Stats{}, nil, fail(ctx, "http get", url, err)
		}
		samples = append(samples, took)
		status[code]++
	}
	return Summarize(samples), status, nil
}

func get(ctx context.Context, client *http.Client, url string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
		return 0, 0, fmt.Errorf("reading the body: %w", err)
	}
	return time.Since(start), resp.StatusCode, nil
}
