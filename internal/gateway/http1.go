package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
)

// The gateway serves HTTP/1.1 on its own loop rather than through
// net/http.Server, so that an idle connection keeps only its TLS state and
// its goroutine. The read and write buffers come from pools for the length
// of one request. A read that detects a departed client runs only while a
// streamed response is open, not during every request. Requests are parsed
// by http.ReadRequest, the parser of net/http's server, with the same extra
// checks that server makes.

// maxHeaderBytes bounds the request line and header of one request.
const maxHeaderBytes = 1 << 20

// maxDiscardedBody is how much of a request body the gateway reads and
// drops to keep the connection open when the handler did not read it, as
// net/http's server does. A longer body closes the connection instead.
const maxDiscardedBody = 256 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// connState is the stage of a client connection between accept and close.
type connState uint8

const (
	// stateNew covers the TLS handshake and the wait for the first request.
	stateNew connState = iota
	// stateIdle is the wait for the next request.
	stateIdle
	// stateActive is a request in progress, including a hijacked stream.
	stateActive
	// stateClosing is set by Shutdown when it closes a waiting connection.
	stateClosing
)

// aLongTimeAgo is a deadline in the past, which makes a blocked read return.
var aLongTimeAgo = time.Unix(1, 0)

// serveConn runs the TLS handshake of a new client connection and, when it
// succeeds, serves the connection's requests.
func (s *Server) serveConn(c *serverConn) {
	if err := c.handshake(); err != nil || s.revokedDuringHandshake(c) {
		c.Close()
		return
	}
	// The first request must start within the header timeout after the
	// handshake.
	go s.serveRequest(c, s.cfg.HeaderTimeout)
}

// revokedDuringHandshake reports whether the CRL in force now revokes the
// client's certificate. The handshake checked the CRL that was in force at
// the ClientHello. A reload during the rest of the handshake can revoke the
// certificate before the handshake registers the connection, and then the
// reload's closeRevoked does not find it. Reload stores the new state before
// it scans the registry, and the handshake registers the connection before
// this check runs, so the scan or this check finds the revocation.
func (s *Server) revokedDuringHandshake(c *serverConn) bool {
	leaf := c.Conn.ConnectionState().PeerCertificates[0]
	if !s.state.Load().isRevoked(leaf) {
		return false
	}
	s.logger.Warn("closing connection of revoked certificate",
		"client", c.id.Name, "serial", c.id.Serial, "peer", c.peer)
	return true
}

// serveRequest waits up to wait for a request on c and serves it. If the
// connection stays open, a new goroutine waits for the next request.
//
// A fresh goroutine for each wait keeps idle connections small. The
// handshake and the request path grow a goroutine's stack to 8 KiB or
// more, and the runtime halves a stack at most once per garbage collection.
// A new goroutine's stack starts at 2 KiB, and the wait needs little more.
func (s *Server) serveRequest(c *serverConn, wait time.Duration) {
	next := false
	defer func() {
		if v := recover(); v != nil {
			// A handler panics with http.ErrAbortHandler to cut its
			// response short, and net/http's server logs no stack for it.
			if v != http.ErrAbortHandler {
				stack := make([]byte, 16<<10)
				stack = stack[:runtime.Stack(stack, false)]
				s.logger.Error("panic while serving a request",
					"peer", c.raw.RemoteAddr().String(), "panic", fmt.Sprint(v), "stack", string(stack))
			}
			next = false
		}
		if !next {
			c.Close()
		}
	}()
	if c.buffered() == 0 && !c.waitForRequest(wait) {
		return
	}
	if !c.setState(stateActive) {
		return
	}
	if !s.serveOne(c) || s.inShutdown.Load() || !c.setState(stateIdle) {
		return
	}
	next = true
	go s.serveRequest(c, s.cfg.IdleTimeout)
}

// waitForRequest blocks until the client sends the first byte of a request,
// holding no buffer, and reports whether one came within timeout.
func (c *serverConn) waitForRequest(timeout time.Duration) bool {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	n, err := c.Conn.Read(b[:])
	if n == 0 || err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	c.reader.unread(b[0])
	return true
}

// setState moves the connection to state and reports whether it may go on,
// which it may not once Shutdown has closed it.
func (c *serverConn) setState(state connState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateClosing {
		return false
	}
	c.state = state
	return true
}

// closeIfWaiting closes the connection if it has no request in progress and
// reports whether it did.
func (c *serverConn) closeIfWaiting() bool {
	c.mu.Lock()
	if c.state != stateNew && c.state != stateIdle {
		c.mu.Unlock()
		return false
	}
	c.state = stateClosing
	c.mu.Unlock()
	c.Close()
	return true
}

