package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/dockmoat/dockmoat/internal/audit"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxConnections bounds open client connections. At the
	// estimated 30 KiB of memory per idle TLS connection this is about
	// 30 MiB.
	DefaultMaxConnections = 1024
	// DefaultHeaderTimeout bounds the TLS handshake and the reading of each
	// request header.
	DefaultHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long. It is
	// longer than the 90 s after which Go's HTTP client, and so the docker
	// CLI, drops idle connections itself, so the client closes first and
	// never sends a request on a connection the gateway is closing.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultDrainTimeout is how long Shutdown lets open requests and
	// hijacked sessions finish before it closes them.
	DefaultDrainTimeout = 15 * time.Second
	// DefaultUpstreamIdleConns is the number of idle keep-alive connections
	// to the Docker socket kept for reuse.
	DefaultUpstreamIdleConns = 64
)

// Config configures a Server. Files are PEM; CRLFile may also be DER.
type Config struct {
	// Listen is the TCP address to listen on, such as "0.0.0.0:2376".
	Listen string
	// DockerSocket is the path of dockerd's unix socket.
	DockerSocket string
	// CertFile and KeyFile are the server certificate and its key.
	CertFile, KeyFile string
	// CAFile holds the CA certificates that client certificates must chain
	// to. The first one must have signed the CRL.
	CAFile string
	// CRLFile is the certificate revocation list checked at every
	// handshake. A missing file means nothing is revoked; empty disables
	// the check.
	CRLFile string

	// Authorizer decides every request. It is required: the gateway never
	// forwards a request without a decision.
	Authorizer Authorizer
	// Logger receives the service log. Nil discards it.
	Logger *slog.Logger
	// Audit receives one record per request and per hijacked session. Nil
	// discards them.
	Audit audit.Sink
	// Metrics records Prometheus metrics. Nil records nothing.
	Metrics *Metrics

	// MaxConnections bounds open client connections. Further connections
	// wait in the kernel's accept queue until one closes.
	MaxConnections int
	// HeaderTimeout bounds the TLS handshake and the reading of each
	// request header. It is not a limit on bodies or streams.
	HeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections with no request in flight
	// after this long. Streaming responses and hijacked sessions have no
	// total deadline.
	IdleTimeout time.Duration
	// DrainTimeout bounds how long Shutdown waits for requests and hijacked
	// sessions before closing them.
	DrainTimeout time.Duration
	// UpstreamIdleConns is the size of the keep-alive pool to the Docker
	// socket. It should be at least the number of concurrent clients.
	UpstreamIdleConns int
}

// withDefaults returns cfg with every zero duration and limit replaced by its
// default.
func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.UpstreamIdleConns == 0 {
		cfg.UpstreamIdleConns = DefaultUpstreamIdleConns
	}
	return cfg
}

// validate checks every field that does not need a file to be read.
func (cfg *Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("invalid listen address %q: %v (want HOST:PORT, such as 0.0.0.0:2376)", cfg.Listen, err))
	}
	if cfg.DockerSocket == "" {
		errs = append(errs, errors.New("missing Docker socket path"))
	}
	for _, f := range []struct{ name, value string }{
		{"server certificate", cfg.CertFile},
		{"server key", cfg.KeyFile},
		{"client CA", cfg.CAFile},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("missing %s file", f.name))
		}
	}
	if cfg.Authorizer == nil {
		errs = append(errs, errors.New("missing authorizer"))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"header timeout", cfg.HeaderTimeout},
		{"idle timeout", cfg.IdleTimeout},
		{"drain timeout", cfg.DrainTimeout},
	} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %s: must be positive", d.name, d.value))
		}
	}
	if cfg.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("invalid connection limit %d: must be positive", cfg.MaxConnections))
	}
	if cfg.UpstreamIdleConns < 0 {
		errs = append(errs, fmt.Errorf("invalid upstream pool size %d: must be positive", cfg.UpstreamIdleConns))
	}
	return errors.Join(errs...)
}
