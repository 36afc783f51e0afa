package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"sync"
	"syscall"
	"time"
)

// pooledConn is a keep-alive connection to the Docker socket with its
// buffers, reused for requests without a body.
type pooledConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// connPool holds idle connections to the Docker socket. Requests without a
// body, which are most API calls, are written and their responses read on
// the handler's own goroutine, which saves the two goroutine hand-offs per
// request of http.Transport.
type connPool struct {
	mu   sync.Mutex
	idle []*pooledConn
	max  int
}

func (p *connPool) get() *pooledConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	c := p.idle[n-1]
	p.idle = p.idle[:n-1]
	return c
}

func (p *connPool) put(c *pooledConn) {
	p.mu.Lock()
	if len(p.idle) < p.max {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.Close()
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// roundTripNoBody sends out, which has no body, and returns the response.
// The response body returns the connection to the pool once read to the
// end. A reused connection that fails before any response byte arrives is
// retried once on a new one when nothing can have reached the daemon: a
// write error, or a replayable method (GET, HEAD, OPTIONS).
func (u *upstream) roundTripNoBody(ctx context.Context, out *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		c := u.pool.get()
		reused := c != nil
		if !reused {
			conn, err := u.dial(ctx)
			if err != nil {
				return nil, err
			}
			c = &pooledConn{Conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}
		}

		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
		wrote, resp, err := exchangeOn(c, out)
		if err == nil {
			resp.Body = &pooledBody{ReadCloser: resp.Body, conn: c, pool: &u.pool, stop: stop, keep: !resp.Close}
			return resp, nil
		}
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !reused || attempt > 0 || !(!wrote || isReplayable(out.Method)) || !isStaleConnError(err) {
			return nil, err
		}
	}
}

func exchangeOn(c *pooledConn, out *http.Request) (wrote bool, resp *http.Response, err error) {
	if err := writeRequestHead(c.bw, out); err != nil {
		return false, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return false, nil, err
	}
	resp, err = http.ReadResponse(c.br, out)
	return true, resp, err
}

func isReplayable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// isStaleConnError reports whether err is how a keep-alive connection that
// the daemon closed while idle fails, for example after a dockerd restart.
func isStaleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// pooledBody is a response body that returns its connection to the pool
// when read to the end, and closes it otherwise.
type pooledBody struct {
	io.ReadCloser
	conn *pooledConn
	pool *connPool
	stop func() bool
	keep bool
	done bool
}

func (b *pooledBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.release(true)
	}
	return n, err
}

func (b *pooledBody) Close() error {
	if !b.done {
		b.done = true
		b.release(false)
	}
	return nil
}

// release pools the connection when the body ended cleanly, the daemon
// allows keep-alive and the cancel hook has not fired, and closes it
// otherwise.
func (b *pooledBody) release(complete bool) {
	if b.stop() && complete && b.keep && b.conn.br.Buffered() == 0 {
		b.pool.put(b.conn)
		return
	}
	b.conn.Close()
}

// requestHeadExclude lists the header fields that writeRequestHead writes
// from the request's own fields, as http.Request.Write does.
var requestHeadExclude = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Length": true,
	"Transfer-Encoding": true, "Trailer": true,
}

// defaultUserAgent is the User-Agent that http.Request.Write sends for a
// request without one.
const defaultUserAgent = "Go-http-client/1.1"

// writeRequestHead writes out, which has no body, to w as http.Request.Write
// (Go 1.26) does, without its fmt and allocation costs. It writes the request
// line, Host, User-Agent (Go's default when the header is missing),
// "Content-Length: 0" for POST, PUT and PATCH, and the other header fields
// through http.Header.WriteSubset. A host or value that Request.Write would
// rewrite or reject goes through Request.Write itself. TestWriteRequestHead
// compares the two byte for byte.
func writeRequestHead(w *bufio.Writer, out *http.Request) error {
	host := out.Host
	if host == "" {
		host = out.URL.Host
	}
	uri := out.URL.RequestURI()
	userAgent := defaultUserAgent
	if _, ok := out.Header["User-Agent"]; ok {
		userAgent = textproto.TrimString(out.Header.Get("User-Agent"))
	}
	if !plainHost(host) || hasControlByte(uri) || hasControlByte(userAgent) {
		return out.Write(w)
	}

	w.WriteString(out.Method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if userAgent != "" {
		w.WriteString("User-Agent: ")
		w.WriteString(userAgent)
		w.WriteString("\r\n")
	}
	switch out.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	if err := out.Header.WriteSubset(w, requestHeadExclude); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// plainHost reports whether host is a non-empty name or address with an
// optional port in plain ASCII, which Request.Write sends unchanged. IPv6
// zones, non-ASCII names and anything else are left to Request.Write.
func plainHost(host string) bool {
	return host != "" && alnumOr(host, ".-_:[]")
}

func hasControlByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
