package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/moby/moby/client"
)

// liveChangeTimeout is how soon a revocation or a changed certificate must
// take effect on new handshakes and open connections.
const liveChangeTimeout = 5 * time.Second

// testPlainHTTP speaks plain HTTP to the TLS port, as a client without
// DOCKER_TLS_VERIFY does, and expects dockerd's own 400 text plus a hint.
func (s *gatewaySuite) testPlainHTTP(t *testing.T) {
	conn := dialRaw(t, s.gw.Addr)
	if _, err := io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the response to plain HTTP: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %s, want 400", resp.Status)
	}
	for _, want := range []string{"Client sent an HTTP request to an HTTPS server.", "DOCKER_TLS_VERIFY"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body %q does not contain %q", body, want)
		}
	}

	plain := dockertest.NewCLI(t, s.gw.Host, "")
	r := plain.Run(nil, "version", "--format", "{{.Server.Version}}")
	if r.Err == nil {
		t.Errorf("docker version over plain HTTP succeeded: %q", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "Client sent an HTTP request to an HTTPS server") {
		t.Errorf("docker CLI over plain HTTP printed %q, want the daemon's 400 text", r.Stderr)
	}
	s.gw.waitLog(t, liveChangeTimeout, "TLS handshake failed", "plain_http")
}

// testTLSSettings checks the protocol versions and ALPN the gateway
// accepts, and that a connection that sends nothing is closed after the
// header timeout the suite sets.
func (s *gatewaySuite) testTLSSettings(t *testing.T) {
	config := bundleTLSConfig(t, s.admin)
	config.NextProtos = []string{"h2", "http/1.1"}
	conn, err := tls.Dial("tcp", s.gw.Addr, config)
	if err != nil {
		t.Fatalf("handshake offering h2 and http/1.1: %v", err)
	}
	if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
		t.Errorf("negotiated ALPN protocol = %q, want http/1.1", got)
	}
	conn.Close()

	old := bundleTLSConfig(t, s.admin)
	old.MinVersion = tls.VersionTLS10
	old.MaxVersion = tls.VersionTLS11
	if conn, err := tls.Dial("tcp", s.gw.Addr, old); err == nil {
		conn.Close()
		t.Error("handshake with TLS 1.1 succeeded, want TLS 1.2 or later required")
	}

	idle := dialRaw(t, s.gw.Addr)
	_ = idle.SetDeadline(time.Now().Add(suiteHeaderTimeout + 5*time.Second))
	start := time.Now()
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("a connection that sent nothing received data")
	} else if elapsed := time.Since(start); elapsed > suiteHeaderTimeout+2*time.Second {
		t.Errorf("silent connection closed after %s (%v), want about the header timeout of %s",
			elapsed.Round(time.Millisecond), err, suiteHeaderTimeout)
	}
}

// testNoClientCertificate connects with the right CA but no certificate.
// With TLS 1.3 the client sees the refusal only on its first read.
func (s *gatewaySuite) testNoClientCertificate(t *testing.T) {
	before := handshakeFailures(t, s.gw, "no_certificate")
	config := bundleTLSConfig(t, s.admin)
	config.Certificates = nil
	conn, err := tls.Dial("tcp", s.gw.Addr, config)
	if err == nil {
		defer conn.Close()
		local := conn.LocalAddr().String()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
		_, err = http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			t.Fatal("a client without a certificate got an HTTP response")
		}
		s.gw.waitLog(t, liveChangeTimeout, "TLS handshake failed", "no_certificate", local)
	}
	if !strings.Contains(err.Error(), "certificate required") && !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("client error = %v, want a TLS alert about the missing certificate", err)
	}
	if after := handshakeFailures(t, s.gw, "no_certificate"); after <= before {
		t.Errorf("dockmoat_tls_handshake_failures_total{reason=\"no_certificate\"} = %v after the refusal, want more than %v", after, before)
	}
}

