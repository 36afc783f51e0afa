package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/moby/moby/client"
)

// testRegistryAuthNotLogged sends registry credentials in the headers the
// docker CLI uses and a marker in the query, then checks that neither the
// audit log nor the service log contains them.
func (s *gatewaySuite) testRegistryAuthNotLogged(t *testing.T) {
	secret := fmt.Sprintf("e2e-password-%d", time.Now().UnixNano())
	authJSON := fmt.Sprintf(`{"username":"e2e","password":%q,"serveraddress":"registry.invalid"}`, secret)
	auth := base64.URLEncoding.EncodeToString([]byte(authJSON))
	config := base64.URLEncoding.EncodeToString([]byte(`{"registry.invalid":` + authJSON + `}`))
	querySecret := secret + "-query"

	req, err := http.NewRequest(http.MethodGet, "https://"+s.gw.Addr+"/v1.41/info?marker="+querySecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Registry-Auth", auth)
	req.Header.Set("X-Registry-Config", config)
	resp, err := bundleHTTPClient(t, s.admin).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1.41/info with registry headers = %s, want 200", resp.Status)
	}

	waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
		return r.str("path") == "/v1.41/info"
	})
	auditData, err := os.ReadFile(s.gw.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secret, auth, config, querySecret} {
		if strings.Contains(string(auditData), leak) {
			t.Errorf("audit log contains %q", leak)
		}
		if strings.Contains(s.gw.Log(), leak) {
			t.Errorf("service log contains %q", leak)
		}
	}
}

// testAuditRecords checks the audit log by content: a plain request, a
// 100 MiB upload and a hijacked session with its start and end lines.
func (s *gatewaySuite) testAuditRecords(t *testing.T) {
	resp, err := bundleHTTPClient(t, s.admin).Get("https://" + s.gw.Addr + "/v1.41/containers/json?all=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	adminSerial := certificateSerial(t, filepath.Join(s.admin, "cert.pem"))
	rec := waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
		return r.str("event") == "request" && r.str("path") == "/v1.41/containers/json"
	})
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"client", rec.str("client"), "admin"},
		{"serial", rec.str("serial"), adminSerial},
		{"method", rec.str("method"), "GET"},
		{"api_version", rec.str("api_version"), "1.41"},
		{"decision", rec.str("decision"), "allow"},
		{"status", rec.num("status"), float64(200)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("audit field %s = %v, want %v in %v", c.field, c.got, c.want, rec)
		}
	}
	if groups, _ := rec["groups"].([]any); len(groups) != 1 || groups[0] != "admin" {
		t.Errorf("audit field groups = %v, want [admin]", rec["groups"])
	}
	for _, field := range []string{"request_id", "operation", "rule"} {
		if rec.str(field) == "" {
			t.Errorf("audit field %s is empty in %v", field, rec)
		}
	}
	if host, _, err := net.SplitHostPort(rec.str("remote_addr")); err != nil || host != "127.0.0.1" {
		t.Errorf("audit field remote_addr = %q, want 127.0.0.1:PORT", rec.str("remote_addr"))
	}
	if when, err := time.Parse(time.RFC3339Nano, rec.str("time")); err != nil || time.Since(when) > time.Minute {
		t.Errorf("audit field time = %q, want a recent RFC 3339 time", rec.str("time"))
	}
	if rec.num("bytes_out") <= 0 {
		t.Errorf("audit field bytes_out = %v, want the size of the container list", rec["bytes_out"])
	}
	if _, ok := rec["duration_seconds"].(float64); !ok {
		t.Errorf("audit field duration_seconds = %v, want a number", rec["duration_seconds"])
	}

	records := readAudit(t, s.gw.AuditLog)
	build := findAudit(records, func(r auditRecord) bool {
		return strings.HasSuffix(r.str("path"), "/build") && r.num("bytes_in") >= 100<<20
	})
	if build == nil {
		t.Error("audit log has no build record with bytes_in of at least the 100 MiB context")
	} else if build.num("status") != 200 {
		t.Errorf("audit status of the build = %v, want 200", build["status"])
	}

	// docker run -i streamed 16 MiB of stdin through a hijacked attach.
	end := findAudit(records, func(r auditRecord) bool {
		return r.str("event") == "hijack_end" && r.num("bytes_in") >= 16<<20
	})
	if end == nil {
		t.Fatal("audit log has no hijack_end record with the 16 MiB of docker run -i")
	}
	start := findAudit(records, func(r auditRecord) bool {
		return r.str("event") == "hijack_start" && r.str("request_id") == end.str("request_id")
	})
	if start == nil {
		t.Errorf("audit log has no hijack_start record for request %s", end.str("request_id"))
	} else if start.num("status") != 101 || !strings.HasSuffix(start.str("path"), "/attach") {
		t.Errorf("hijack_start record = %v, want status 101 on an attach path", start)
	}
}

