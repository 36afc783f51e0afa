package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDaemonDownAnswers502ThenRecovers(t *testing.T) {
	files := newTestFiles(t)
	dir, err := os.MkdirTemp("", "gw-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "docker.sock")
	g := startGateway(t, files, socket, nil)
	client := g.client(files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	resp, err := client.Get(g.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Message string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status with dockerd down = %d, want 502", resp.StatusCode)
	}
	if !strings.Contains(body.Message, "unix://"+socket) {
		t.Errorf("message = %q, want it to name unix://%s", body.Message, socket)
	}

	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pingHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err = client.Get(g.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status after dockerd returned = %d, want 200", resp.StatusCode)
	}
}

// TestStreamedHeaderSentAtOnce covers POST /containers/{id}/wait, whose
// header dockerd sends long before its body, and which the docker CLI awaits
// before it starts a container.
func TestStreamedHeaderSentAtOnce(t *testing.T) {
	files := newTestFiles(t)
	release := make(chan struct{})
	defer close(release)
	mux := http.NewServeMux()
	mux.HandleFunc("/containers/c1/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, `{"StatusCode":0}`)
	})
	g := startGateway(t, files, fakeDaemon(t, mux), nil)
	client := g.client(files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))
	client.Timeout = 0

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url("/containers/c1/wait"), nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("response header did not arrive before the body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
}

func TestBrokenDaemonStreamCutsClient(t *testing.T) {
	files := newTestFiles(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		// A chunked response that stops without its last chunk, as when
		// dockerd dies in the middle of a stream.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		buf.Flush()
		conn.Close()
	})
	g := startGateway(t, files, fakeDaemon(t, mux), nil)
	client := g.client(files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	resp, err := client.Get(g.url("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("stream read to a clean end (%q), want an error for the cut stream", body)
	}
	if string(body) != "hello" {
		t.Errorf("body = %q, want the part the daemon sent, %q", body, "hello")
	}
}

// TestUploadStreamsWithoutBuffering sends a body larger than any buffer and
// checks that the daemon receives its first bytes before the client has
// sent the rest, and every byte in the end.
func TestUploadStreamsWithoutBuffering(t *testing.T) {
	files := newTestFiles(t)
	firstBytes := make(chan struct{})
	type result struct {
		n   int64
		sum [32]byte
	}
	received := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/build", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 1024)
		n, _ := io.ReadFull(r.Body, buf)
		close(firstBytes)
		h.Write(buf[:n])
		rest, _ := io.Copy(h, r.Body)
		var sum [32]byte
		h.Sum(sum[:0])
		received <- result{int64(n) + rest, sum}
		io.WriteString(w, "{}")
	})
	g := startGateway(t, files, fakeDaemon(t, mux), nil)
	client := g.client(files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	pr, pw := io.Pipe()
	const size = 8 << 20
	sent := sha256.New()
	go func() {
		chunk := []byte(strings.Repeat("context!", 1024))
		pw.Write(chunk)
		sent.Write(chunk)
		select {
		case <-firstBytes:
		case <-time.After(10 * time.Second):
			pw.CloseWithError(io.ErrUnexpectedEOF)
			return
		}
		for written := len(chunk); written < size; written += len(chunk) {
			pw.Write(chunk)
			sent.Write(chunk)
		}
		pw.Close()
	}()
	resp, err := client.Post(g.url("/build"), "application/x-tar", pr)
	if err != nil {
		t.Fatalf("upload: %v (the gateway may have buffered the body)", err)
	}
	resp.Body.Close()
	got := <-received
	if got.n != size {
		t.Errorf("daemon received %d bytes, want %d", got.n, size)
	}
	if got.sum != [32]byte(sent.Sum(nil)) {
		t.Error("daemon received different bytes than the client sent")
	}
}

func TestShutdownDrainIsBounded(t *testing.T) {
	files := newTestFiles(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	g := startGateway(t, files, fakeDaemon(t, mux), func(c *Config) { c.DrainTimeout = 500 * time.Millisecond })
	client := g.client(files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))
	client.Timeout = 0
	resp, err := client.Get(g.url("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	start := time.Now()
	if err := g.srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Shutdown took %s with a 500ms drain timeout", elapsed)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("event stream ended cleanly, want it cut by the shutdown")
	}
	if err := <-g.served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
}

func TestConnectionLimit(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), func(c *Config) { c.MaxConnections = 1 })
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})

	first, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	// The only slot is held by a connection that has not started TLS, so
	// a second client waits in the accept queue.
	if err := handshakeAndReadWithin(g.addr, files, admin, 500*time.Millisecond); err == nil {
		t.Fatal("second connection served while the limit was reached")
	}
	first.Close()
	if err := handshakeAndReadWithin(g.addr, files, admin, 5*time.Second); err != nil {
		t.Errorf("connection after a slot was freed: %v", err)
	}
}

func handshakeAndReadWithin(addr string, files *testFiles, cert *issued, timeout time.Duration) error {
	cfg := files.clientTLS(cert)
	done := make(chan error, 1)
	go func() { done <- handshakeAndRead(addr, cfg) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return context.DeadlineExceeded
	}
}

func TestConfigValidation(t *testing.T) {
	files := newTestFiles(t)
	valid := Config{
		Listen: "127.0.0.1:0", DockerSocket: "/run/docker.sock",
		CertFile: files.certFile, KeyFile: files.keyFile, CAFile: files.caFile,
		Authorizer: adminOnly{},
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, "invalid listen address"},
		{"no socket", func(c *Config) { c.DockerSocket = "" }, "missing Docker socket"},
		{"no authorizer", func(c *Config) { c.Authorizer = nil }, "missing authorizer"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "invalid idle timeout"},
		{"missing key file", func(c *Config) { c.KeyFile = filepath.Join(files.dir, "nope.pem") }, "read server key"},
		{"CA file is a leaf", func(c *Config) { c.CAFile = files.certFile }, "not a CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAPIVersion(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/v1.41/containers/json", "1.41"},
		{"/v1.24/_ping", "1.24"},
		{"/v1.41", "1.41"},
		{"/_ping", ""},
		{"/v1/containers", ""},
		{"/v1./x", ""},
		{"/va.b/x", ""},
		{"/version", ""},
	}
	for _, tt := range tests {
		if got := apiVersion(tt.path); got != tt.want {
			t.Errorf("apiVersion(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestPooledConnectionAfterDaemonRestart sends a request without a body
// after the daemon has closed the pooled connection it would reuse, as
// after a dockerd restart, and expects it to reach the new daemon.
func TestPooledConnectionAfterDaemonRestart(t *testing.T) {
	files := newTestFiles(t)
	dir, err := os.MkdirTemp("", "gw-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "docker.sock")
	serve := func() *http.Server {
		ln, err := net.Listen("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
		mux.HandleFunc("/containers/c1/start", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		return srv
	}
	first := serve()
	g := startGateway(t, files, socket, nil)
	client := g.client(files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	for _, step := range []struct{ method, path string }{
		{http.MethodGet, "/_ping"},
		{http.MethodPost, "/containers/c1/start"},
	} {
		resp, err := client.Do(mustRequest(t, http.MethodGet, g.url("/_ping")))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()

		first.Close()
		os.Remove(socket)
		first = serve()

		resp, err = client.Do(mustRequest(t, step.method, g.url(step.path)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s after restart: status %d, want the new daemon's response", step.method, step.path, resp.StatusCode)
		}
	}
	first.Close()
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
