package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dockmoat/dockmoat/internal/audit"
)

// hijackGrace is how long the client may keep sending after the daemon has
// ended its side of a hijacked stream. dockerd closes the whole connection
// when an attach or exec stream ends, so later client bytes go nowhere. The
// grace only lets the client read the end of the stream and close first.
const hijackGrace = 10 * time.Second

// isHijackRequest reports whether the daemon may take over the connection
// for r: an upgrade request, or a POST to attach or exec start, which
// clients older than the upgrade handshake send without Upgrade headers.
func isHijackRequest(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	if r.Method != http.MethodPost {
		return false
	}
	path := stripVersion(r.URL.Path)
	switch {
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/attach"):
		return true
	case strings.HasPrefix(path, "/exec/") && strings.HasSuffix(path, "/start"):
		return true
	}
	return false
}

// stripVersion removes a "/vX.Y" prefix from path.
func stripVersion(path string) string {
	if v := apiVersion(path); v != "" {
		return path[len("/v")+len(v):]
	}
	return path
}

// serveHijack forwards a request the daemon may upgrade on a connection of
// its own. If the daemon switches to a raw stream (101, or 200 with a Docker
// raw-stream body and no length), the client connection is hijacked and
// bytes are copied both ways until both sides are done. Any other response
// is forwarded like an ordinary one.
func (s *Server) serveHijack(w http.ResponseWriter, r *http.Request, ex *exchange) {
	up, err := s.upstream.dial(r.Context())
	if err != nil {
		s.upstreamFailed(w, r, ex, err)
		return
	}
	defer up.Close()
	// Until the stream starts, a client that goes away cancels the request.
	stop := context.AfterFunc(r.Context(), func() { up.Close() })

	upgrade := r.Header["Upgrade"]
	out := s.outgoingRequest(r, ex)
	if len(upgrade) > 0 {
		out.Header["Upgrade"] = upgrade
		out.Header["Connection"] = []string{"Upgrade"}
	}
	upBuf := bufio.NewReader(up)
	resp, err := sendRaw(up, upBuf, out)
	if err != nil {
		stop()
		s.upstreamFailed(w, r, ex, err)
		return
	}
	if !isRawStream(resp) {
		defer stop()
		s.relayResponse(w, ex, resp)
		return
	}
	if !stop() {
		// The client went away while the daemon was sending its response.
		return
	}

	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		ex.err = err
		return
	}
	s.pipeSession(r, ex, resp, client, clientBuf, up, upBuf)
}

func sendRaw(up net.Conn, upBuf *bufio.Reader, out *http.Request) (*http.Response, error) {
	if err := out.Write(up); err != nil {
		return nil, err
	}
	return http.ReadResponse(upBuf, out)
}

// isRawStream reports whether the daemon has switched the connection to a
// raw stream. Besides 101, dockerd responds to attach and exec requests
// without an Upgrade header with 200 and a stream that lasts until close.
func isRawStream(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return true
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0 {
		return false
	}
	ct := resp.Header.Get("Content-Type")
	return ct == "application/vnd.docker.raw-stream" || ct == "application/vnd.docker.multiplexed-stream"
}

func (s *Server) relayResponse(w http.ResponseWriter, ex *exchange, resp *http.Response) {
	defer resp.Body.Close()
	n, err := relay(w, resp)
	ex.status = resp.StatusCode
	ex.bytesOut = n
	if err != nil {
		ex.err = err
		ex.cut = resp.ContentLength < 0 && !errors.Is(err, context.Canceled)
	}
}

// pipeSession writes the daemon's response head to the hijacked client and
// copies the raw stream both ways.
func (s *Server) pipeSession(r *http.Request, ex *exchange, resp *http.Response,
	client net.Conn, clientBuf *bufio.ReadWriter, up net.Conn, upBuf *bufio.Reader) {
	defer client.Close()
	ex.hijacked = true
	ex.status = resp.StatusCode
	s.metrics.hijackStarted()
	defer s.metrics.hijackEnded()
	_ = client.SetDeadline(time.Time{})

	if err := writeResponseHead(clientBuf.Writer, resp); err != nil {
		ex.err = err
		s.finish(r, ex, audit.EventHijackEnd)
		return
	}
	s.cfg.Audit.Write(s.auditRecord(r, ex, ex.conn.id, audit.EventHijackStart))
	if s.logger.Enabled(r.Context(), slog.LevelDebug) {
		s.logger.Debug("hijacked session started", "request_id", ex.id, "client", ex.conn.id.Name, "path", r.URL.Path)
	}

	in, out := pipe(client, clientBuf.Reader, up, upBuf)
	ex.bytesIn.Add(in)
	ex.bytesOut = out
	s.finish(r, ex, audit.EventHijackEnd)
}

// writeResponseHead writes the status line and header of resp as the daemon
// sent them, including its reason phrase ("101 UPGRADED").
func writeResponseHead(w *bufio.Writer, resp *http.Response) error {
	w.WriteString("HTTP/1.1 ")
	w.WriteString(resp.Status)
	w.WriteString("\r\n")
	if err := resp.Header.Write(w); err != nil {
		return err
	}
	w.WriteString("\r\n")
	return w.Flush()
}

// pipe copies client to up and up to client until both directions end, and
// returns the bytes copied each way. The end of one direction is forwarded as
// a half-close, so that "echo hi | docker exec -i c cat" delivers the end of
// stdin to cat and still receives its output. An error in either direction
// closes both connections.
func pipe(client net.Conn, clientBuf *bufio.Reader, up net.Conn, upBuf *bufio.Reader) (in, out int64) {
	inDone := make(chan int64, 1)
	go func() {
		n, err := copyBuffered(up, clientBuf, client)
		if err == nil {
			err = closeWrite(up)
		}
		if err != nil {
			up.Close()
			client.Close()
		}
		inDone <- n
	}()

	out, err := copyBuffered(client, upBuf, up)
	if err == nil {
		err = closeWrite(client)
	}
	if err != nil {
		up.Close()
		client.Close()
	} else {
		_ = client.SetReadDeadline(time.Now().Add(hijackGrace))
	}
	in = <-inDone
	return in, out
}

// copyBuffered copies what buf has already read from src, then the rest of
// src, to dst. It returns nil at the end of src.
func copyBuffered(dst io.Writer, buf *bufio.Reader, src io.Reader) (int64, error) {
	var written int64
	if n := buf.Buffered(); n > 0 {
		b, _ := buf.Peek(n)
		m, err := dst.Write(b)
		written += int64(m)
		if err != nil {
			return written, err
		}
		buf.Discard(n)
	}
	n, err := copyStream(dst, src, nil)
	return written + n, err
}

type closeWriter interface{ CloseWrite() error }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}
