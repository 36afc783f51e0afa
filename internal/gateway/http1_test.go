package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/identity"
)

// rawClient is a TLS connection to the gateway on which a test writes
// requests by hand and reads responses one by one.
type rawClient struct {
	t    *testing.T
	conn *tls.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, g *testGateway, cert *issued) *rawClient {
	t.Helper()
	conn, err := tls.Dial("tcp", g.addr, g.files.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// response reads one response to a request with method and its body.
func (c *rawClient) response(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read response body: %v", err)
	}
	return resp, string(body)
}

// closed reports whether the gateway closed the connection.
func (c *rawClient) closed() bool {
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.br.ReadByte()
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(interface{ Timeout() bool })
	return ok && ne.Timeout()
}

func TestPipelinedRequests(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	// Three requests arrive in one write, and the gateway must respond to
	// each in order from the bytes it has already read.
	c.send(strings.Repeat("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n", 3))
	for i := 0; i < 3; i++ {
		resp, body := c.response("GET")
		if resp.StatusCode != http.StatusOK || body != "OK" {
			t.Fatalf("response %d: %d %q, want 200 OK", i, resp.StatusCode, body)
		}
	}
	c.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != http.StatusOK {
		t.Errorf("request after the pipelined ones: status %d", resp.StatusCode)
	}
}

func TestMalformedRequests(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})

	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"no Host", "GET /_ping HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"bad Host", "GET /_ping HTTP/1.1\r\nHost: a b\r\n\r\n", http.StatusBadRequest},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http.StatusBadRequest},
		{"HTTP/3", "GET /_ping HTTP/3.0\r\nHost: docker\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"header too large", "GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Big: " +
			strings.Repeat("a", maxHeaderBytes+8<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"unknown transfer encoding", "POST /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: gzip\r\n\r\n",
			http.StatusNotImplemented},
		{"bad Expect", "POST /_ping HTTP/1.1\r\nHost: docker\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx",
			http.StatusExpectationFailed},
		{"control byte in target", "GET /_ping\x00 HTTP/1.1\r\nHost: docker\r\n\r\n", http.StatusBadRequest},
		{"space in header name", "GET /_ping HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding : chunked\r\n\r\n",
			http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, g, admin)
			go io.WriteString(c.conn, tt.request)
			resp, body := c.response("GET")
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d (%q), want %d", resp.StatusCode, body, tt.status)
			}
			if !c.closed() {
				t.Error("connection still open after a malformed request")
			}
		})
	}
}

func TestExpectContinue(t *testing.T) {
	files := newTestFiles(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		w.Write(bytes.ToUpper(data))
	})
	g := startGateway(t, files, fakeDaemon(t, mux), nil)

	t.Run("allowed", func(t *testing.T) {
		c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))
		c.send("POST /echo HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := c.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("first line = %q, %v; want 100 Continue before the body is sent", line, err)
		}
		if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
			t.Fatalf("100 Continue followed by %q, want an empty line", blank)
		}
		c.send("hello")
		resp, body := c.response("POST")
		if resp.StatusCode != http.StatusOK || body != "HELLO" {
			t.Errorf("response = %d %q, want 200 HELLO", resp.StatusCode, body)
		}
	})

	t.Run("denied", func(t *testing.T) {
		c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "bob", groups: []string{"dev"}}))
		c.send("POST /echo HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, _ := c.response("POST")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d, want 403 without a 100 Continue", resp.StatusCode)
		}
		if !resp.Close {
			t.Error("denied request with an unsent body kept the connection open")
		}
	})
}

func TestDeniedBodyIsDrained(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "bob", groups: []string{"dev"}}))

	// The handler responds without reading the short body, so the gateway
	// drops it and reads the next request after it.
	c.send("POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 13\r\n\r\n{\"Image\":\"x\"}")
	c.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	for i := 0; i < 2; i++ {
		resp, _ := c.response("GET")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("response %d: status %d, want 403", i, resp.StatusCode)
		}
		if resp.Close {
			t.Fatalf("response %d closed the connection", i)
		}
	}
}

func TestHTTP10ClosesAfterResponse(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	c.send("GET /_ping HTTP/1.0\r\n\r\n")
	resp, body := c.response("GET")
	if resp.StatusCode != http.StatusOK || body != "OK" {
		t.Fatalf("response = %d %q, want 200 OK", resp.StatusCode, body)
	}
	if !resp.Close || !c.closed() {
		t.Error("HTTP/1.0 connection not closed after the response")
	}
}

func TestIdleTimeoutClosesConnection(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	c.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if !c.closed() {
		t.Error("idle connection still open 2s after a 300ms idle timeout")
	}
}

func TestClientGoneCancelsStream(t *testing.T) {
	files := newTestFiles(t)
	ended := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	})
	g := startGateway(t, files, fakeDaemon(t, mux), nil)
	c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	c.send("GET /events HTTP/1.1\r\nHost: docker\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %v, %v", resp, err)
	}
	// The stream carries nothing, so only a read of the client connection
	// can notice that the client has gone.
	c.conn.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon request still open 5s after the client closed its connection")
	}
}

