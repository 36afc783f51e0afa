package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
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
	upstream   *upstream
	conns      connRegistry
	failureLog *failureLog

	// live holds every open client connection, handshaken or not, for
	// Shutdown.
	liveMu     sync.Mutex
	live       map[*serverConn]struct{}
	inShutdown atomic.Bool

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
	return s, nil
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
// http.ErrServerClosed after a shutdown. Each connection is served on a
// goroutine of its own.
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

	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			// Out of file descriptors, or a connection reset before it
			// was accepted: wait a little and go on, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger.Error("accepting a connection failed; retrying", "error", err, "retry_in", delay.String())
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.serveConn(c.(*serverConn))
	}
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

	s.inShutdown.Store(true)
	s.mu.Lock()
	if s.listener != nil {
		_ = s.listener.Close()
	}
	s.mu.Unlock()

	s.drain(ctx)
	forced := s.liveConns()
	for _, c := range forced {
		_ = c.Close()
	}
	s.upstream.closeIdle()
	s.logger.Info("gateway stopped", "connections_closed_after_drain", len(forced))
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// drain closes connections as soon as they wait for a request, until none
// is left or ctx ends. Requests and hijacked streams in progress may finish
// until then.
func (s *Server) drain(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.closeWaiting() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// closeWaiting closes the connections that wait for a request and returns
// how many others are still open.
func (s *Server) closeWaiting() int {
	busy := 0
	for _, c := range s.liveConns() {
		if !c.closeIfWaiting() {
			busy++
		}
	}
	return busy
}

func (s *Server) track(c *serverConn) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live == nil {
		s.live = map[*serverConn]struct{}{}
	}
	s.live[c] = struct{}{}
}

func (s *Server) untrack(c *serverConn) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	delete(s.live, c)
}

func (s *Server) liveConns() []*serverConn {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	out := make([]*serverConn, 0, len(s.live))
	for c := range s.live {
		out = append(out, c)
	}
	return out
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
