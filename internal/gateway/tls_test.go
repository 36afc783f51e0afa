package gateway

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestPlainHTTPGets400WithHint(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)

	resp, err := http.Get("http://" + g.addr + "/_ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if !strings.HasPrefix(string(body), "Client sent an HTTP request to an HTTPS server.\n") {
		t.Errorf("body = %q, want dockerd's text first", body)
	}
	if !strings.Contains(string(body), "DOCKER_TLS_VERIFY") {
		t.Errorf("body = %q, want a hint naming DOCKER_TLS_VERIFY", body)
	}
}

func TestHandshakeFailureReasons(t *testing.T) {
	files := newTestFiles(t)
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), func(c *Config) { c.Metrics = metrics })

	other := newTestCA(t, "other CA")
	revoked := files.ca.issue(t, leafOptions{name: "revoked", groups: []string{"admin"}})
	writeFile(t, files.crlFile, files.ca.crlPEM(t, revoked.cert))
	if err := g.srv.Reload(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		cert   *issued
		reason string
	}{
		{"no certificate", nil, reasonNoCertificate},
		{"other CA", other.issue(t, leafOptions{name: "mallory"}), reasonUnknownCA},
		{"expired", files.ca.issue(t, leafOptions{name: "old", notAfter: time.Now().Add(-time.Hour)}), reasonExpired},
		{"server key usage", files.ca.issue(t, leafOptions{name: "srv", usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), reasonKeyUsage},
		{"revoked", revoked, reasonRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counterValue(t, metrics.handshakeErrors.WithLabelValues(tt.reason))
			cfg := files.clientTLS(tt.cert)
			if tt.cert != nil {
				// Go clients send no certificate at all when its issuer is
				// not among the CAs the server names, so the certificate is
				// forced, as OpenSSL-based clients send it.
				pair := tt.cert.pair
				cfg.Certificates = nil
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &pair, nil
				}
			}
			if err := handshakeAndRead(g.addr, cfg); err == nil {
				t.Fatal("handshake and first read succeeded, want failure")
			}
			waitFor(t, "handshake failure metric", func() bool {
				return counterValue(t, metrics.handshakeErrors.WithLabelValues(tt.reason)) == before+1
			})
			waitFor(t, "log line with reason "+tt.reason, func() bool {
				return strings.Contains(g.logs.String(), `"reason":"`+tt.reason+`"`)
			})
		})
	}
}

// handshakeAndRead dials addr and sends one request, so that a failure the
// server reports after the client's side of a TLS 1.3 handshake surfaces.
func handshakeAndRead(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	_, err = http.ReadResponse(bufio.NewReader(conn), nil)
	return err
}

func TestRevocationClosesOpenConnection(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, upperEchoHandler(t)), nil)
	watchCtx, stop := contextWithCancel(t)
	defer stop()
	go g.srv.Watch(watchCtx)

	bob := files.ca.issue(t, leafOptions{name: "bob", groups: []string{"admin"}})
	alice := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})
	bobConn := openAttach(t, g, bob)
	aliceConn := openAttach(t, g, alice)

	start := time.Now()
	writeFile(t, files.crlFile, files.ca.crlPEM(t, bob.cert))
	bobConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bobConn.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on the revoked client's session succeeded, want the connection closed")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("revoked session closed after %s, want within 5s", elapsed)
	}

	// The other client's session survives the reload.
	io.WriteString(aliceConn, "still here")
	aliceConn.CloseWrite()
	out, err := io.ReadAll(aliceConn)
	if err != nil {
		t.Fatalf("other client's session: %v", err)
	}
	if string(out) != "STILL HERE" {
		t.Errorf("other client's output = %q, want %q", out, "STILL HERE")
	}
	if err := handshakeAndRead(g.addr, files.clientTLS(bob)); err == nil {
		t.Error("new handshake of the revoked certificate succeeded, want failure")
	}
}

// openAttach starts an upgraded attach session as cert and returns the
// connection positioned after the 101 response.
func openAttach(t *testing.T, g *testGateway, cert *issued) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", g.addr, g.files.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, upgradeRequest)
	// Read the response head byte by byte so no stream byte is buffered
	// away from the caller.
	var head strings.Builder
	b := make([]byte, 1)
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(b); err != nil {
			t.Fatalf("read upgrade response: %v (so far %q)", err, head.String())
		}
		head.WriteByte(b[0])
	}
	conn.SetReadDeadline(time.Time{})
	if !strings.HasPrefix(head.String(), "HTTP/1.1 101") {
		t.Fatalf("response = %q, want 101", head.String())
	}
	return conn
}

func TestReloadServerCertificateKeepsConnections(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, upperEchoHandler(t)), nil)
	watchCtx, stop := contextWithCancel(t)
	defer stop()
	go g.srv.Watch(watchCtx)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})
	session := openAttach(t, g, admin)

	renewed := files.ca.issue(t, leafOptions{name: "gateway", server: true})
	writeFile(t, files.keyFile, renewed.keyPEM)
	writeFile(t, files.certFile, renewed.certPEM)
	waitFor(t, "new server certificate served", func() bool {
		conn, err := tls.Dial("tcp", g.addr, files.clientTLS(admin))
		if err != nil {
			return false
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(renewed.cert.SerialNumber) == 0
	})

	io.WriteString(session, "after reload")
	session.CloseWrite()
	out, err := io.ReadAll(session)
	if err != nil {
		t.Fatalf("session opened before the reload: %v", err)
	}
	if string(out) != "AFTER RELOAD" {
		t.Errorf("output = %q, want %q", out, "AFTER RELOAD")
	}
}

func TestReloadKeepsStateOnBrokenFile(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})

	writeFile(t, files.crlFile, []byte("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n"))
	if err := g.srv.Reload(); err == nil {
		t.Fatal("Reload with a broken CRL succeeded, want an error")
	}
	if err := handshakeAndRead(g.addr, files.clientTLS(admin)); err != nil {
		t.Errorf("handshake after failed reload: %v, want the previous state kept", err)
	}
}

func TestCRLFromOtherCARejected(t *testing.T) {
	files := newTestFiles(t)
	other := newTestCA(t, "other CA")
	writeFile(t, files.crlFile, other.crlPEM(t))
	_, err := New(Config{
		Listen: "127.0.0.1:0", DockerSocket: "/nonexistent.sock",
		CertFile: files.certFile, KeyFile: files.keyFile, CAFile: files.caFile, CRLFile: files.crlFile,
		Authorizer: adminOnly{},
	})
	if err == nil || !strings.Contains(err.Error(), "not signed by the client CA") {
		t.Errorf("New error = %v, want one saying the CRL is not signed by the client CA", err)
	}
}

func TestFailureLogRateLimit(t *testing.T) {
	f := newFailureLog(time.Minute, 2)
	now := time.Now()
	var allowed []bool
	for i := 0; i < 4; i++ {
		_, ok := f.allow(reasonUnknownCA, now)
		allowed = append(allowed, ok)
	}
	want := []bool{true, true, false, false}
	for i := range want {
		if allowed[i] != want[i] {
			t.Errorf("line %d allowed = %v, want %v", i, allowed[i], want[i])
		}
	}
	if _, ok := f.allow(reasonExpired, now); !ok {
		t.Error("first line of another reason suppressed, want it logged")
	}
	suppressed, ok := f.allow(reasonUnknownCA, now.Add(time.Minute))
	if !ok || suppressed != 2 {
		t.Errorf("after the window: allowed %v with %d suppressed, want true with 2", ok, suppressed)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