func TestRevokedDuringHandshake(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	bob := files.ca.issue(t, leafOptions{name: "bob", groups: []string{"admin"}})

	// The client holds its certificate back until a reload has revoked
	// it. The gateway chose the CRL for this handshake at the ClientHello,
	// before the reload.
	requested := make(chan struct{})
	release := make(chan struct{})
	config := files.clientTLS(nil)
	config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		close(requested)
		<-release
		return &bob.pair, nil
	}
	type dialResult struct {
		conn *tls.Conn
		err  error
	}
	dialed := make(chan dialResult, 1)
	go func() {
		conn, err := tls.Dial("tcp", g.addr, config)
		dialed <- dialResult{conn, err}
	}()
	<-requested
	writeFile(t, files.crlFile, files.ca.crlPEM(t, bob.cert))
	if err := g.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	close(release)

	d := <-dialed
	if d.err != nil {
		return
	}
	defer d.conn.Close()
	d.conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(d.conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(d.conn), nil); err == nil {
		t.Errorf("revoked client got %q, want the connection closed", resp.Status)
	}
}

func TestDeniedUploadGetsResponse(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	client := g.client(files.ca.issue(t, leafOptions{name: "bob", groups: []string{"dev"}}))

	// The body is far past what the gateway drains, so it closes the
	// connection while the client is still sending. The client must read
	// the 403 rather than a connection reset.
	body := bytes.Repeat([]byte("x"), 16<<20)
	for i := 0; i < 5; i++ {
		resp, err := client.Post(g.url("/build"), "application/x-tar", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("upload %d: %v, want a 403 response", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("upload %d: status %d, want 403", i, resp.StatusCode)
		}
	}
}

// abortingAuthorizer panics with http.ErrAbortHandler, the way a handler
// cuts a response short.
type abortingAuthorizer struct{}

func (abortingAuthorizer) Authorize(identity.Identity, *http.Request) Decision {
	panic(http.ErrAbortHandler)
}

func TestAbortHandlerClosesQuietly(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), func(c *Config) { c.Authorizer = abortingAuthorizer{} })
	c := dialRaw(t, g, files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}}))

	c.send("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	if !c.closed() {
		t.Error("connection still open after the handler aborted")
	}
	if strings.Contains(g.logs.String(), "panic while serving a request") {
		t.Error("the gateway logged http.ErrAbortHandler as a panic")
	}
}

// echoPathHandler responds with the request's method, path and body length,
// streaming the response in three flushed parts for paths under /stream/.
func echoPathHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply := fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, len(body))
		if !strings.HasPrefix(r.URL.Path, "/stream/") {
			io.WriteString(w, reply)
			return
		}
		for _, part := range []string{reply[:2], reply[2:4], reply[4:]} {
			io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	})
}

func TestConcurrentPipelinedResponsesMatch(t *testing.T) {
	files := newTestFiles(t)
	g := startGateway(t, files, fakeDaemon(t, echoPathHandler()), nil)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})

	// Each request carries its own ID in the path. A response that reached
	// the wrong request, on this connection or another, names another ID.
	type pipelined struct{ request, method, want string }
	forms := []func(id string) pipelined{
		func(id string) pipelined {
			return pipelined{"GET /a/" + id + " HTTP/1.1\r\nHost: docker\r\n\r\n", "GET", "GET /a/" + id + " 0"}
		},
		func(id string) pipelined {
			return pipelined{"POST /b/" + id + " HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n\r\nhello",
				"POST", "POST /b/" + id + " 5"}
		},
		func(id string) pipelined {
			return pipelined{"POST /c/" + id + " HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"3\r\nabc\r\n0\r\n\r\n", "POST", "POST /c/" + id + " 3"}
		},
		func(id string) pipelined {
			return pipelined{"POST /d/" + id + " HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
				"POST", "POST /d/" + id + " 2"}
		},
		func(id string) pipelined {
			return pipelined{"GET /stream/" + id + " HTTP/1.1\r\nHost: docker\r\n\r\n", "GET", "GET /stream/" + id + " 0"}
		},
		func(id string) pipelined {
			return pipelined{"HEAD /e/" + id + " HTTP/1.1\r\nHost: docker\r\n\r\n", "HEAD", ""}
		},
	}

	var wg sync.WaitGroup
	for worker := 0; worker < 8; worker++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			for round := 0; round < 15; round++ {
				conn, err := tls.Dial("tcp", g.addr, files.clientTLS(admin))
				if err != nil {
					t.Error(err)
					return
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(conn)
				var sent []pipelined
				var batch strings.Builder
				for i := 0; i < 1+(worker+round)%5; i++ {
					ex := forms[(worker*7+round*3+i)%len(forms)](fmt.Sprintf("%d-%d-%d", worker, round, i))
					sent = append(sent, ex)
					batch.WriteString(ex.request)
				}
				go io.WriteString(conn, batch.String())
				for _, ex := range sent {
					resp, err := http.ReadResponse(br, &http.Request{Method: ex.method})
					for err == nil && resp.StatusCode == http.StatusContinue {
						resp, err = http.ReadResponse(br, &http.Request{Method: ex.method})
					}
					if err != nil {
						t.Errorf("response to %q: %v", ex.request, err)
						break
					}
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Errorf("response body to %q: %v", ex.request, err)
						break
					}
					if string(body) != ex.want {
						t.Errorf("response to %q = %q, want %q", ex.request, body, ex.want)
					}
				}
				conn.Close()
			}
		}(worker)
	}
	wg.Wait()
}
