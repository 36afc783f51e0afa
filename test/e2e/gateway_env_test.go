package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/moby/moby/client"
)

// gatewayReadyTimeout bounds how long a new gateway may take to create its
// certificates and accept TLS connections.
const gatewayReadyTimeout = 60 * time.Second

// gatewayProcess is one dockmoat up or serve process started by a test, with
// its combined stdout and stderr in a file.
type gatewayProcess struct {
	// StateDir is the --dir state directory.
	StateDir string
	// Addr is the TLS listen address, host:port on 127.0.0.1, and Host the
	// matching DOCKER_HOST.
	Addr, Host string
	// MetricsAddr is the --metrics-listen address.
	MetricsAddr string
	// AuditLog is the --audit-log file.
	AuditLog string

	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startGatewayProcess runs dockmoat with command ("up" or "serve") in front
// of daemon, with state in stateDir, on free loopback ports. It stops the
// process when the test ends. It does not wait for the listener; see
// waitReady.
func startGatewayProcess(t testing.TB, command string, daemon *dockertest.Daemon, stateDir string, extraArgs ...string) *gatewayProcess {
	t.Helper()
	addr := freeLoopbackPort(t)
	metricsAddr := freeLoopbackPort(t)
	logDir := t.TempDir()
	g := &gatewayProcess{
		StateDir:    stateDir,
		Addr:        addr,
		Host:        "tcp://" + addr,
		MetricsAddr: metricsAddr,
		AuditLog:    filepath.Join(logDir, "audit.log"),
		logPath:     filepath.Join(logDir, "dockmoat.log"),
		exited:      make(chan struct{}),
	}
	args := append([]string{command,
		"--dir", stateDir,
		"--listen", addr,
		"--docker", "unix://" + daemon.Socket,
		"--metrics-listen", metricsAddr,
		"--audit-log", g.AuditLog,
	}, extraArgs...)

	logFile, err := os.Create(g.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	g.cmd = exec.Command(dockmoatBin, args...)
	g.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	g.cmd.Stdout = logFile
	g.cmd.Stderr = logFile
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start dockmoat %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() { g.stop(t) })
	return g
}

// startUp runs dockmoat up in front of daemon with state in stateDir, waits
// until it has written the admin client's bundle and serves, and returns the
// process and the bundle's folder.
func startUp(t testing.TB, daemon *dockertest.Daemon, stateDir string, extraArgs ...string) (*gatewayProcess, string) {
	t.Helper()
	g := startGatewayProcess(t, "up", daemon, stateDir, extraArgs...)
	admin := g.waitAdminBundle(t)
	g.waitReady(t, admin)
	return g, admin
}

// stop sends SIGTERM and, after 20 s, SIGKILL. Stopping an exited process
// does nothing.
func (g *gatewayProcess) stop(t testing.TB) {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		t.Errorf("dockmoat pid %d did not stop within 20 s of SIGTERM and was killed\n%s",
			g.cmd.Process.Pid, g.Log())
	}
}

// Log returns what the process has written to stdout and stderr so far.
func (g *gatewayProcess) Log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

// waitReady waits until GET /_ping through the gateway with bundle succeeds.
func (g *gatewayProcess) waitReady(t testing.TB, bundle string) {
	t.Helper()
	httpClient := bundleHTTPClient(t, bundle)
	defer httpClient.CloseIdleConnections()
	deadline := time.Now().Add(gatewayReadyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			t.Fatalf("dockmoat exited before it served (%v)\n%s", g.waitErr, g.Log())
		default:
		}
		resp, err := httpClient.Get("https://" + g.Addr + "/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("/_ping returned %s", resp.Status)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gateway on %s not ready within %s: %v\n%s", g.Addr, gatewayReadyTimeout, lastErr, g.Log())
}