func findAudit(records []auditRecord, match func(auditRecord) bool) auditRecord {
	for _, r := range records {
		if match(r) {
			return r
		}
	}
	return nil
}

// testMetrics checks the Prometheus page by content after the subtests
// before it made requests, uploads, a denial and rejected handshakes.
func (s *gatewaySuite) testMetrics(t *testing.T) {
	samples := scrapeMetrics(t, s.gw.MetricsAddr)
	atLeast := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"dockmoat_requests_total", []string{`client="admin"`, `decision="allow"`, `status="200"`}, 10},
		{"dockmoat_requests_total", []string{`client="e2e-viewer"`, `decision="deny"`, `status="403"`}, 1},
		{"dockmoat_received_bytes_total", []string{`client="admin"`}, 116 << 20},
		{"dockmoat_sent_bytes_total", []string{`client="admin"`}, 1},
		{"dockmoat_request_duration_seconds_count", nil, 10},
		{"dockmoat_tls_handshake_failures_total", []string{`reason="plain_http"`}, 1},
		{"dockmoat_tls_handshake_failures_total", []string{`reason="unknown_ca"`}, 1},
		{"dockmoat_server_certificate_expiry_seconds", nil, 30 * 24 * 3600},
		{"dockmoat_ca_certificate_expiry_seconds", nil, 365 * 24 * 3600},
	}
	for _, m := range atLeast {
		got, found := sumMetric(samples, m.name, m.labels...)
		if !found {
			t.Errorf("metric %s{%s} missing", m.name, strings.Join(m.labels, ","))
			continue
		}
		if got < m.min {
			t.Errorf("metric %s{%s} = %v, want at least %v", m.name, strings.Join(m.labels, ","), got, m.min)
		}
	}
	for _, gauge := range []string{"dockmoat_open_connections", "dockmoat_hijacked_sessions"} {
		if _, found := sumMetric(samples, gauge); !found {
			t.Errorf("metric %s missing", gauge)
		}
	}
}

// testQuietStreams runs a second gateway with short idle and header
// timeouts and keeps docker logs -f and an event stream quiet for longer.
// Neither timeout may end a streaming response.
func (s *gatewaySuite) testQuietStreams(t *testing.T) {
	const quiet = 3 * time.Second
	g := startGatewayProcess(t, "serve", s.daemon, s.gw.StateDir,
		"--idle-timeout", "1s", "--header-timeout", "2s")
	g.waitReady(t, s.admin)
	cli := dockertest.NewCLI(t, g.Host, s.admin)
	cli.Timeout = time.Minute

	const name = "e2e-quiet"
	s.runContainer(t, name, s.image, "sh", "-c",
		"echo ready; while [ ! -f /line ]; do sleep 0.05; done; cat /line; exec sleep 3600")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := cli.Command(ctx, "logs", "-f", name)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = follow.Wait() }()
	lines := lineReader(stdout)
	waitLine(t, lines, "ready", 10*time.Second)

	events := mobyClient(t, g.Host, s.admin).Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type", "volume"),
	})
	time.Sleep(quiet)

	s.direct.Must(t, "exec", name, "sh", "-c", "echo after-quiet > /line")
	waitLine(t, lines, "after-quiet", 5*time.Second)

	const volume = "e2e-quiet-volume"
	s.direct.Must(t, "volume", "create", volume)
	t.Cleanup(func() { s.direct.Run(nil, "volume", "rm", "-f", volume) })
	select {
	case msg := <-events.Messages:
		if msg.Actor.ID != volume {
			t.Errorf("event after %s of quiet = %s %s, want create %s", quiet, msg.Action, msg.Actor.ID, volume)
		}
	case err := <-events.Err:
		t.Errorf("event stream ended during %s of quiet with short timeouts: %v", quiet, err)
	case <-time.After(10 * time.Second):
		t.Error("no volume event within 10 s")
	}
}

