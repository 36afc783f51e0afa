package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the gateway. Create it with New, run it with Serve or
// ListenAndServe, and stop it with Shutdown.
type Server struct {
	cfg        Config
	logger     *slog.Logger
	metrics    *Metrics
	state      atomic.Pointer[tlsState]
	baseTLS    *tls.Config
	httpServer *http.Server
	upstream   *upstream
	conns      connRegistry
	failureLog *failureLog

	// hijacks counts open hijacked sessions, which the HTTP server does not
	// track, so that Shutdown can wait for them.
	hijacks atomic.Int64

	// requestPrefix and requestSeq make request IDs: a random prefix per
	// process and a counter.
	requestPrefix string
	requestSeq    atomic.Uint64

	reloadMu sync.Mutex
	// reloadFailed records that the last reload failed, so that the next
	// good one is logged even when the files are back to the loaded state.
	reloadFailed bool

	mu       sync.Mutex
	listener *listener
}

// failureLogWindow and failureLogBurst rate-limit handshake failure lines:
// at most failureLogBurst lines per reason in each window.
const (
	failureLogWindow = time.Minute
	failureLogBurst  = 10
)

// New validates cfg, loads the certificates, CA and CRL it names, and
// returns a Server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := loadTLSState(&cfg)
	if err != nil {
		return nil, err
	}

	var prefix [4]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:           cfg,
		logger:        cfg.Logger,
		metrics:       cfg.Metrics,
		upstream:      newUpstream(cfg.DockerSocket, cfg.UpstreamIdleConns),
		failureLog:    newFailureLog(failureLogWindow, failureLogBurst),
		requestPrefix: hex.EncodeToString(prefix[:]),
	}
	s.state.Store(st)
	s.metrics.certificatesLoaded(st)
	if a, ok := cfg.Authorizer.(dockerSocketUser); ok {
		a.useDockerSocket(cfg.DockerSocket)
	}
	s.baseTLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.state.Load().config, nil
		},
	}
	s.httpServer = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(&serverErrorWriter{logger: cfg.Logger}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	return s, nil
}

type connKey struct{}

// serverErrorWriter sends net/http's own error lines, such as panics in a
// handler, to the service log.
type serverErrorWriter struct{ logger *slog.Logger }

func (w *serverErrorWriter) Write(p []byte) (int, error) {
	w.logger.Error("HTTP server error", "error", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// ListenAndServe listens on cfg.Listen and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown and returns
// http.ErrServerClosed after a shutdown.
func (s *Server) Serve(ln net.Listener) error {
	l := newListener(ln, s, s.cfg.MaxConnections)
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()

	st := s.state.Load()
	s.logger.Info("gateway listening",
		"listen", ln.Addr().String(),
		"docker_socket", s.cfg.DockerSocket,
		"ca_fingerprint_sha256", st.caFingerprint(),
		"ca_expires", st.caCerts[0].NotAfter.UTC().Format(time.RFC3339),
		"server_certificate_expires", st.leaf.NotAfter.UTC().Format(time.RFC3339),
		"revoked_serials", len(st.revoked))
	return s.httpServer.Serve(l)
}

// Addr returns the listening address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Shutdown stops accepting connections, waits up to cfg.DrainTimeout (or
// until ctx ends, if sooner) for requests and hijacked sessions to finish,
// and then closes every connection still open.
func (s *Server) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	s.logger.Info("gateway shutting down", "drain_timeout", s.cfg.DrainTimeout.String())

	err := s.httpServer.Shutdown(ctx)
	s.waitHijacks(ctx)

	forced := s.conns.matching(func(string) bool { return true })
	for _, c := range forced {
		_ = c.Close()
	}
	_ = s.httpServer.Close()
	s.upstream.closeIdle()
	s.logger.Info("gateway stopped", "connections_closed_after_drain", len(forced))
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// waitHijacks returns when no hijacked session is open or ctx ends.
func (s *Server) waitHijacks(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for s.hijacks.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Reload reads the server certificate, CA and CRL again. On success new
// handshakes use them at once and the open connections of newly revoked
// certificates are closed; connections of other clients stay open. On
// failure the previous files stay in use and the error is returned.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()

	old := s.state.Load()
	st, err := loadTLSState(&s.cfg)
	if err != nil {
		s.metrics.reloaded(false)
		s.logger.Error("reload failed; keeping the previous certificates and CRL", "error", err)
		s.reloadFailed = true
		return err
	}
	recovered := s.reloadFailed
	s.reloadFailed = false
	if st.digest == old.digest {
		if recovered {
			s.metrics.reloaded(true)
			s.logger.Info("certificate and CRL files are valid again and match the ones in use")
		}
		return nil
	}
	s.state.Store(st)
	s.metrics.reloaded(true)
	s.metrics.certificatesLoaded(st)
	closed := s.closeRevoked(st)
	s.logger.Info("reloaded certificates and CRL",
		"ca_fingerprint_sha256", st.caFingerprint(),
		"server_certificate_expires", st.leaf.NotAfter.UTC().Format(time.RFC3339),
		"revoked_serials", len(st.revoked),
		"connections_closed", closed)
	return nil
}

// closeRevoked closes the open connections whose certificate st revokes and
// returns how many it closed.
func (s *Server) closeRevoked(st *tlsState) int {
	if len(st.revoked) == 0 {
		return 0
	}
	conns := s.conns.matching(func(serial string) bool {
		_, ok := st.revoked[serial]
		return ok
	})
	for _, c := range conns {
		s.logger.Warn("closing connection of revoked certificate",
			"client", c.id.Name, "serial", c.id.Serial, "peer", c.raw.RemoteAddr().String())
		_ = c.Close()
	}
	return len(conns)
}

// nextRequestID returns a request ID unique within this process and
// unlikely to repeat across restarts.
func (s *Server) nextRequestID() string {
	var buf [48]byte
	b := append(buf[:0], s.requestPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, s.requestSeq.Add(1), 10)
	return string(b)
}
