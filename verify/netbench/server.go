package netbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The first byte a client sends selects the server's mode.
const (
	modeEcho = 'E'
	modeSink = 'S'
)

// bufSize is the size of the server's and Throughput's I/O buffers.
const bufSize = 64 << 10

// Server is a TCP echo/sink server for path baselines. On each connection
// the first byte selects the mode: 'E' echoes every later byte back until
// EOF; 'S' reads until EOF (the client's CloseWrite), then writes the count
// of bytes read as 8 bytes big-endian and closes. Any other first byte
// closes the connection.
type Server struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
	stop  func() bool

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// Listen starts a Server on the TCP address addr ("127.0.0.1:0",
// "0.0.0.0:7000"). The server runs until Close, or until ctx is done.
func Listen(ctx context.Context, addr string) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &Server{ln: ln, open: make(map[net.Conn]struct{})}
	s.stop = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the bound address as host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Conns returns the number of connections accepted so far.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Close closes the listener and every open connection, and waits for the
// server's goroutines to end. Later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.mu.Lock()
		s.closed = true
		s.closeErr = s.ln.Close()
		for c := range s.open {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	if s.closeErr != nil {
		return fmt.Errorf("close server %s: %w", s.Addr(), s.closeErr)
	}
	return nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or a similar passing failure: retry
			// later rather than spin.
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.conns.Add(1)
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	buf := make([]byte, bufSize)
	switch mode[0] {
	case modeEcho:
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case modeSink:
		var count uint64
		for {
			n, err := c.Read(buf)
			count += uint64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		_, _ = c.Write(binary.BigEndian.AppendUint64(nil, count))
	}
}