// testGracefulShutdown runs a second gateway on the same state, keeps a
// request in flight and an endless event stream, and sends SIGTERM. The
// request must finish, and the stream must be closed after the drain time.
func (s *gatewaySuite) testGracefulShutdown(t *testing.T) {
	const drainTimeout = 5 * time.Second
	g := startGatewayProcess(t, "serve", s.daemon, s.gw.StateDir, "--drain-timeout", drainTimeout.String())
	g.waitReady(t, s.admin)
	c := mobyClient(t, g.Host, s.admin)
	ctx := commandContext(t, time.Minute)

	const name = "e2e-shutdown-wait"
	s.direct.Must(t, "run", "-d", "--name", name, s.image, "sleep", "2")
	t.Cleanup(func() { s.direct.Run(nil, "rm", "-f", name) })
	events := c.Events(ctx, client.EventsListOptions{})
	wait := c.ContainerWait(ctx, name, client.ContainerWaitOptions{})

	signalled := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// New connections fail once the listener has closed.
	deadline := time.Now().Add(liveChangeTimeout)
	for {
		conn, err := net.DialTimeout("tcp", g.Addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Errorf("gateway still accepts connections %s after SIGTERM", liveChangeTimeout)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	select {
	case result := <-wait.Result:
		if result.StatusCode != 0 {
			t.Errorf("container wait during shutdown returned exit code %d, want 0", result.StatusCode)
		}
	case err := <-wait.Error:
		t.Errorf("container wait in flight at SIGTERM failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Error("container wait in flight at SIGTERM did not finish within 30 s")
	}

	// The event stream never ends by itself, so the gateway must close it
	// when the drain time is over and exit soon after.
	err := g.waitExit(t, drainTimeout+7*time.Second)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Errorf("dockmoat serve exited with %v after SIGTERM, want exit code 0\n%s", err, g.Log())
	} else if err != nil {
		t.Errorf("wait for dockmoat serve: %v", err)
	}
	t.Logf("gateway exited %s after SIGTERM", time.Since(signalled).Round(time.Millisecond))
	if err := waitStreamEnd(events, 5*time.Second); err != nil {
		t.Errorf("event stream after the gateway exited: %v", err)
	}
	for _, want := range []string{"gateway shutting down", "gateway stopped"} {
		if !strings.Contains(g.Log(), want) {
			t.Errorf("service log has no %q line\n%s", want, g.Log())
		}
	}
}

// testErrorPassthrough checks that a daemon error reaches the client with
// the daemon's status, content type and body.
func (s *gatewaySuite) testErrorPassthrough(t *testing.T) {
	const path = "/v1.41/containers/e2e-does-not-exist/json"
	direct := s.daemon.HTTPClient()
	defer direct.CloseIdleConnections()
	want, err := direct.Get("http://docker" + path)
	if err != nil {
		t.Fatal(err)
	}
	wantBody, _ := io.ReadAll(want.Body)
	want.Body.Close()

	got, err := bundleHTTPClient(t, s.admin).Get("https://" + s.gw.Addr + path)
	if err != nil {
		t.Fatal(err)
	}
	gotBody, _ := io.ReadAll(got.Body)
	got.Body.Close()

	if got.StatusCode != want.StatusCode {
		t.Errorf("status = %s, want %s as on the socket", got.Status, want.Status)
	}
	if g, w := got.Header.Get("Content-Type"), want.Header.Get("Content-Type"); g != w {
		t.Errorf("Content-Type = %q, want %q", g, w)
	}
	if string(gotBody) != string(wantBody) {
		t.Errorf("body = %q, want %q", gotBody, wantBody)
	}
}

// testDockerdRestart stops dockerd under the running gateway, expects a
// Docker-style 502 that names the socket, then restarts dockerd and
// expects the gateway to serve again without a restart of its own.
func (s *gatewaySuite) testDockerdRestart(t *testing.T) {
	if err := s.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	resp, err := bundleHTTPClient(t, s.admin).Get("https://" + s.gw.Addr + "/v1.41/containers/json")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Message string }
	decodeErr := json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status with dockerd stopped = %s, want 502", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type of the 502 = %q, want application/json", ct)
	}
	if decodeErr != nil || !strings.Contains(body.Message, s.daemon.Socket) {
		t.Errorf("502 message = %q (decode error %v), want it to name %s", body.Message, decodeErr, s.daemon.Socket)
	}

	r := s.cli.Run(nil, "ps")
	if r.Err == nil || !strings.Contains(r.Stderr, s.daemon.Socket) {
		t.Errorf("docker ps with dockerd stopped: err %v, stderr %q, want an error naming %s", r.Err, r.Stderr, s.daemon.Socket)
	}
	rec := waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool { return r.num("status") == 502 })
	if rec.str("error") == "" {
		t.Errorf("audit record of the 502 has no error: %v", rec)
	}

	s.daemon.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.cli.Run(nil, "ps", "-q")
		if r.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker ps through the gateway still fails 10 s after dockerd restarted: %v\n%s", r.Err, r.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, want := s.cli.Must(t, "version", "--format", "{{.Server.APIVersion}}"),
		s.direct.Must(t, "version", "--format", "{{.Server.APIVersion}}"); got != want {
		t.Errorf("API version after restart = %q, want %q", got, want)
	}
}