// waitAdminBundle waits until dockmoat up has written the admin client's
// bundle (ca.pem, cert.pem, key.pem) into the state directory and returns
// its folder. The certificate is written last, so its presence means the
// bundle is complete.
func (g *gatewayProcess) waitAdminBundle(t testing.TB) string {
	t.Helper()
	bundle := filepath.Join(g.StateDir, "clients", "admin")
	deadline := time.Now().Add(gatewayReadyTimeout)
	for {
		if _, err := os.Stat(filepath.Join(bundle, "cert.pem")); err == nil {
			return bundle
		}
		select {
		case <-g.exited:
			t.Fatalf("dockmoat exited before it created the admin client (%v)\n%s", g.waitErr, g.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin bundle in %s within %s\n%s", bundle, gatewayReadyTimeout, g.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits up to timeout for the process to exit and returns its
// exit error, or fails the test.
func (g *gatewayProcess) waitExit(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-g.exited:
		return g.waitErr
	case <-time.After(timeout):
		t.Fatalf("dockmoat pid %d still running %s after the signal\n%s", g.cmd.Process.Pid, timeout, g.Log())
		return nil
	}
}

// waitLog waits up to timeout for the service log to contain every one of
// parts on a single line, and returns that line.
func (g *gatewayProcess) waitLog(t testing.TB, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(g.Log(), "\n") {
			if containsAll(line, parts...) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("gateway log has no line with all of %q within %s\n%s", parts, timeout, g.Log())
			return ""
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func freeLoopbackPort(t testing.TB) string {
	t.Helper()
	addr, err := dockertest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// issueClient issues a client certificate NAME in groups from the CA in
// stateDir and returns the folder with ca.pem, cert.pem and key.pem.
func issueClient(t testing.TB, stateDir, name string, groups ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	args := []string{"pki", "issue", "client", name, "--dir", stateDir, "--out", out}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	mustDockmoat(t, args...)
	return out
}

// bundleTLSConfig returns a TLS client configuration from a bundle folder.
// A folder without cert.pem gives a configuration without a client
// certificate.
func bundleTLSConfig(t testing.TB, bundle string) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(bundle, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s/ca.pem has no certificate", bundle)
	}
	config := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	certFile := filepath.Join(bundle, "cert.pem")
	if _, err := os.Stat(certFile); err == nil {
		cert, err := tls.LoadX509KeyPair(certFile, filepath.Join(bundle, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	return config
}

// bundleHTTPClient returns an HTTPS client with the bundle's certificates.
// Connections are not reused, so every request makes a new handshake.
func bundleHTTPClient(t testing.TB, bundle string) *http.Client {
	t.Helper()
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   bundleTLSConfig(t, bundle),
			DisableKeepAlives: true,
		},
		Timeout: 30 * time.Second,
	}
}

// mobyClient returns a moby Go client for the gateway with the bundle's
// certificates. It negotiates the API version on its first request.
func mobyClient(t testing.TB, host, bundle string) *client.Client {
	t.Helper()
	c, err := client.New(
		client.WithHost(host),
		client.WithTLSClientConfig(
			filepath.Join(bundle, "ca.pem"),
			filepath.Join(bundle, "cert.pem"),
			filepath.Join(bundle, "key.pem")),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// auditRecord is one JSON line of the audit log, kept generic so the test
// reads the field names as an operator would.
type auditRecord map[string]any

func (r auditRecord) str(key string) string {
	v, _ := r[key].(string)
	return v
}

func (r auditRecord) num(key string) float64 {
	v, _ := r[key].(float64)
	return v
}

// readAudit parses every line of the audit log and fails the test on a line
// that is not a JSON object.
func readAudit(t testing.TB, path string) []auditRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read audit log: %v", err)
	}
	var records []auditRecord
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r auditRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit log line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		records = append(records, r)
	}
	return records
}

// waitAudit waits up to 5 s for an audit record that match accepts.
func waitAudit(t testing.TB, path string, match func(auditRecord) bool) auditRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			for _, r := range readAudit(t, path) {
				if match(r) {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(path)
			t.Fatalf("no matching audit record within 5 s; the log contains:\n%s", data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapeMetrics returns the samples of the gateway's /metrics page as a map
// from the sample line's name and labels, as printed, to its value.
func scrapeMetrics(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics returned %s", resp.Status)
	}
	samples := make(map[string]float64)
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		samples[line[:i]] = v
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

// sumMetric adds up the samples of metric name whose labels contain every
// one of labels, each written as key="value".
func sumMetric(samples map[string]float64, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for key, v := range samples {
		metric, rest, _ := strings.Cut(key, "{")
		if metric != name || !containsAll(rest, labels...) {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// lineReader sends each line that r produces to a channel, so tests can
// wait for streamed output with a timeout.
func lineReader(r io.Reader) <-chan string {
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			lines <- strings.TrimRight(scanner.Text(), "\r")
		}
	}()
	return lines
}

// waitLine reads lines until one equals want, and fails the test with the
// lines read so far when the output ends or timeout passes first.
func waitLine(t testing.TB, lines <-chan string, want string, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before line %q; lines read: %q", want, seen)
			}
			if line == want {
				return
			}
			seen = append(seen, line)
		case <-timer.C:
			t.Fatalf("line %q not read within %s; lines read: %q", want, timeout, seen)
		}
	}
}

// commandContext returns a context that ends with the test or after timeout.
func commandContext(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// dialRaw opens a TCP connection to addr with a 5 s deadline for the
// exchange that follows.
func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}
