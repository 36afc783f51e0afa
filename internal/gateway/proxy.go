package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dockmoat/dockmoat/internal/audit"
	"github.com/dockmoat/dockmoat/internal/identity"
)

// exchange is the state of one request as it passes through the gateway.
type exchange struct {
	start    time.Time
	id       string
	conn     *serverConn
	decision Decision
	status   int
	// bytesIn is atomic because the transport may still be sending the
	// request body from its own goroutine when the response has ended.
	bytesIn  atomic.Int64
	bytesOut int64
	err      error
	// hijacked is set when the request became a raw stream, which writes
	// its own audit records.
	hijacked bool
	// cut is set when the daemon's response of unknown length broke off,
	// so the client must see its connection end without the last chunk.
	cut bool
}

// handle authorizes one request of a handshaken connection, forwards it
// or denies it, and writes its audit record.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, conn *serverConn) {
	ex := &exchange{start: time.Now(), id: s.nextRequestID(), conn: conn}
	if s.logger.Enabled(r.Context(), slog.LevelDebug) {
		s.logger.Debug("request", "request_id", ex.id, "client", conn.id.Name,
			"method", r.Method, "path", r.URL.Path)
	}
	ex.decision = s.cfg.Authorizer.Authorize(conn.id, r)
	switch {
	case !ex.decision.Allow:
		s.deny(w, ex)
	case isHijackRequest(r):
		s.serveHijack(w, r, ex)
	default:
		s.forward(w, r, ex)
	}
	if !ex.hijacked {
		s.finish(r, ex, audit.EventRequest)
	}
	if ex.cut {
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) deny(w http.ResponseWriter, ex *exchange) {
	status := ex.decision.Status
	if status == 0 {
		status = http.StatusForbidden
	}
	msg := ex.decision.Message
	if msg == "" {
		msg = "dockmoat: request denied"
	}
	writeJSONError(w, status, msg)
	ex.status = status
}

// writeJSONError sends a Docker-style error body, {"message": "..."}, which
// the docker CLI prints as "Error response from daemon: ...".
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// forward sends an allowed request to the daemon and streams the response
// back. Neither body is buffered whole.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, ex *exchange) {
	out := s.outgoingRequest(r, ex)
	if out.Body != nil {
		// The daemon may answer before it has read the whole body, for
		// example with a build's first progress lines, so reading the
		// request body must stay possible after the response has started.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	resp, err := s.upstream.roundTrip(r.Context(), out)
	if err != nil {
		s.upstreamFailed(w, r, ex, err)
		return
	}
	defer resp.Body.Close()

	n, err := relay(w, resp)
	ex.status = resp.StatusCode
	ex.bytesOut = n
	if err != nil && !errors.Is(err, context.Canceled) {
		ex.err = err
		ex.cut = resp.ContentLength < 0
	}
}

// relay sends resp's status, header and body to w. The header of a body of
// unknown length is flushed at once: the docker CLI 28 sends POST
// /containers/{id}/wait before starting a container and waits for that
// response header, which dockerd sends long before any body byte.
func relay(w http.ResponseWriter, resp *http.Response) (int64, error) {
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	streaming := resp.ContentLength < 0
	if streaming {
		if err := http.NewResponseController(w).Flush(); err != nil {
			return 0, err
		}
	}
	return copyResponse(w, resp.Body, streaming)
}

// outgoingRequest builds the request that forwards r to the daemon, with
// r's header less its hop-by-hop fields. It carries no context: the caller
// passes r's context to roundTrip, or closes the daemon connection itself
// when r's context ends.
func (s *Server) outgoingRequest(r *http.Request, ex *exchange) *http.Request {
	out := &http.Request{
		Method: r.Method,
		URL: &url.URL{
			Scheme:   "http",
			Host:     upstreamHost,
			Path:     r.URL.Path,
			RawPath:  r.URL.RawPath,
			RawQuery: r.URL.RawQuery,
		},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        r.Header,
		ContentLength: r.ContentLength,
		Host:          r.Host,
	}
	removeHopHeaders(r.Header)
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		out.Body = &countingReader{r: r.Body, n: &ex.bytesIn}
	}
	return out
}

