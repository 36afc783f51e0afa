package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/audit"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testGateway is a running gateway on 127.0.0.1 with its logs.
type testGateway struct {
	srv    *Server
	addr   string
	files  *testFiles
	logs   *syncBuffer
	audit  *syncBuffer
	served chan error
}

// startGateway starts a gateway in front of socket. change, if not nil,
// edits the configuration before New.
func startGateway(t testing.TB, files *testFiles, socket string, change func(*Config)) *testGateway {
	t.Helper()
	g := &testGateway{files: files, logs: &syncBuffer{}, audit: &syncBuffer{}, served: make(chan error, 1)}
	cfg := Config{
		Listen:       "127.0.0.1:0",
		DockerSocket: socket,
		CertFile:     files.certFile,
		KeyFile:      files.keyFile,
		CAFile:       files.caFile,
		CRLFile:      files.crlFile,
		Authorizer:   adminOnly{},
		Logger:       slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Audit:        audit.NewJSONLines(g.audit),
		DrainTimeout: 2 * time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	g.addr = ln.Addr().String()
	go func() { g.served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.logs.String())
		}
	})
	return g
}

// client returns an HTTPS client of the gateway that presents cert.
func (g *testGateway) client(cert *issued) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: g.files.clientTLS(cert)},
		Timeout:   30 * time.Second,
	}
}

func (g *testGateway) url(path string) string { return "https://" + g.addr + path }

// auditRecords parses the audit log written so far.
func (g *testGateway) auditRecords(t *testing.T) []audit.Record {
	t.Helper()
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(g.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// fakeDaemon serves handler on a unix socket, standing in for dockerd where
// a test needs behaviour the real daemon cannot be made to show.
func fakeDaemon(t testing.TB, handler http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return socket
}

func pingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Docker-Experimental", "false")
		io.WriteString(w, "OK")
	})
	return mux
}

func TestPingAdminAllowed(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})

	client := g.client(admin)
	// A client that prefers HTTP/2 must still get HTTP/1.1, which attach
	// and exec need.
	client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"h2", "http/1.1"}
	resp, err := client.Get(g.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if string(body) != "OK" {
		t.Errorf("body = %q, want %q", body, "OK")
	}
	if got := resp.Header.Get("Api-Version"); got != "1.41" {
		t.Errorf("Api-Version = %q, want 1.41", got)
	}
	if got := resp.Header.Get("Docker-Experimental"); got != "false" {
		t.Errorf("Docker-Experimental = %q, want false", got)
	}
	if resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN protocol = %q, want http/1.1", resp.TLS.NegotiatedProtocol)
	}

	recs := g.auditRecords(t)
	if len(recs) != 1 {
		t.Fatalf("audit records = %d, want 1", len(recs))
	}
	rec := recs[0]
	if rec.Client != "alice" || rec.Decision != "allow" || rec.Status != 200 || rec.Path != "/_ping" {
		t.Errorf("audit record = %+v, want client alice, allow, 200, /_ping", rec)
	}
	if rec.Serial != admin.cert.SerialNumber.Text(16) {
		t.Errorf("audit serial = %q, want %q", rec.Serial, admin.cert.SerialNumber.Text(16))
	}
	if rec.BytesOut != 2 {
		t.Errorf("audit bytes_out = %d, want 2", rec.BytesOut)
	}
}

func TestNonAdminDenied(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	ci := files.ca.issue(t, leafOptions{name: "ci-runner", groups: []string{"ci"}})

	resp, err := g.client(ci).Get(g.url("/v1.41/containers/json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body.Message, "dockmoat: ") || !strings.Contains(body.Message, "ci-runner") {
		t.Errorf("message = %q, want it to start with \"dockmoat: \" and name the client", body.Message)
	}
	recs := g.auditRecords(t)
	if len(recs) != 1 {
		t.Fatalf("audit records = %d, want 1", len(recs))
	}
	if recs[0].Decision != "deny" || recs[0].Rule != ruleDefaultDeny || recs[0].APIVersion != "1.41" {
		t.Errorf("audit record = %+v, want deny by %s with API version 1.41", recs[0], ruleDefaultDeny)
	}
}

// upgradeRequest is the attach request the docker CLI sends.
const upgradeRequest = "POST /v1.41/containers/c1/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n" +
	"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"

// upperEchoHandler upgrades attach requests and sends back in upper case
// everything the client sends, ending its output only after the client's
// half-close, like "cat" attached to a container.
func upperEchoHandler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.41/containers/c1/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n" +
			"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		buf.Flush()
		data, err := io.ReadAll(buf)
		if err != nil {
			t.Errorf("daemon read: %v", err)
			return
		}
		conn.Write(bytes.ToUpper(data))
	})
	return mux
}

func TestAttachHalfClose(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, upperEchoHandler(t)), nil)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})

	conn, err := tls.Dial("tcp", g.addr, files.clientTLS(admin))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The first stdin bytes arrive with the request, before the 101.
	if _, err := io.WriteString(conn, upgradeRequest+"hello "); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Status != "101 UPGRADED" {
		t.Fatalf("status = %q, want 101 UPGRADED", resp.Status)
	}
	if got := resp.Header.Get("Upgrade"); got != "tcp" {
		t.Errorf("Upgrade = %q, want tcp", got)
	}
	io.WriteString(conn, "world")
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if string(out) != "HELLO WORLD" {
		t.Errorf("output = %q, want %q", out, "HELLO WORLD")
	}

	waitFor(t, "hijack end record", func() bool {
		recs := g.auditRecords(t)
		return len(recs) == 2 && recs[1].Event == audit.EventHijackEnd
	})
	recs := g.auditRecords(t)
	if recs[0].Event != audit.EventHijackStart {
		t.Errorf("first record event = %q, want %q", recs[0].Event, audit.EventHijackStart)
	}
	if recs[1].BytesIn != int64(len("hello world")) || recs[1].BytesOut != int64(len("HELLO WORLD")) {
		t.Errorf("hijack end bytes in/out = %d/%d, want 11/11", recs[1].BytesIn, recs[1].BytesOut)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}
