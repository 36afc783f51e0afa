package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockmoat/dockmoat/internal/identity"
)

// listener accepts TCP connections up to a limit and wraps each in a
// serverConn. The TLS handshake runs later, on the connection's own
// goroutine, so a slow client never delays accepting others.
type listener struct {
	net.Listener
	srv   *Server
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newListener(ln net.Listener, srv *Server, limit int) *listener {
	return &listener{
		Listener: ln,
		srv:      srv,
		slots:    make(chan struct{}, limit),
		done:     make(chan struct{}),
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	raw, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return l.srv.newServerConn(raw, l.release), nil
}

func (l *listener) release() { <-l.slots }

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// serverConn is one client connection. Its first Read or Write runs the TLS
// handshake, classifies a failure for the log and metrics, and records the
// client's identity. Close is safe to call more than once and from any
// goroutine.
type serverConn struct {
	*tls.Conn
	raw     net.Conn
	srv     *Server
	release func()

	handshaken atomic.Bool
	hsOnce     sync.Once
	hsErr      error

	// id is set once by the handshake and read only after it.
	id identity.Identity
	// peer is the client's address as "host:port", formatted once for the
	// audit records of every request on the connection.
	peer string

	// reader and pending belong to the goroutine that serves the
	// connection: pending is the reader of the last request when its
	// buffer already holds the start of the next one.
	reader  connReader
	pending *bufio.Reader

	// mu guards the fields below it.
	mu     sync.Mutex
	state  connState
	closed bool
	// ctx is the context of the connection's requests, and cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
}

func (s *Server) newServerConn(raw net.Conn, release func()) *serverConn {
	c := &serverConn{raw: raw, srv: s, release: release}
	c.Conn = tls.Server(raw, s.baseTLS)
	c.reader.conn = c
	s.track(c)
	s.metrics.connOpened()
	return c
}

func (c *serverConn) Read(p []byte) (int, error) {
	if !c.handshaken.Load() {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *serverConn) Write(p []byte) (int, error) {
	if !c.handshaken.Load() {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *serverConn) handshake() error {
	c.hsOnce.Do(func() {
		// The deadline bounds the handshake. A context would do the same
		// at the cost of a goroutine that watches it.
		_ = c.raw.SetDeadline(time.Now().Add(c.srv.cfg.HeaderTimeout))
		err := c.Conn.Handshake()
		_ = c.raw.SetDeadline(time.Time{})
		if err != nil {
			c.hsErr = err
			c.srv.handshakeFailed(c, err)
			return
		}
		c.id = identity.FromCertificate(c.Conn.ConnectionState().PeerCertificates[0])
		c.peer = c.raw.RemoteAddr().String()
		c.handshaken.Store(true)
		c.srv.conns.add(c)
	})
	return c.hsErr
}

// CloseWrite sends a TLS close_notify alert, which the client reads as the
// end of the stream, and leaves the connection open for reading.
func (c *serverConn) CloseWrite() error {
	return c.Conn.CloseWrite()
}

func (c *serverConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		cancel := c.cancel
		c.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		c.srv.untrack(c)
		if c.handshaken.Load() {
			c.srv.conns.remove(c)
		}
		// A close_notify could block for seconds on a client that does not
		// read, so the socket is closed without one. HTTP/1.1 clients treat
		// the end of the TCP stream as the end of the connection.
		err = c.raw.Close()
		c.release()
		c.srv.metrics.connClosed()
	})
	return err
}

// connRegistry tracks handshaken connections by certificate serial, so that
// revocation and shutdown can close them.
type connRegistry struct {
	mu       sync.Mutex
	bySerial map[string]map[*serverConn]struct{}
}

func (r *connRegistry) add(c *serverConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bySerial == nil {
		r.bySerial = map[string]map[*serverConn]struct{}{}
	}
	set := r.bySerial[c.id.Serial]
	if set == nil {
		set = map[*serverConn]struct{}{}
		r.bySerial[c.id.Serial] = set
	}
	set[c] = struct{}{}
}

func (r *connRegistry) remove(c *serverConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.bySerial[c.id.Serial]
	delete(set, c)
	if len(set) == 0 {
		delete(r.bySerial, c.id.Serial)
	}
}

// matching returns the open connections whose serial satisfies match.
func (r *connRegistry) matching(match func(serial string) bool) []*serverConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*serverConn
	for serial, set := range r.bySerial {
		if !match(serial) {
			continue
		}
		for c := range set {
			out = append(out, c)
		}
	}
	return out
}