// serveOne reads one request, runs it and writes its response. It reports
// whether the connection may carry another request.
func (s *Server) serveOne(c *serverConn) bool {
	br := c.pending
	c.pending = nil
	if br == nil {
		br = readerPool.Get().(*bufio.Reader)
		br.Reset(&c.reader)
	}
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c)
	// The buffers go back to the pools only when nothing can use them
	// any more: not after a hijack, and not while a request body may still
	// be read by the goroutine that sends it to the daemon.
	reusable := false
	defer func() {
		if reusable {
			c.keepReader(br)
			bw.Reset(nil)
			writerPool.Put(bw)
		}
	}()

	_ = c.Conn.SetReadDeadline(time.Now().Add(s.cfg.HeaderTimeout))
	c.reader.limit(maxHeaderBytes + 4<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		s.rejectRequest(c, bw, err)
		return false
	}
	c.reader.unlimit()
	_ = c.Conn.SetReadDeadline(time.Time{})
	if err := checkRequest(req); err != nil {
		s.rejectRequest(c, bw, err)
		return false
	}

	ctx := c.context()
	if ctx == nil {
		return false
	}
	req = req.WithContext(ctx)
	req.RemoteAddr = c.peer

	w := newResponseWriter(c, req, bw, br)
	var body *requestBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &requestBody{body: req.Body}
		if expectsContinue(req) {
			body.w = w
		}
		req.Body = body
		w.body = body
	}
	if expect := req.Header.Get("Expect"); expect != "" {
		req.Header.Del("Expect")
		if !strings.EqualFold(expect, "100-continue") {
			writeJSONError(w, http.StatusExpectationFailed, "dockmoat: unsupported Expect header "+quote(expect))
			w.closeAfter = true
			w.finish()
			return false
		}
	}

	s.handle(w, req, c)
	if w.hijacked {
		return false
	}
	w.finish()
	if body != nil && !body.done() {
		// An error or a closed connection leaves no response to protect.
		if w.err == nil && ctx.Err() == nil {
			c.closeWriteAndWait()
		}
		return false
	}
	if w.closeAfter || w.err != nil {
		return false
	}
	if body != nil {
		body.finish()
	}
	reusable = true
	return true
}

// rstAvoidanceDelay is how long a connection stays open after its last
// response when the client may still be sending the request. Closing a
// socket with unread input makes the kernel send a TCP reset, which can
// destroy the response before the client has read it. net/http's server
// waits 500 ms for the same reason.
const rstAvoidanceDelay = 500 * time.Millisecond

// closeWriteAndWait sends a close_notify alert after the response and waits
// rstAvoidanceDelay, so that a client still uploading a body, such as a build
// context that was denied, reads the response instead of a connection
// reset. The caller then closes the connection.
func (c *serverConn) closeWriteAndWait() {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.Conn.CloseWrite()
	time.Sleep(rstAvoidanceDelay)
}

