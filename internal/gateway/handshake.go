package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Handshake failure reasons, used as the "reason" metrics label and log
// field.
const (
	reasonNoCertificate = "no_certificate"
	reasonUnknownCA     = "unknown_ca"
	reasonRevoked       = "revoked"
	reasonExpired       = "expired"
	reasonKeyUsage      = "wrong_key_usage"
	reasonPlainHTTP     = "plain_http"
	reasonClientAlert   = "client_alert"
	reasonTimeout       = "timeout"
	reasonClosed        = "closed"
	reasonOther         = "other"
)

// plainHTTPResponse is sent to a client that speaks plain HTTP to the TLS
// port. The first line of the body is the text Go's net/http server, and so
// dockerd, sends in the same case.
const plainHTTPResponse = "HTTP/1.0 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n" +
	"dockmoat: this port requires TLS with a client certificate; " +
	"set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem\n"

// handshakeFailed sends the 400 response to a plain HTTP client, then logs
// and counts a failed handshake.
func (s *Server) handshakeFailed(c *serverConn, err error) {
	reason := classifyHandshakeError(err)
	if reason == reasonPlainHTTP {
		var rec tls.RecordHeaderError
		if errors.As(err, &rec) && rec.Conn != nil {
			_ = rec.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(rec.Conn, plainHTTPResponse)
		}
	}
	s.metrics.handshakeFailed(reason)
	s.failureLog.log(s.logger, c.raw.RemoteAddr(), reason, err)
}

func classifyHandshakeError(err error) string {
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		if looksLikeHTTP(rec.RecordHeader[:]) {
			return reasonPlainHTTP
		}
		return reasonOther
	}

	if errors.Is(err, errRevoked) {
		return reasonRevoked
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return reasonUnknownCA
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		switch invalid.Reason {
		case x509.Expired:
			return reasonExpired
		case x509.IncompatibleUsage:
			return reasonKeyUsage
		}
		return reasonOther
	}

	var alert tls.AlertError
	if errors.As(err, &alert) {
		return reasonClientAlert
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return reasonTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return reasonClosed
	}

	// The remaining causes have no exported error type in crypto/tls and
	// net, so they are told apart by message.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "didn't provide a certificate"):
		return reasonNoCertificate
	case strings.Contains(msg, "remote error"):
		return reasonClientAlert
	case strings.Contains(msg, "connection reset"):
		return reasonClosed
	}
	return reasonOther
}

// looksLikeHTTP reports whether the first bytes of a connection start an
// HTTP/1.x request line.
func looksLikeHTTP(b []byte) bool {
	for _, method := range []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE", "OPTIONS", "PATCH", "CONNECT"} {
		n := min(len(b), len(method))
		if string(b[:n]) == method[:n] {
			return true
		}
	}
	return false
}

// failureLog logs failed handshakes, at most burst lines per reason in each
// window. The first line after a quiet window reports how many were
// suppressed, so a scanner or a misconfigured client cannot flood the log.
type failureLog struct {
	mu     sync.Mutex
	window time.Duration
	burst  int
	counts map[string]*reasonCount
}

type reasonCount struct {
	start      time.Time
	logged     int
	suppressed int
}

func newFailureLog(window time.Duration, burst int) *failureLog {
	return &failureLog{window: window, burst: burst, counts: map[string]*reasonCount{}}
}

func (f *failureLog) log(logger *slog.Logger, peer net.Addr, reason string, err error) {
	if !logger.Enabled(context.Background(), slog.LevelWarn) {
		return
	}
	suppressed, ok := f.allow(reason, time.Now())
	if !ok {
		return
	}
	attrs := []any{"peer", peer.String(), "reason", reason, "error", err.Error()}
	if subject := failedSubject(err); subject != "" {
		attrs = append(attrs, "subject", subject)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	logger.Warn("TLS handshake failed", attrs...)
}

// allow reports whether a line for reason may be logged now, and how many
// lines of that reason were suppressed since the last one logged.
func (f *failureLog) allow(reason string, now time.Time) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.counts[reason]
	if c == nil {
		c = &reasonCount{start: now}
		f.counts[reason] = c
	}
	if now.Sub(c.start) >= f.window {
		suppressed := c.suppressed
		*c = reasonCount{start: now, logged: 1}
		return suppressed, true
	}
	if c.logged < f.burst {
		c.logged++
		return 0, true
	}
	c.suppressed++
	return 0, false
}

// failedSubject returns the subject of the client certificate that failed
// verification, or "" when the client sent none.
func failedSubject(err error) string {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) && len(verr.UnverifiedCertificates) > 0 {
		return verr.UnverifiedCertificates[0].Subject.String()
	}
	var revoked *revokedError
	if errors.As(err, &revoked) {
		return revoked.cert.Subject.String()
	}
	return ""
}
