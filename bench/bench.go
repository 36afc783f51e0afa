package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Server key types of the certificates under test.
const (
	keyECDSA = "ecdsa"
	keyRSA   = "rsa"
)

// bench holds the state of one run: what it started and what it measured.
type bench struct {
	opts *options

	socket     string
	dockerd    *process
	dockerdTLS string
	contextTar string
	procs      []*process

	clientCert tls.Certificate
	roots      *x509.CertPool

	results results

	cleanupOnce sync.Once
}

func newBench(opts *options) *bench {
	return &bench{opts: opts, results: results{skipped: map[string]string{}, failures: map[string]string{}}}
}

// target is one endpoint that serves the Docker API.
type target struct {
	name    string
	network string
	addr    string
	// tls is nil for the unix socket.
	tls *tls.Config
	// proc returns the process whose memory is measured: the proxy, or
	// dockerd for the unix socket and dockerd's own TLS listener.
	proc func() *process
}

func (b *bench) unixTarget() *target {
	return &target{name: "unix", network: "unix", addr: b.socket, proc: func() *process { return b.dockerd }}
}

// tlsTarget returns a TLS target on addr. A nil p means dockerd itself.
func (b *bench) tlsTarget(name, addr string, p *process) *target {
	proc := func() *process { return p }
	if p == nil {
		proc = func() *process { return b.dockerd }
	}
	return &target{
		name:    name,
		network: "tcp",
		addr:    addr,
		tls: &tls.Config{
			Certificates: []tls.Certificate{b.clientCert},
			RootCAs:      b.roots,
			ServerName:   "127.0.0.1",
			// No ClientSessionCache: every connection makes a full
			// handshake, with no session resumption.
		},
		proc: proc,
	}
}

// dial connects to t and, for TLS targets, completes the handshake.
func (t *target) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, t.network, t.addr)
	if err != nil {
		return nil, err
	}
	if t.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s at %s: %w", t.name, t.addr, err)
	}
	return tc, nil
}

// httpClient returns a client whose every request goes to t, with no
// total timeout, for setup calls and bulk transfers.
func (t *target) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return t.dial(ctx)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 4,
	}}
}

// loadClient reads the client certificate and the CA certificates.
func (b *bench) loadClient() error {
	dir := filepath.Join(b.opts.certs, "client")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return fmt.Errorf("load client certificate from %s: %w", dir, err)
	}
	b.clientCert = cert
	b.roots = x509.NewCertPool()
	for _, path := range []string{
		filepath.Join(dir, "ca.pem"),
		b.serverFiles(keyECDSA).ca,
		b.serverFiles(keyRSA).ca,
	} {
		pem, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !b.roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("no certificate found in %s", path)
		}
	}
	return nil
}

// fail records that t could not complete a measurement, so later rounds of
// it skip t and the results page shows why.
func (b *bench) fail(measurement string, t *target, err error) {
	slog.Error("measurement failed", "measurement", measurement, "target", t.name, "err", err)
	b.results.failures[measurement+": "+t.name] = err.Error()
}

func (b *bench) hasFailed(measurement string, t *target) bool {
	_, ok := b.results.failures[measurement+": "+t.name]
	return ok
}

func (b *bench) skip(name, reason string) {
	if _, ok := b.results.skipped[name]; !ok {
		slog.Warn("target skipped", "target", name, "reason", reason)
	}
	b.results.skipped[name] = reason
}

// run performs the whole benchmark: the ECDSA phase with every measurement,
// then the RSA phase with the new-connection rate only, because dockerd
// reads its certificate only at start.
func (b *bench) run(ctx context.Context) error {
	if err := os.MkdirAll(b.opts.work, 0o755); err != nil {
		return err
	}
	if err := b.loadClient(); err != nil {
		return err
	}
	b.results.start = time.Now()
	b.results.loadStart = loadAverage()
	b.results.machine = describeMachine()

	if err := b.startDockerd(ctx, keyECDSA); err != nil {
		return err
	}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	proxies, err := b.startProxies(ctx, keyECDSA)
	if err != nil {
		return err
	}
	targets := b.withDockerd(proxies)
	b.results.targets = targetNames(targets)
	if err := b.measureAll(ctx, targets); err != nil {
		return err
	}
	b.stopProxies()
	if err := b.measureMemory(ctx); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := b.profile(ctx); err != nil {
		slog.Error("profiling pass failed; results are written without it", "err", err)
		b.results.profileErr = err.Error()
	}
	b.stopProxies()

	b.stopDockerd()
	if err := b.startDockerd(ctx, keyRSA); err != nil {
		return err
	}
	proxies, err = b.startProxies(ctx, keyRSA)
	if err != nil {
		return err
	}
	targets = b.withDockerd(proxies)
	if err := b.measureNewConns(ctx, targets, keyRSA); err != nil {
		return err
	}
	b.results.end = time.Now()
	b.results.loadEnd = loadAverage()
	b.results.goBench = readGoBench(b.opts.goBench)
	return b.writeReport()
}

func (b *bench) measureAll(ctx context.Context, targets []*target) error {
	steps := []struct {
		name string
		run  func(context.Context, []*target) error
		// handshakes marks the step that also measures the targets that
		// differ from others only in their TLS handshake.
		handshakes bool
	}{
		{"keep-alive", b.measureKeepAlive, false},
		{"new connections", func(ctx context.Context, ts []*target) error {
			return b.measureNewConns(ctx, ts, keyECDSA)
		}, true},
		{"image export", b.measureExport, false},
		{"build context upload", b.measureUpload, false},
		{"exec round trip", b.measureExec, false},
	}
	for _, s := range steps {
		slog.Info("measuring", "step", s.name)
		ts := targets
		if !s.handshakes {
			ts = withoutHandshakeOnly(targets)
		}
		if err := s.run(ctx, ts); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// withoutHandshakeOnly drops the targets that only the new-connection
// measurement uses.
func withoutHandshakeOnly(targets []*target) []*target {
	var out []*target
	for _, t := range targets {
		if t.name != x25519Pipe {
			out = append(out, t)
		}
	}
	return out
}

// cleanup stops every process the run started and removes the work folder.
// It runs once, either when the run ends or on SIGINT or SIGTERM.
func (b *bench) cleanup() {
	b.cleanupOnce.Do(b.doCleanup)
}

func (b *bench) doCleanup() {
	b.stopProxies()
	b.stopDockerd()
	if err := os.RemoveAll(b.opts.work); err != nil {
		slog.Warn("could not remove the work folder", "path", b.opts.work, "err", err)
	}
}

// withDockerd returns the unix socket, dockerd's TLS listener and proxies.
func (b *bench) withDockerd(proxies []*target) []*target {
	return append([]*target{b.unixTarget(), b.tlsTarget(baseline, b.dockerdTLS, nil)}, proxies...)
}

func targetNames(ts []*target) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return names
}

// rotate returns ts rotated left by n, so each round starts with a
// different target and no target always runs right after another.
func rotate(ts []*target, n int) []*target {
	n %= len(ts)
	return append(append([]*target{}, ts[n:]...), ts[:n]...)
}