// checkRequest makes the checks that net/http's server makes after parsing
// a request. http.ReadRequest has already moved the Host header field into
// req.Host and removed it, so a repeated Host field goes unnoticed. That is
// harmless because the gateway never routes by host and the daemon gets
// req.Host only.
func checkRequest(req *http.Request) error {
	if req.ProtoMajor == 2 && req.Method == "PRI" {
		return statusError{http.StatusBadRequest, "HTTP/2 is not served here; use HTTP/1.1"}
	}
	if req.ProtoMajor != 1 {
		return statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	if req.ProtoAtLeast(1, 1) && req.Host == "" {
		return statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if !validHostHeader(req.Host) {
		return statusError{http.StatusBadRequest, "malformed Host header"}
	}
	// http.ReadRequest accepts spaces in field names, as in
	// "Transfer-Encoding : chunked", which the gateway would then forward.
	// It already rejects control bytes in field values.
	for name := range req.Header {
		if !validHeaderName(name) {
			return statusError{http.StatusBadRequest, "invalid header name " + quote(name)}
		}
	}
	return nil
}

// validHeaderName reports whether name is a token, the form that RFC 9110
// section 5.1 gives field names.
func validHeaderName(name string) bool {
	return name != "" && alnumOr(name, "!#$%&'*+-.^_`|~")
}

// validHostHeader reports whether h holds only the bytes that a host, an
// IPv6 literal, a port and percent-encoding may use.
func validHostHeader(h string) bool {
	return alnumOr(h, "!$%&'()*+,-.:;=[]_~")
}

// alnumOr reports whether every byte of s is an ASCII letter, an ASCII digit
// or one of the bytes of extra.
func alnumOr(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// expectsContinue reports whether the client waits for 100 Continue before
// it sends the request body.
func expectsContinue(req *http.Request) bool {
	return req.ProtoAtLeast(1, 1) && req.ContentLength != 0 &&
		strings.EqualFold(req.Header.Get("Expect"), "100-continue")
}

// statusError is the status and reason of a request rejected before the
// handler runs.
type statusError struct {
	code int
	text string
}

func (e statusError) Error() string { return e.text }

// rejectRequest writes the error response to a request that could not be
// read or is malformed, as net/http's server does. The caller then closes
// the connection.
func (s *Server) rejectRequest(c *serverConn, bw *bufio.Writer, err error) {
	code, text := http.StatusBadRequest, ""
	var se statusError
	var ne net.Error
	var op *net.OpError
	switch {
	case c.reader.hitLimit:
		code = http.StatusRequestHeaderFieldsTooLarge
	case errors.As(err, &se):
		code, text = se.code, se.text
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed),
		errors.As(err, &ne) && ne.Timeout(), errors.As(err, &op) && op.Op == "read":
		// The client closed the connection or timed out, so no response
		// can reach it. The *url.Error of a malformed request target is a
		// net.Error too, but it gets the 400.
		return
	case strings.Contains(err.Error(), "unsupported transfer encoding"):
		// http.ReadRequest names an unknown Transfer-Encoding only in
		// the text of its error.
		code, text = http.StatusNotImplemented, "unsupported transfer encoding"
	}
	line := http.StatusText(code)
	if text != "" {
		line += ": " + text
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	writeStatusLine(bw, code)
	bw.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
	bw.WriteString(line)
	if bw.Flush() == nil && c.reader.hitLimit {
		// The client may still be sending the header.
		c.closeWriteAndWait()
	}
}

// context returns the context of the connection's requests, which Close
// cancels, or nil once the connection is closed. One context serves all the
// requests of a connection because a request's context needs to end only
// when the connection does.
func (c *serverConn) context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(context.Background())
	}
	return c.ctx
}

// connReader is the source of a request's bufio.Reader: the byte read while
// waiting for a request, then the TLS connection, up to a limit while a
// request header is read.
type connReader struct {
	conn     *serverConn
	ahead    byte
	hasAhead bool
	// remain is the number of bytes left to read while limited is set.
	remain   int64
	limited  bool
	hitLimit bool
}

func (r *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.limited {
		if r.remain <= 0 {
			r.hitLimit = true
			return 0, io.EOF
		}
		if int64(len(p)) > r.remain {
			p = p[:r.remain]
		}
	}
	if r.hasAhead {
		p[0] = r.ahead
		r.hasAhead = false
		r.remain--
		return 1, nil
	}
	n, err := r.conn.Conn.Read(p)
	r.remain -= int64(n)
	return n, err
}

func (r *connReader) unread(b byte) {
	r.ahead, r.hasAhead = b, true
}

func (r *connReader) limit(n int64) {
	r.limited, r.remain, r.hitLimit = true, n, false
}

func (r *connReader) unlimit() { r.limited = false }

// buffered returns how many bytes of the next request the connection has
// already read.
func (c *serverConn) buffered() int {
	n := 0
	if c.pending != nil {
		n = c.pending.Buffered()
	}
	if c.reader.hasAhead {
		n++
	}
	return n
}

// keepReader keeps br, the reader of the request that just ended, for the
// next request if its buffer holds the start of it, and otherwise returns it
// to the pool.
func (c *serverConn) keepReader(br *bufio.Reader) {
	if br.Buffered() > 0 {
		c.pending = br
		return
	}
	br.Reset(nil)
	readerPool.Put(br)
}

// requestBody is the body of a request as the handler and the daemon
// transport see it. It sends 100 Continue before the first read when the
// client asked for it, and records whether the body was read to its end.
type requestBody struct {
	mu     sync.Mutex
	body   io.ReadCloser
	w      *responseWriter // set while a 100 Continue is owed
	eof    bool
	closed bool
}

var errBodyClosed = errors.New("request body read after the request ended")

func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.w != nil {
		b.w.writeContinue()
		b.w = nil
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close ends reading for the handler. The rest of the body stays unread, and
// the connection is closed after the response unless the gateway can read
// and drop it.
func (b *requestBody) Close() error { return nil }

// done reports whether the body was read to its end.
func (b *requestBody) done() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

// discard reads and drops up to limit bytes of what is left of the body and
// reports whether it reached the end. A body that still owes the client a
// 100 Continue is not read: the client has not sent it.
func (b *requestBody) discard(limit int64) bool {
	b.mu.Lock()
	owed := b.w != nil
	b.mu.Unlock()
	if owed {
		return false
	}
	n, err := io.CopyN(io.Discard, b, limit+1)
	return n <= limit && errors.Is(err, io.EOF)
}

// finish stops all reading of the body, so that the reader it uses can
// serve the next request.
func (b *requestBody) finish() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// quote returns s, cut to 64 bytes, as a quoted string for a message.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}
