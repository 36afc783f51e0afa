package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// fakeDocker responds like the Engine API: /_ping with "OK" and the
// Api-Version header, /version with JSON.
var fakeDocker = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Server", "Docker/20.10.24 (linux)")
	switch r.URL.Path {
	case "/_ping":
		io.WriteString(w, "OK")
	case "/version":
		io.WriteString(w, `{"Version":"20.10.24","ApiVersion":"1.41","Os":"linux","Arch":"amd64"}`)
	default:
		http.NotFound(w, r)
	}
})

func endpointOf(tb testing.TB, addr string) Endpoint {
	tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return Endpoint{Target: addr, Host: host, Port: n}
}

func startTLS(tb testing.TB, handler http.Handler, cfg *tls.Config) string {
	tb.Helper()
	srv := httptest.NewUnstartedServer(handler)
	// Check provokes failed handshakes on purpose; their log lines are noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = cfg
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// startRaw serves each connection with serve on a loopback listener.
func startRaw(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

func TestCheckVerdicts(t *testing.T) {
	ca := newTestCA(t)
	serverCert := ca.serverTLS(t)
	closedPort, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closedPort.Addr().String()
	closedPort.Close()

	plain := httptest.NewServer(fakeDocker)
	t.Cleanup(plain.Close)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx")
		http.NotFound(w, r)
	}))
	t.Cleanup(web.Close)

	// abortsAfterHandshake accepts the handshake without a certificate and
	// then closes, like a proxy that checks the certificate itself.
	abortsAfterHandshake := startRaw(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			ClientAuth:   tls.RequestClientCert,
		})
		if tc.Handshake() != nil {
			return
		}
		if len(tc.ConnectionState().PeerCertificates) == 0 {
			tc.Close()
		}
	})
	// endlessHeader sends a header line that never ends.
	endlessHeader := startRaw(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Filler: ")
		chunk := make([]byte, 32<<10)
		for i := range chunk {
			chunk[i] = 'a'
		}
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	banner := startRaw(t, func(c net.Conn) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n")
		time.Sleep(100 * time.Millisecond)
	})

	tests := []struct {
		name      string
		addr      string
		want      Verdict
		requested bool
	}{
		{"plain docker", plain.Listener.Addr().String(), VerdictPlainAPI, false},
		{"plain web server", web.Listener.Addr().String(), VerdictNotDocker, false},
		{"tls no client auth", startTLS(t, fakeDocker, &tls.Config{
			Certificates: []tls.Certificate{serverCert},
		}), VerdictTLSNoClientAuth, false},
		{"tls requests but accepts none", startTLS(t, fakeDocker, &tls.Config{
			Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequestClientCert,
		}), VerdictTLSNoClientAuth, true},
		{"mutual tls 1.3", startTLS(t, fakeDocker, &tls.Config{
			Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: ca.pool(),
		}), VerdictMutualTLS, true},
		{"mutual tls 1.2", startTLS(t, fakeDocker, &tls.Config{
			Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: ca.pool(), MaxVersion: tls.VersionTLS12,
		}), VerdictMutualTLS, true},
		{"abort after handshake", abortsAfterHandshake, VerdictMutualTLS, true},
		{"tls web server", startTLS(t, http.NotFoundHandler(), &tls.Config{
			Certificates: []tls.Certificate{serverCert},
		}), VerdictNotDocker, false},
		{"ssh banner", banner, VerdictNotDocker, false},
		{"endless header", endlessHeader, VerdictNotDocker, false},
		{"closed port", closedAddr, VerdictClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(context.Background(), endpointOf(t, tt.addr), Options{Timeout: 3 * time.Second})
			if r.Verdict != tt.want {
				t.Fatalf("verdict = %q (%s), want %q", r.Verdict, r.Reason, tt.want)
			}
			if got, want := r.Exposed, tt.want.Exposed(); got != want {
				t.Errorf("exposed = %v, want %v", got, want)
			}
			if r.TLS != nil && r.TLS.ClientCertRequested != tt.requested {
				t.Errorf("client certificate requested = %v, want %v", r.TLS.ClientCertRequested, tt.requested)
			}
		})
	}
}

