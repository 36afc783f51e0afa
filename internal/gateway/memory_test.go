package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// idleConnections is the number of idle client connections TestIdleMemory
// opens.
const idleConnections = 300

// TestIdleMemory compares the memory held per idle keep-alive connection by
// the gateway with that of a plain net/http TLS server, which is how dockerd
// serves TLS. Both counts are goroutine stacks plus live heap after a forced
// GC, and both include the in-process client's share.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of TLS connections")
	}
	files := newTestFiles(t)
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})
	cfg := files.clientTLS(admin)

	baseline := plainTLSServer(t, files)
	basePerConn := idleBytesPerConn(t, baseline, cfg)
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), nil)
	perConn := idleBytesPerConn(t, g.addr, cfg)
	t.Logf("per idle connection: gateway %d KiB, plain TLS server %d KiB, client side included",
		perConn/1024, basePerConn/1024)

	// The gateway keeps no HTTP buffers on an idle connection, which
	// net/http's server does.
	if perConn >= basePerConn {
		t.Errorf("gateway memory per idle connection = %d bytes, want less than the plain server's %d",
			perConn, basePerConn)
	}
}

// plainTLSServer serves /_ping over TLS with the gateway's certificate and
// client certificate check, with no gateway in between.
func plainTLSServer(t *testing.T, files *testFiles) string {
	t.Helper()
	st, err := loadTLSState(&Config{CertFile: files.certFile, KeyFile: files.keyFile, CAFile: files.caFile})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", st.config)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pingHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// idleBytesPerConn opens idleConnections keep-alive connections to addr,
// sends one /_ping on each, and returns the growth of live memory per
// connection while they sit idle.
func idleBytesPerConn(t *testing.T, addr string, cfg *tls.Config) int64 {
	t.Helper()
	before := liveBytes()
	conns := make([]*tls.Conn, 0, idleConnections)
	for i := 0; i < idleConnections; i++ {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	perConn := (liveBytes() - before) / idleConnections
	for _, c := range conns {
		c.Close()
	}
	return perConn
}

func liveBytes() int64 {
	runtime.GC()
	runtime.GC()
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	metrics.Read(samples)
	return int64(samples[0].Value.Uint64() + samples[1].Value.Uint64())
}
