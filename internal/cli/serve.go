package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/dockmoat/dockmoat/internal/audit"
	"github.com/dockmoat/dockmoat/internal/gateway"
	"github.com/dockmoat/dockmoat/internal/pki"
)

// gatewayServerName is the name of the gateway's server certificate in the
// state directory, under servers/gateway.
const gatewayServerName = "gateway"

func addServeCommands(root *cobra.Command) {
	root.AddCommand(newServeCommand(), newUpCommand())
}

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mTLS gateway in front of the local Docker socket",
		Long: `Run the mTLS gateway in front of the local Docker socket.

Clients connect with a certificate issued by the CA in the state directory.
The gateway checks it against the CA and the CRL at every handshake,
authorizes every API call, forwards allowed calls to dockerd's unix socket
and writes one audit record per call. It serves the server certificate
DIR/servers/gateway, which 'dockmoat up' creates.

SIGHUP reloads the certificates, CA and CRL, which are also reloaded when
their files change; SIGTERM and SIGINT stop accepting connections and let
open requests finish for up to --drain-timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := readServeOptions(cmd)
			if err != nil {
				return err
			}
			return runGateway(cmd, opts)
		},
	}
	addServeFlags(cmd)
	return cmd
}

func addServeFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("listen", "0.0.0.0:2376", "TCP address for client connections, HOST:PORT")
	f.String("docker", "unix:///var/run/docker.sock", "Docker daemon socket to forward to, as unix://PATH")
	f.String("config", "", "YAML file whose keys are these flags' long names; flags on the command line win")
	f.String("metrics-listen", "", "address for Prometheus metrics at /metrics, HOST:PORT (off when empty; use a loopback address)")
	f.String("audit-log", "", "file the JSON-lines audit log is appended to, or - for stdout (default DIR/audit.log)")
	f.String("policy", "", "YAML policy file for per-client authorization (default: groups admin, ci and readonly get the preset of that name; see 'dockmoat policy default')")
	f.Int("max-connections", gateway.DefaultMaxConnections, "maximum open client connections; more wait to be accepted")
	f.Duration("header-timeout", gateway.DefaultHeaderTimeout, "time allowed for the TLS handshake and each request header")
	f.Duration("idle-timeout", gateway.DefaultIdleTimeout, "time after which an idle keep-alive connection is closed")
	f.Duration("drain-timeout", gateway.DefaultDrainTimeout, "time that shutdown lets open requests and sessions finish")
	f.String("log-level", "info", "service log level: debug, info, warn or error")
}

// serveOptions are the validated settings of serve and up.
type serveOptions struct {
	dir           string
	listen        string
	socket        string
	metricsListen string
	auditLog      string
	policy        string
	logLevel      slog.Level
	gateway       gateway.Config
}

func readServeOptions(cmd *cobra.Command) (*serveOptions, error) {
	f := cmd.Flags()
	if path, _ := f.GetString("config"); path != "" {
		if err := applyConfigFile(cmd, path); err != nil {
			return nil, err
		}
	}
	dir, err := stateDir(cmd)
	if err != nil {
		return nil, err
	}
	opts := &serveOptions{dir: dir}
	opts.listen, _ = f.GetString("listen")
	opts.metricsListen, _ = f.GetString("metrics-listen")
	opts.auditLog, _ = f.GetString("audit-log")
	opts.policy, _ = f.GetString("policy")

	var errs []error
	docker, _ := f.GetString("docker")
	if opts.socket, err = parseDockerSocket(docker); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(opts.listen); err != nil {
		errs = append(errs, fmt.Errorf("invalid --listen %q: want HOST:PORT, such as 0.0.0.0:2376", opts.listen))
	}
	if opts.metricsListen != "" {
		if _, _, err := net.SplitHostPort(opts.metricsListen); err != nil {
			errs = append(errs, fmt.Errorf("invalid --metrics-listen %q: want HOST:PORT, such as 127.0.0.1:9323", opts.metricsListen))
		}
	}
	level, _ := f.GetString("log-level")
	if err := opts.logLevel.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level))
	}
	g := &opts.gateway
	g.MaxConnections, _ = f.GetInt("max-connections")
	g.HeaderTimeout, _ = f.GetDuration("header-timeout")
	g.IdleTimeout, _ = f.GetDuration("idle-timeout")
	g.DrainTimeout, _ = f.GetDuration("drain-timeout")
	for _, c := range []struct {
		name  string
		value time.Duration
	}{{"header-timeout", g.HeaderTimeout}, {"idle-timeout", g.IdleTimeout}, {"drain-timeout", g.DrainTimeout}} {
		if c.value <= 0 {
			errs = append(errs, fmt.Errorf("invalid --%s %s: must be positive, such as 30s", c.name, c.value))
		}
	}
	if g.MaxConnections <= 0 {
		errs = append(errs, fmt.Errorf("invalid --max-connections %d: must be positive", g.MaxConnections))
	}
	if len(errs) > 0 {
		return nil, usageError(errors.Join(errs...), fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()))
	}
	return opts, nil
}

// parseDockerSocket returns the socket path of a unix:// address.
func parseDockerSocket(addr string) (string, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok || !filepath.IsAbs(path) {
		return "", fmt.Errorf("invalid --docker %q: want unix:// and an absolute socket path, such as unix:///var/run/docker.sock", addr)
	}
	return path, nil
}

// runGateway builds the gateway from opts, checking every file and setting
// before it listens, and serves until SIGTERM or SIGINT.
func runGateway(cmd *cobra.Command, opts *serveOptions) error {
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: opts.logLevel}))
	g, cleanup, err := buildGateway(cmd, opts, logger)
	if err != nil {
		return err
	}
	defer cleanup()

	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return failure(fmt.Errorf("listen on %s: %w", opts.listen, err),
			"stop the process using the port or pass another --listen")
	}
	metrics, err := startMetrics(opts, g.registry, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer metrics.Close()

	return serveUntilSignal(g, ln, logger)
}

// builtGateway is a configured gateway and what it was built from.
type builtGateway struct {
	server     *gateway.Server
	authorizer gateway.Authorizer
	registry   *prometheus.Registry
}

func buildGateway(cmd *cobra.Command, opts *serveOptions, logger *slog.Logger) (*builtGateway, func(), error) {
	if !pki.Exists(opts.dir) {
		return nil, nil, usageError(fmt.Errorf("no CA in %s", opts.dir),
			"run 'dockmoat up' to create the CA and certificates, or pass --dir")
	}
	bundle := pki.BundlePaths(opts.dir, pki.KindServer, gatewayServerName)
	for _, path := range []string{bundle.Cert, bundle.Key} {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, usageError(fmt.Errorf("gateway server certificate: %w", err),
				"run 'dockmoat up' to issue it, or pass --dir")
		}
	}

	if _, err := os.Stat(opts.socket); err != nil {
		logger.Warn("Docker socket not reachable yet; requests get 502 until dockerd listens on it",
			"docker_socket", opts.socket, "error", err)
	}
	authorizer, err := gateway.NewAuthorizer(opts.policy, logger)
	if err != nil {
		return nil, nil, usageError(err, "fix the policy file or leave out --policy")
	}
	sink, closeAudit, err := openAuditLog(cmd, opts, logger)
	if err != nil {
		if c, ok := authorizer.(io.Closer); ok {
			c.Close()
		}
		return nil, nil, err
	}
	closeAll := func() {
		closeAudit()
		if c, ok := authorizer.(io.Closer); ok {
			c.Close()
		}
	}
	b := &builtGateway{authorizer: authorizer}
	cfg := opts.gateway
	cfg.Listen = opts.listen
	cfg.DockerSocket = opts.socket
	cfg.CertFile = bundle.Cert
	cfg.KeyFile = bundle.Key
	cfg.CAFile = pki.CACertPath(opts.dir)
	cfg.CRLFile = pki.CRLPath(opts.dir)
	cfg.Authorizer = authorizer
	cfg.Logger = logger
	cfg.Audit = sink
	if opts.metricsListen != "" {
		b.registry = prometheus.NewRegistry()
		if cfg.Metrics, err = gateway.NewMetrics(b.registry); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	if b.server, err = gateway.New(cfg); err != nil {
		closeAll()
		return nil, nil, usageError(err, "check the files in "+opts.dir+", or reissue them with 'dockmoat up'")
	}
	return b, closeAll, nil
}

func openAuditLog(cmd *cobra.Command, opts *serveOptions, logger *slog.Logger) (audit.Sink, func(), error) {
	path := opts.auditLog
	var sink *audit.JSONLines
	if path == "-" {
		sink = audit.NewJSONLines(cmd.OutOrStdout())
	} else {
		if path == "" {
			path = filepath.Join(opts.dir, "audit.log")
		}
		var err error
		if sink, err = audit.OpenFile(path); err != nil {
			return nil, nil, usageError(fmt.Errorf("audit log %s: %w", path, err),
				"pass a writable --audit-log FILE, or - for stdout")
		}
	}
	sink.OnError = func(err error) {
		logger.Error("audit log write failed; later failures are counted, not logged",
			"audit_log", path, "error", err)
	}
	return sink, func() { sink.Close() }, nil
}

// startMetrics serves /metrics when --metrics-listen is set, and returns
// an io.Closer that stops it.
func startMetrics(opts *serveOptions, reg *prometheus.Registry, logger *slog.Logger) (io.Closer, error) {
	if opts.metricsListen == "" {
		return closerFunc(func() error { return nil }), nil
	}
	ln, err := net.Listen("tcp", opts.metricsListen)
	if err != nil {
		return nil, failure(fmt.Errorf("listen for metrics on %s: %w", opts.metricsListen, err),
			"pass another --metrics-listen")
	}
	if host, _, _ := net.SplitHostPort(opts.metricsListen); !isLoopback(host) {
		logger.Warn("metrics are served on a non-loopback address without authentication; they name every client",
			"metrics_listen", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	logger.Info("metrics listening", "metrics_listen", ln.Addr().String())
	return srv, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveUntilSignal serves on ln, reloads on SIGHUP and shuts down on
// SIGTERM or SIGINT.
func serveUntilSignal(g *builtGateway, ln net.Listener, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.server.Watch(ctx)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	served := make(chan error, 1)
	go func() { served <- g.server.Serve(ln) }()
	for {
		select {
		case err := <-served:
			return failure(fmt.Errorf("gateway stopped: %w", err), "")
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				logger.Info("SIGHUP received; reloading")
				reloadAll(g, logger)
				continue
			}
			logger.Info("signal received; shutting down", "signal", sig.String())
			err := g.server.Shutdown(context.Background())
			<-served
			return err
		}
	}
}

// reloadAll reloads the certificates and CRL, and the policy when the
// authorizer supports reloading.
func reloadAll(g *builtGateway, logger *slog.Logger) {
	_ = g.server.Reload()
	if r, ok := g.authorizer.(interface{ Reload() error }); ok {
		if err := r.Reload(); err != nil {
			logger.Error("policy reload failed; keeping the previous policy", "error", err)
		}
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