func (s *Server) upstreamFailed(w http.ResponseWriter, r *http.Request, ex *exchange, err error) {
	if r.Context().Err() != nil {
		// The client went away, so no response can be sent.
		ex.err = r.Context().Err()
		return
	}
	ex.err = err
	ex.status = http.StatusBadGateway
	s.logger.Error("Docker daemon request failed",
		"request_id", ex.id, "docker_socket", s.cfg.DockerSocket, "error", err)
	writeJSONError(w, http.StatusBadGateway, s.upstreamErrorMessage(err))
}

func (s *Server) upstreamErrorMessage(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		hint := "is dockerd running?"
		if errors.Is(err, syscall.EACCES) {
			hint = "the gateway's user may not open the socket; run it as root or in the docker group"
		}
		return "dockmoat: cannot connect to the Docker daemon at " + s.upstream.url + ": " +
			opErr.Err.Error() + "; " + hint
	}
	return "dockmoat: request to the Docker daemon at " + s.upstream.url + " failed: " + err.Error()
}

// finish writes the audit record and the metrics of a completed exchange.
func (s *Server) finish(r *http.Request, ex *exchange, event string) {
	elapsed := time.Since(ex.start)
	id := ex.conn.id
	s.metrics.request(id.Name, &ex.decision, ex.status, ex.bytesIn.Load(), ex.bytesOut, elapsed)
	rec := s.auditRecord(r, ex, id, event)
	rec.DurationSeconds = elapsed.Seconds()
	s.cfg.Audit.Write(rec)
}

func (s *Server) auditRecord(r *http.Request, ex *exchange, id identity.Identity, event string) *audit.Record {
	rec := &audit.Record{
		Time:       time.Now().UTC(),
		Event:      event,
		RequestID:  ex.id,
		Client:     id.Name,
		Serial:     id.Serial,
		Groups:     id.Groups,
		RemoteAddr: ex.conn.peer,
		Method:     r.Method,
		Path:       r.URL.Path,
		APIVersion: ex.decision.APIVersion,
		Operation:  ex.decision.Operation,
		Decision:   "deny",
		Rule:       ex.decision.Rule,
		Status:     ex.status,
		BytesIn:    ex.bytesIn.Load(),
		BytesOut:   ex.bytesOut,
	}
	if ex.decision.Allow {
		rec.Decision = "allow"
	}
	if ex.err != nil {
		rec.Error = ex.err.Error()
	}
	return rec
}

// isHopHeader reports whether name, in canonical form, is one of the
// hop-by-hop headers of RFC 9110 section 7.6.1, which a proxy must not
// forward, or is listed in the message's Connection header.
func isHopHeader(name string, connection []string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	for _, v := range connection {
		for _, token := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(token)) == name {
				return true
			}
		}
	}
	return false
}

// removeHopHeaders deletes the hop-by-hop fields from h.
func removeHopHeaders(h http.Header) {
	connection := h["Connection"]
	for k := range h {
		if isHopHeader(k, connection) {
			delete(h, k)
		}
	}
}

// copyHeader copies src to dst without hop-by-hop headers. The value slices
// are shared, which is safe because neither side changes them.
func copyHeader(dst, src http.Header) {
	connection := src["Connection"]
	for k, v := range src {
		if isHopHeader(k, connection) {
			continue
		}
		dst[k] = v
	}
}

// copyResponse copies body to w. A body of unknown length, such as the
// stream of logs -f or events, is flushed after every read so the client
// sees each line when the daemon sends it.
func copyResponse(w http.ResponseWriter, body io.Reader, flush bool) (int64, error) {
	var flushFunc func()
	if flusher, ok := w.(http.Flusher); ok && flush {
		flushFunc = flusher.Flush
	}
	return copyStream(w, body, flushFunc)
}

// countingReader counts the bytes read through it into n.
type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