// testOtherCA presents a client certificate from a second dockmoat CA, with
// the gateway's own ca.pem, so only the client certificate is wrong. Go's
// TLS client, and so the docker CLI, sends no certificate when its issuer is
// not among the CAs the server names, so the gateway logs that case as
// no_certificate. A raw client that sends the certificate anyway, as
// OpenSSL-based clients do, must be logged as unknown_ca.
func (s *gatewaySuite) testOtherCA(t *testing.T) {
	otherState := filepath.Join(t.TempDir(), "other-ca")
	mustDockmoat(t, "pki", "init", "--dir", otherState, "--name", "Other CA")
	intruder := issueClient(t, otherState, "intruder", "admin")
	bundle := t.TempDir()
	copyFile(t, filepath.Join(s.admin, "ca.pem"), filepath.Join(bundle, "ca.pem"))
	copyFile(t, filepath.Join(intruder, "cert.pem"), filepath.Join(bundle, "cert.pem"))
	copyFile(t, filepath.Join(intruder, "key.pem"), filepath.Join(bundle, "key.pem"))

	r := dockertest.NewCLI(t, s.gw.Host, bundle).Run(nil, "ps")
	if r.Err == nil {
		t.Fatalf("docker ps with a certificate from another CA succeeded: %q", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "remote error: tls") {
		t.Errorf("docker ps printed %q, want a TLS alert from the gateway", r.Stderr)
	}

	before := handshakeFailures(t, s.gw, "unknown_ca")
	config := bundleTLSConfig(t, bundle)
	cert := config.Certificates[0]
	config.Certificates = nil
	config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	conn, err := tls.Dial("tcp", s.gw.Addr, config)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
		_, err = http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client certificate from another CA got an HTTP response")
	}
	if !strings.Contains(err.Error(), "unknown certificate authority") && !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("client error = %v, want a TLS alert about the unknown CA", err)
	}
	s.gw.waitLog(t, liveChangeTimeout, "TLS handshake failed", "unknown_ca", "CN=intruder")
	if after := handshakeFailures(t, s.gw, "unknown_ca"); after <= before {
		t.Errorf("dockmoat_tls_handshake_failures_total{reason=\"unknown_ca\"} = %v after the refusal, want more than %v", after, before)
	}
	for _, rec := range readAudit(t, s.gw.AuditLog) {
		if rec.str("client") == "intruder" {
			t.Errorf("audit log has a record for the rejected client: %v", rec)
		}
	}
}

// testNonAdminDenied checks that a client in no group, which no rule
// allows to list containers, gets a Docker-style 403 that the CLI prints,
// and an audit record.
func (s *gatewaySuite) testNonAdminDenied(t *testing.T) {
	viewer := issueClient(t, s.gw.StateDir, "e2e-viewer")
	r := dockertest.NewCLI(t, s.gw.Host, viewer).Run(nil, "ps")
	if r.Err == nil {
		t.Fatalf("docker ps as a client outside group admin succeeded: %q", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "Error response from daemon: dockmoat:") {
		t.Errorf("docker ps printed %q, want the gateway's denial as a daemon error", r.Stderr)
	}

	resp, err := bundleHTTPClient(t, viewer).Get("https://" + s.gw.Addr + "/containers/json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("denial body is not JSON: %v", err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status = %s, want 403", resp.Status)
	}
	if !strings.HasPrefix(body.Message, "dockmoat: ") || !strings.Contains(body.Message, "e2e-viewer") {
		t.Errorf("denial message = %q, want it to start with \"dockmoat: \" and name the client", body.Message)
	}

	rec := waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
		return r.str("client") == "e2e-viewer" && r.str("path") == "/containers/json"
	})
	if rec.str("decision") != "deny" || rec.num("status") != 403 {
		t.Errorf("audit record of the denial = %v, want decision deny and status 403", rec)
	}
}

// testRevocation revokes a client that keeps an event stream and an exec
// session open, then expects both closed and new handshakes rejected.
func (s *gatewaySuite) testRevocation(t *testing.T) {
	bundle := issueClient(t, s.gw.StateDir, "e2e-revokee", "admin")
	id := s.runSleeper(t, "e2e-revocation")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := mobyClient(t, s.gw.Host, bundle)

	events := c.Events(ctx, client.EventsListOptions{})
	created, err := c.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true,
	})
	if err != nil {
		t.Fatalf("ExecCreate: %v", err)
	}
	session, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("ExecAttach: %v", err)
	}
	defer session.Close()
	sessionClosed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, session.Reader)
		sessionClosed <- err
	}()

	mustDockmoat(t, "pki", "revoke", "e2e-revokee", "--dir", s.gw.StateDir)
	revoked := time.Now()

	if err := waitStreamEnd(events, time.Until(revoked.Add(liveChangeTimeout))); err != nil {
		t.Errorf("event stream of the revoked client: %v", err)
	} else {
		t.Logf("event stream closed %s after pki revoke", time.Since(revoked).Round(time.Millisecond))
	}
	select {
	case <-sessionClosed:
	case <-time.After(time.Until(revoked.Add(liveChangeTimeout))):
		t.Errorf("exec session of the revoked client still open %s after pki revoke", liveChangeTimeout)
	}

	httpClient := bundleHTTPClient(t, bundle)
	resp, err := httpClient.Get("https://" + s.gw.Addr + "/_ping")
	if err == nil {
		resp.Body.Close()
		t.Errorf("new request with the revoked certificate got %s, want a rejected handshake", resp.Status)
	}
	s.gw.waitLog(t, liveChangeTimeout, "TLS handshake failed", "revoked", "e2e-revokee")
	if n := handshakeFailures(t, s.gw, "revoked"); n < 1 {
		t.Errorf("dockmoat_tls_handshake_failures_total{reason=\"revoked\"} = %v, want at least 1", n)
	}

	// The admin client is not affected.
	s.cli.Must(t, "version")
}

