package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxUnframedBody is how much body a response without a Content-Length may
// write before the gateway commits to chunked encoding. A shorter body that
// ends without a flush is sent with its length instead.
const maxUnframedBody = 2 << 10

// responseWriter is the http.ResponseWriter of one request on the gateway's
// HTTP/1.1 loop. It also implements http.Flusher, http.Hijacker, and
// FlushError and EnableFullDuplex for http.ResponseController.
type responseWriter struct {
	conn *serverConn
	req  *http.Request
	bw   *bufio.Writer
	// br is the request's reader, handed over by Hijack with the bytes
	// the client sent after the request.
	br   *bufio.Reader
	body *requestBody

	header      http.Header
	status      int
	wroteHeader bool
	// mu orders the head, once committed, after a 100 Continue that the
	// goroutine reading the request body may be writing.
	mu        sync.Mutex
	committed bool
	// contentLength is the declared length of the body, or -1.
	contentLength int64
	written       int64
	chunked       bool
	noBody        bool
	fullDuplex    bool
	closeAfter    bool
	hijacked      bool
	// unframed holds body bytes written before the framing is chosen.
	unframed []byte
	err      error

	// watchDone is set while a read watches for the client going away.
	watchDone chan struct{}
}

func newResponseWriter(c *serverConn, req *http.Request, bw *bufio.Writer, br *bufio.Reader) *responseWriter {
	return &responseWriter{
		conn:          c,
		req:           req,
		bw:            bw,
		br:            br,
		header:        make(http.Header),
		contentLength: -1,
	}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response goes out at once, before the final
		// one.
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.committed {
			writeStatusLine(w.bw, code)
			_ = w.header.Write(w.bw)
			w.bw.WriteString("\r\n")
			w.setErr(w.bw.Flush())
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		} else {
			w.header.Del("Content-Length")
		}
	}
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent ||
		code == http.StatusNotModified || code < 200
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if !w.committed {
		if w.contentLength < 0 && len(w.unframed)+len(p) <= maxUnframedBody {
			w.unframed = append(w.unframed, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	return w.writeBody(p)
}

// FlushError sends the head and everything written so far to the client.
func (w *responseWriter) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if w.err == nil {
		w.setErr(w.bw.Flush())
	}
	w.watchClient()
	return w.err
}

// Flush is FlushError for callers that use http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// EnableFullDuplex lets the handler read the request body after the
// response has started. The unread rest of the body is then not drained
// before the response head.
func (w *responseWriter) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// Hijack hands the connection to the caller. The returned reader holds any
// bytes the client sent after the request.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader {
		return nil, nil, errors.New("dockmoat: cannot hijack a connection after the response has started")
	}
	w.stopWatch()
	w.mu.Lock()
	w.committed = true
	w.mu.Unlock()
	w.hijacked = true
	return w.conn, bufio.NewReadWriter(w.br, w.bw), nil
}

// writeContinue sends 100 Continue unless the response has started. The
// body reader calls it before its first read.
func (w *responseWriter) writeContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed || w.err != nil {
		return
	}
	w.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.setErr(w.bw.Flush())
}

// commit chooses the framing of the body and writes the head. final is set
// when the handler has returned, so the unframed bytes are the whole body.
func (w *responseWriter) commit(final bool) {
	if w.req.Close || !w.req.ProtoAtLeast(1, 1) || w.conn.srv.inShutdown.Load() {
		w.closeAfter = true
	}
	if w.body != nil && !w.fullDuplex && !w.closeAfter && !w.body.done() {
		// The response starts before the body was read. A short rest of
		// the body is dropped so that the connection can carry the next
		// request, as net/http's server does, and a long one closes it.
		_ = w.conn.Conn.SetReadDeadline(time.Now().Add(w.conn.srv.cfg.HeaderTimeout))
		if !w.body.discard(maxDiscardedBody) {
			w.closeAfter = true
		}
		_ = w.conn.Conn.SetReadDeadline(time.Time{})
	}
	if !w.noBody && w.contentLength < 0 {
		switch {
		case final:
			w.contentLength = int64(len(w.unframed))
		case w.req.ProtoAtLeast(1, 1):
			w.chunked = true
		default:
			// An HTTP/1.0 client reads the body until the connection
			// closes.
			w.closeAfter = true
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	w.committed = true
	bw := w.bw
	writeStatusLine(w.bw, w.status)
	if _, ok := w.header["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(time.Now().UTC().AppendFormat(nil, http.TimeFormat))
		bw.WriteString("\r\n")
	}
	w.setErr(w.header.WriteSubset(bw, framingHeaders))
	if w.contentLength >= 0 && w.status != http.StatusNoContent && w.status >= 200 {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(w.contentLength, 10))
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.unframed) > 0 {
		unframed := w.unframed
		w.unframed = nil
		w.mu.Unlock()
		_, _ = w.writeBody(unframed)
		w.mu.Lock()
	}
}

// framingHeaders are the header fields that commit writes itself.
var framingHeaders = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true,
}

// writeStatusLine writes the HTTP/1.1 status line of code to bw.
func writeStatusLine(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(text)
	bw.WriteString("\r\n")
}

func (w *responseWriter) writeBody(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	var tooLong error
	if w.contentLength >= 0 {
		if left := w.contentLength - w.written; int64(len(p)) > left {
			p = p[:left]
			tooLong = http.ErrContentLength
			w.closeAfter = true
		}
	}
	if len(p) == 0 {
		return 0, tooLong
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		w.bw.WriteString("\r\n")
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	if w.chunked && err == nil {
		_, err = w.bw.WriteString("\r\n")
	}
	if err != nil {
		w.setErr(err)
		return n, err
	}
	return n, tooLong
}

func (w *responseWriter) setErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// finish completes the response after the handler has returned.
func (w *responseWriter) finish() {
	if w.hijacked {
		return
	}
	w.stopWatch()
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked && w.err == nil {
		if w.req.Context().Err() != nil {
			// The connection is closing, for a shutdown, a revocation or
			// a departed client, and has cut the stream. The last chunk
			// would tell the client that the body was complete.
			w.closeAfter = true
		} else {
			w.bw.WriteString("0\r\n\r\n")
		}
	}
	if w.contentLength >= 0 && w.written < w.contentLength && !w.noBody {
		// The client expects more bytes than were sent, so closing the
		// connection shows it that the body was cut short.
		w.closeAfter = true
	}
	if w.err == nil {
		w.setErr(w.bw.Flush())
	}
}

// watchClient starts a read that cancels the request when the client goes
// away, so that a streamed response such as an event stream does not
// outlive its client. It runs only when the client has nothing more to send
// for this request.
func (w *responseWriter) watchClient() {
	if w.watchDone != nil || w.hijacked || w.br.Buffered() > 0 ||
		w.body != nil && !w.body.done() {
		return
	}
	c := w.conn
	done := make(chan struct{})
	w.watchDone = done
	go func() {
		defer close(done)
		var b [1]byte
		n, err := c.Conn.Read(b[:])
		if n == 1 {
			// The client sent the start of its next request.
			c.reader.unread(b[0])
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// stopWatch ended the read.
			return
		}
		// The client has gone, so the connection closes, which ends the
		// request's context and with it the request to the daemon.
		c.Close()
	}()
}

// stopWatch ends the read of watchClient and waits for it.
func (w *responseWriter) stopWatch() {
	if w.watchDone == nil {
		return
	}
	_ = w.conn.Conn.SetReadDeadline(aLongTimeAgo)
	<-w.watchDone
	w.watchDone = nil
	_ = w.conn.Conn.SetReadDeadline(time.Time{})
}