func TestCheckReportsDockerVersion(t *testing.T) {
	plain := httptest.NewServer(fakeDocker)
	t.Cleanup(plain.Close)
	r := Check(context.Background(), endpointOf(t, plain.Listener.Addr().String()), Options{})
	if r.Docker == nil {
		t.Fatal("docker info missing")
	}
	if r.Docker.Version != "20.10.24" {
		t.Errorf("version = %q, want %q", r.Docker.Version, "20.10.24")
	}
	if r.Docker.APIVersion != "1.41" {
		t.Errorf("API version = %q, want %q", r.Docker.APIVersion, "1.41")
	}
	if r.Docker.Arch != "amd64" {
		t.Errorf("arch = %q, want %q", r.Docker.Arch, "amd64")
	}
}

func TestCheckReportsCertificateAndWeakVersions(t *testing.T) {
	ca := newTestCA(t)
	addr := startTLS(t, fakeDocker, &tls.Config{
		Certificates: []tls.Certificate{ca.serverTLS(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool(),
		MinVersion:   tls.VersionTLS10,
	})
	r := Check(context.Background(), endpointOf(t, addr), Options{})
	if r.TLS == nil || len(r.TLS.Certificates) == 0 {
		t.Fatalf("no certificate reported: %+v", r)
	}
	leaf := r.TLS.Certificates[0]
	if !slices.Contains(leaf.IPAddresses, "127.0.0.1") {
		t.Errorf("IP SANs = %v, want 127.0.0.1 among them", leaf.IPAddresses)
	}
	if leaf.KeyType != "ECDSA P-256" {
		t.Errorf("key type = %q, want %q", leaf.KeyType, "ECDSA P-256")
	}
	if leaf.Issuer != ca.cert.Subject.String() {
		t.Errorf("issuer = %q, want %q", leaf.Issuer, ca.cert.Subject.String())
	}
	if !slices.Contains(r.TLS.WeakVersions, "TLS 1.0") {
		t.Errorf("weak versions = %v, want TLS 1.0 among them", r.TLS.WeakVersions)
	}
	if !slices.Contains(r.TLS.AcceptableCAs, ca.cert.Subject.String()) {
		t.Errorf("acceptable CAs = %v, want the test CA", r.TLS.AcceptableCAs)
	}
}

func TestCheckNoWeakVersionsByDefault(t *testing.T) {
	ca := newTestCA(t)
	addr := startTLS(t, fakeDocker, &tls.Config{Certificates: []tls.Certificate{ca.serverTLS(t)}})
	r := Check(context.Background(), endpointOf(t, addr), Options{})
	if r.TLS == nil {
		t.Fatal("no TLS info")
	}
	if len(r.TLS.WeakVersions) != 0 {
		t.Errorf("weak versions = %v, want none", r.TLS.WeakVersions)
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		target string
		want   []string
	}{
		{"docker.example.test", []string{"docker.example.test:2375", "docker.example.test:2376"}},
		{"10.0.0.5:2376", []string{"10.0.0.5:2376"}},
		{"[::1]:2375", []string{"[::1]:2375"}},
		{"::1", []string{"[::1]:2375", "[::1]:2376"}},
		{"tcp://10.0.0.5", []string{"10.0.0.5:2375", "10.0.0.5:2376"}},
		{"tcp://10.0.0.5:2376", []string{"10.0.0.5:2376"}},
		{"https://h", []string{"h:2376"}},
		{"http://h", []string{"h:2375"}},
	}
	for _, tt := range tests {
		eps, err := ParseTarget(tt.target)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.target, err)
			continue
		}
		var got []string
		for _, e := range eps {
			got = append(got, e.Address())
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseTarget(%q) = %v, want %v", tt.target, got, tt.want)
		}
	}
}

func TestParseTargetRejects(t *testing.T) {
	for _, target := range []string{"", "unix:///var/run/docker.sock", "h:0", "h:99999", "h:x", "tcp://", "a b"} {
		if _, err := ParseTarget(target); err == nil {
			t.Errorf("ParseTarget(%q) succeeded, want an error", target)
		}
	}
}

func TestClassifyDialError(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		name string
		err  error
		want Verdict
	}{
		{"refused", dialErr(syscall.ECONNREFUSED), VerdictClosed},
		{"host unreachable", dialErr(syscall.EHOSTUNREACH), VerdictFiltered},
		// No route from this host: no packet left it, so nothing is
		// known about the target.
		{"network unreachable", dialErr(syscall.ENETUNREACH), VerdictError},
		{"unknown host", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nohost.invalid", IsNotFound: true}}, VerdictError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := classifyDialError(tt.err)
			if got != tt.want {
				t.Errorf("verdict = %q (%s), want %q", got, reason, tt.want)
			}
		})
	}
}