// testCertificateReload renews the gateway's server certificate while a
// docker exec -i session is open, then sends SIGHUP. New handshakes must
// present the new certificate without a signal, and the session must keep
// working throughout.
func (s *gatewaySuite) testCertificateReload(t *testing.T) {
	const name = "e2e-reload"
	s.runSleeper(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	session := s.cli.Command(ctx, "exec", "-i", name, "sh")
	stdin, err := session.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	session.Stderr = &stderr
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	lines := lineReader(stdout)
	if _, err := io.WriteString(stdin, "echo before\n"); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "before", 10*time.Second)

	serverName := s.serverCertificateName(t)
	oldSerial := s.servedSerial(t)
	reloadsBefore := successfulReloads(t, s.gw)
	mustDockmoat(t, "pki", "renew", serverName, "--dir", s.gw.StateDir)
	s.waitServedSerialChange(t, oldSerial)
	if after := successfulReloads(t, s.gw); after <= reloadsBefore {
		t.Errorf("dockmoat_reloads_total{result=\"success\"} = %v after renewal, want more than %v", after, reloadsBefore)
	}

	// SIGHUP reloads too. With no file changed it must leave the gateway
	// and the session as they are.
	if err := s.gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.gw.waitLog(t, liveChangeTimeout, "SIGHUP")

	if _, err := io.WriteString(stdin, "echo after\n"); err != nil {
		t.Fatalf("write to the exec session after reload: %v", err)
	}
	waitLine(t, lines, "after", 10*time.Second)
	stdin.Close()
	if err := session.Wait(); err != nil {
		t.Errorf("docker exec -i session ended with %v after reload\n%s", err, stderr.String())
	}
	s.cli.Must(t, "version")
}

// waitStreamEnd reads events, which may still arrive, until the stream
// ends. It returns an error when the stream is still open after timeout.
func waitStreamEnd(events client.EventsResult, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-events.Messages:
		case <-events.Err:
			return nil
		case <-timer.C:
			return fmt.Errorf("still open after %s", timeout)
		}
	}
}

// serverCertificateName returns the name of the one server certificate that
// dockmoat up issued for the gateway.
func (s *gatewaySuite) serverCertificateName(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.gw.StateDir, "servers"))
	if err != nil {
		t.Fatalf("find the gateway's server certificate: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("state directory has %d server certificates, want the one dockmoat up issued", len(entries))
	}
	return entries[0].Name()
}

// servedSerial returns the serial of the certificate the gateway presents
// to a new handshake.
func (s *gatewaySuite) servedSerial(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, s.admin))
	if err != nil {
		t.Fatalf("handshake with the gateway: %v", err)
	}
	defer conn.Close()
	return fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber)
}

func (s *gatewaySuite) waitServedSerialChange(t *testing.T, old string) {
	t.Helper()
	deadline := time.Now().Add(liveChangeTimeout)
	for s.servedSerial(t) == old {
		if time.Now().After(deadline) {
			t.Fatalf("gateway still presents server certificate %s %s after renewal\n%s",
				old, liveChangeTimeout, s.gw.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// handshakeFailures returns dockmoat_tls_handshake_failures_total for reason.
func handshakeFailures(t testing.TB, g *gatewayProcess, reason string) float64 {
	t.Helper()
	n, _ := sumMetric(scrapeMetrics(t, g.MetricsAddr), "dockmoat_tls_handshake_failures_total", `reason="`+reason+`"`)
	return n
}

// successfulReloads returns dockmoat_reloads_total for successful
// reloads of the server certificate, CA and CRL.
func successfulReloads(t testing.TB, g *gatewayProcess) float64 {
	t.Helper()
	n, _ := sumMetric(scrapeMetrics(t, g.MetricsAddr), "dockmoat_reloads_total", `result="success"`)
	return n
}
