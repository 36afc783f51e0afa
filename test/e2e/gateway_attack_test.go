package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/dockmoat/dockmoat/internal/pki"
	"github.com/moby/moby/client"
)

// attackHeaderTimeout is the --header-timeout of the gateway under attack,
// short so that slow-client cases finish quickly.
const attackHeaderTimeout = 2 * time.Second

// attackSuite is one private dockerd and one dockmoat up gateway that the
// transport attacks run against as a client.
type attackSuite struct {
	daemon *dockertest.Daemon
	direct *dockertest.CLI
	gw     *gatewayProcess
	admin  string
	// image is a busybox image tag, built before the tests that run
	// containers.
	image string
}

// TestGatewayAttack attacks the gateway's TLS and HTTP handling from the
// client side and checks that each attempt is rejected or harmless.
func TestGatewayAttack(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	s := &attackSuite{daemon: d, direct: d.CLI(t)}
	stateDir := filepath.Join(t.TempDir(), "state")
	s.gw = startGatewayProcess(t, "up", d, stateDir,
		"--header-timeout", attackHeaderTimeout.String())
	s.admin = s.gw.waitAdminBundle(t)
	s.gw.waitReady(t, s.admin)

	t.Run("client certificates rejected", s.testClientCertificates)
	t.Run("SSLv2 hello", s.testSSLv2Hello)
	t.Run("renegotiation", s.testRenegotiation)
	t.Run("odd SNI names", s.testOddServerNames)
	t.Run("session resumption after revocation", s.testResumptionAfterRevocation)
	t.Run("request forms", s.testRequestForms)
	t.Run("pipelined requests", s.testPipelined)
	t.Run("CL TE smuggling", s.testSmuggling)
	t.Run("huge header", s.testHugeHeader)
	t.Run("slow header", s.testSlowHeader)
	t.Run("truncated body audited", s.testTruncatedBodyAudited)
	t.Run("connection limit", s.testConnectionLimit)
	t.Run("bad CRL keeps old", s.testBadCRLKeepsOld)

	s.image = "attack-busybox"
	dockertest.BusyboxImage(t, s.direct, s.image)
	t.Run("privileged create smuggling", s.testPrivilegedSmuggling)
	t.Run("hijacks leave no descriptors", s.testHijackLeak)
	t.Run("idle connections memory", s.testIdleConnectionsMemory)
	t.Run("unread response memory", s.testUnreadResponseMemory)
	t.Run("shutdown with exec sessions", s.testShutdownWithSessions)
}

// attackTLSConfig returns a TLS configuration that trusts the gateway's CA
// and presents cert as the client certificate whether or not the server
// names its issuer.
func (s *attackSuite) attackTLSConfig(t *testing.T, cert tls.Certificate) *tls.Config {
	config := bundleTLSConfig(t, s.admin)
	config.Certificates = nil
	config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	return config
}

// pingWith sends GET /_ping over a new TLS connection with config and
// returns the response status, or the handshake or read error.
func (s *attackSuite) pingWith(config *tls.Config) (int, error) {
	conn, err := tls.Dial("tcp", s.gw.Addr, config)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// signTestCert signs a new RSA key with parent and parentKey from tmpl and
// returns the pair as a tls.Certificate.
func signTestCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey any) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// testClientCertificates presents certificates that chain to the CA in
// some way but must not be accepted as a client identity.
func (s *attackSuite) testClientCertificates(t *testing.T) {
	stateDir := s.gw.StateDir
	caCert := readPEMCert(t, pki.CACertPath(stateDir))
	caKey := readKey(t, pki.CAKeyPath(stateDir))
	adminPair, err := tls.LoadX509KeyPair(filepath.Join(s.admin, "cert.pem"), filepath.Join(s.admin, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	adminCert, err := x509.ParseCertificate(adminPair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}

	expiredCert, expiredKey := signExpired(t, stateDir, "attack-expired")
	expired, err := tls.X509KeyPair([]byte(expiredCert), []byte(expiredKey))
	if err != nil {
		t.Fatal(err)
	}
	serverPair, err := tls.LoadX509KeyPair(
		filepath.Join(pki.ServerDir(stateDir, "gateway"), "server-cert.pem"),
		filepath.Join(pki.ServerDir(stateDir, "gateway"), "server-key.pem"))
	if err != nil {
		t.Fatalf("load the gateway's server certificate: %v", err)
	}
	serverAuthOnly := signTestCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "attack-serverauth", OrganizationalUnit: []string{"admin"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	// The admin certificate is an end-entity certificate, so a certificate
	// it signs has no valid chain even though it names group admin.
	leafSigned := signTestCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "attack-leaf-signed", OrganizationalUnit: []string{"admin"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, adminCert, adminPair.PrivateKey)
	leafSigned.Certificate = append(leafSigned.Certificate, adminPair.Certificate[0])
	// The CA certificate has no extended key usage, which Go's chain check
	// reads as any usage, so only an explicit check keeps it out.
	caPair, err := tls.LoadX509KeyPair(pki.CACertPath(stateDir), pki.CAKeyPath(stateDir))
	if err != nil {
		t.Fatal(err)
	}
	noEKU := signTestCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "attack-no-eku", OrganizationalUnit: []string{"admin"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, caCert, caKey)

	for _, tc := range []struct {
		name string
		cert tls.Certificate
	}{
		{"expired", expired},
		{"gateway server certificate", serverPair},
		{"serverAuth-only EKU", serverAuthOnly},
		{"signed by a leaf", leafSigned},
		{"CA certificate", caPair},
		{"no extended key usage", noEKU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, err := s.pingWith(s.attackTLSConfig(t, tc.cert))
			if err == nil {
				t.Errorf("GET /_ping returned status %d, want a rejected handshake", status)
			}
		})
	}
	s.gw.waitLog(t, liveChangeTimeout, "TLS handshake failed", "expired")
	s.gw.waitLog(t, liveChangeTimeout, "TLS handshake failed", "wrong_key_usage", "attack-no-eku")
}

// testSSLv2Hello sends an SSLv2-format ClientHello, to which TLS 1.2 servers
// must not reply with a handshake, and expects the connection to close
// without any HTTP response.
func (s *attackSuite) testSSLv2Hello(t *testing.T) {
	conn := dialRaw(t, s.gw.Addr)
	// Record header 0x80 0x2e: a two-byte SSLv2 length, then
	// CLIENT-HELLO (1), version 3.1, cipher-spec length 21, no session
	// id, 16 bytes of challenge.
	hello := []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10}
	hello = append(hello, []byte{
		0x01, 0x00, 0x80, 0x07, 0x00, 0xc0, 0x03, 0x00, 0x80, 0x00, 0x00, 0x35,
		0x00, 0x00, 0x2f, 0x00, 0x00, 0x0a, 0x00, 0x00, 0xff,
	}...)
	hello = append(hello, make([]byte, 16)...)
	if _, err := conn.Write(hello); err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(conn)
	if strings.Contains(string(reply), "HTTP/") {
		t.Errorf("SSLv2 hello got an HTTP reply: %q", reply)
	}
	if len(reply) > 0 && reply[0] == 0x16 {
		t.Errorf("SSLv2 hello got a TLS handshake record %x, want an alert or a closed connection", reply)
	}
}

// testRenegotiation requests a TLS 1.2 renegotiation with openssl s_client
// after one request. Go's TLS server does not renegotiate, so the second
// request on that connection must get no response.
func (s *attackSuite) testRenegotiation(t *testing.T) {
	dockertest.Require(t, "openssl")
	ctx := commandContext(t, 20*time.Second)
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-tls1_2",
		"-connect", s.gw.Addr,
		"-cert", filepath.Join(s.admin, "cert.pem"),
		"-key", filepath.Join(s.admin, "key.pem"),
		"-CAfile", filepath.Join(s.admin, "ca.pem"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// s_client reads commands line by line: "R" on its own line starts a
	// renegotiation, so the requests use bare LF line ends, which Go's
	// HTTP server accepts.
	for _, step := range []string{
		"GET /_ping HTTP/1.1\nHost: docker\n\n",
		"R\n",
		"GET /_ping HTTP/1.1\nHost: docker\nConnection: close\n\n",
	} {
		time.Sleep(time.Second)
		_, _ = io.WriteString(stdin, step)
	}
	time.Sleep(time.Second)
	stdin.Close()
	_ = cmd.Wait()

	out := output.String()
	if !strings.Contains(out, "RENEGOTIATING") {
		t.Fatalf("openssl s_client did not attempt a renegotiation:\n%s", out)
	}
	if got := len(statusLines(out)); got != 1 {
		t.Errorf("got %d HTTP responses around a renegotiation, want 1 (before it):\n%s", got, out)
	}
}

// testOddServerNames sends SNI names that match nothing in the server
// certificate. The gateway has one certificate, so each handshake must
// complete with it and the request succeed.
func (s *attackSuite) testOddServerNames(t *testing.T) {
	for _, name := range []string{
		"unknown.example",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example",
		"xn--nxasmq6b.example",
		"localhost.",
	} {
		config := bundleTLSConfig(t, s.admin)
		config.ServerName = name
		// The server certificate does not name these hosts, so the
		// client skips verification. Only the server side is under test.
		config.InsecureSkipVerify = true
		status, err := s.pingWith(config)
		if err != nil || status != http.StatusOK {
			t.Errorf("GET /_ping with SNI %q: status %d, %v; want 200", name, status, err)
		}
	}
}

// testResumptionAfterRevocation resumes a TLS session that was made before
// the client certificate was revoked. The resumed handshake must fail
// like a full one.
func (s *attackSuite) testResumptionAfterRevocation(t *testing.T) {
	bundle := issueClient(t, s.gw.StateDir, "attack-resumer", "admin")
	config := bundleTLSConfig(t, bundle)
	config.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		config.MaxVersion = version
		if status, err := s.pingWith(config); err != nil || status != http.StatusOK {
			t.Fatalf("first GET /_ping with TLS %x: status %d, %v", version, status, err)
		}
	}
	mustDockmoat(t, "pki", "revoke", "attack-resumer", "--dir", s.gw.StateDir)
	s.gw.waitLog(t, liveChangeTimeout, "reload")

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		config.MaxVersion = version
		deadline := time.Now().Add(liveChangeTimeout)
		var status int
		var err error
		for time.Now().Before(deadline) {
			if status, err = s.pingWith(config); err != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err == nil {
			t.Errorf("resumed TLS %x session of a revoked client: GET /_ping returned %d, want a rejected handshake", version, status)
		}
	}
}

// rawExchange sends request over a new admin TLS connection and returns
// everything the gateway writes before it closes the connection or 3 s
// pass.
func (s *attackSuite) rawExchange(t *testing.T, request string) string {
	t.Helper()
	return s.rawExchangeAs(t, s.admin, request)
}

// rawExchangeAs is rawExchange with the client certificate from bundle.
func (s *attackSuite) rawExchangeAs(t *testing.T, bundle, request string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, bundle))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(conn)
	return string(reply)
}

// statusLinePattern matches an HTTP/1.x status line, which may follow the
// previous response's body without a line break.
var statusLinePattern = regexp.MustCompile(`HTTP/1\.[01] \d{3} [^\r\n]*`)

// statusLines returns the status line of every HTTP response in reply.
func statusLines(reply string) []string {
	return statusLinePattern.FindAllString(reply, -1)
}

// testRequestForms sends request lines that a forward proxy or an HTTP/2
// server would act on. None may reach anything but the local daemon or
// switch protocols.
func (s *attackSuite) testRequestForms(t *testing.T) {
	for _, tc := range []struct {
		name, request string
		// wantPrefix is the expected status line prefix.
		wantPrefix string
	}{
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 4"},
		{"CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", "HTTP/1.1 4"},
		{"absolute-form elsewhere", "GET http://192.0.2.1/containers/json HTTP/1.1\r\nHost: 192.0.2.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 400"},
		{"upgrade on ping", "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", "HTTP/1.1 200"},
		{"upgrade on container list", "GET /containers/json HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", "HTTP/1.1 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := s.rawExchange(t, tc.request)
			lines := statusLines(reply)
			if len(lines) == 0 {
				t.Fatalf("no HTTP response; the gateway sent %q", reply)
			}
			if !strings.HasPrefix(lines[0], tc.wantPrefix) {
				t.Errorf("status line = %q, want prefix %q", lines[0], tc.wantPrefix)
			}
			for _, line := range lines {
				if strings.Contains(line, " 101 ") {
					t.Errorf("the gateway switched protocols: %q", line)
				}
			}
		})
	}
}

// testPipelined writes three requests in one TLS record and expects three
// responses in order and one audit record for each.
func (s *attackSuite) testPipelined(t *testing.T) {
	tag := fmt.Sprintf("pipelined-%d", time.Now().UnixNano())
	request := "GET /_ping?" + tag + "=1 HTTP/1.1\r\nHost: docker\r\n\r\n" +
		"GET /nonexistent-" + tag + " HTTP/1.1\r\nHost: docker\r\n\r\n" +
		"GET /version?" + tag + "=3 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
	lines := statusLines(s.rawExchange(t, request))
	if len(lines) != 3 {
		t.Fatalf("got %d responses %q, want 3", len(lines), lines)
	}
	for i, want := range []string{"HTTP/1.1 200", "HTTP/1.1 4", "HTTP/1.1 200"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("response %d = %q, want prefix %q", i+1, lines[i], want)
		}
	}
	for _, path := range []string{"/_ping", "/nonexistent-" + tag, "/version"} {
		waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
			return r.str("path") == path && r.str("client") == "admin"
		})
	}
}

// testSmuggling sends, as a client in no group that may not create
// volumes, requests whose body length the gateway and dockerd could read
// differently. A second request hidden in the body that reached dockerd
// without its own policy decision would create a volume.
func (s *attackSuite) testSmuggling(t *testing.T) {
	outsider := issueClient(t, s.gw.StateDir, "attack-smuggler")
	for i, tc := range []struct {
		name    string
		headers string
	}{
		{"CL and TE", "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"},
		{"TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n"},
		{"TE with space", "Content-Length: %d\r\nTransfer-Encoding:  chunked \r\n"},
		{"TE chunked identity", "Content-Length: %d\r\nTransfer-Encoding: chunked, identity\r\n"},
		{"TE xchunked", "Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n"},
		{"two CL", "Content-Length: %d\r\nContent-Length: 0\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			volume := fmt.Sprintf("smuggled-%d-%d", i, time.Now().UnixNano())
			hidden := "POST /volumes/create HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\n" +
				fmt.Sprintf("Content-Length: %d\r\n\r\n", len(`{"Name":"`+volume+`"}`)) + `{"Name":"` + volume + `"}`
			body := "0\r\n\r\n" + hidden
			request := "POST /_ping HTTP/1.1\r\nHost: docker\r\n" +
				fmt.Sprintf(tc.headers, len(body)) + "\r\n" + body
			reply := s.rawExchangeAs(t, outsider, request)
			r := s.direct.Run(nil, "volume", "ls", "-q", "--filter", "name="+volume)
			if r.Err != nil {
				t.Fatalf("docker volume ls: %v\n%s", r.Err, r.Stderr)
			}
			if strings.Contains(r.Stdout, volume) {
				s.direct.Run(nil, "volume", "rm", volume)
				t.Errorf("a request hidden in the body created volume %s; the gateway replied %q", volume, reply)
			}
		})
	}
}

// testPrivilegedSmuggling hides a privileged container create, which the
// ci preset denies, behind requests that the gateway and dockerd could
// frame differently: in a body, after a body, after a drained or denied
// body and after Expect: 100-continue. The hidden request names an image
// that exists, so if it reached dockerd without its own policy decision,
// dockerd would create the container.
func (s *attackSuite) testPrivilegedSmuggling(t *testing.T) {
	ci := issueClient(t, s.gw.StateDir, "attack-ci-smuggler", "ci")
	privileged := `{"Image":"` + s.image + `","HostConfig":{"Privileged":true}}`
	benign := `{"Image":"` + s.image + `"}`
	hiddenCreate := func(name string) string {
		return "POST /containers/create?name=" + name + " HTTP/1.1\r\nHost: docker\r\n" +
			"Content-Type: application/json\r\nConnection: close\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(privileged)) + privileged
	}
	chunk := func(data string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(data), data) }
	createHead := func(name string) string {
		return "POST /containers/create?name=" + name + " HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
	}

	for i, tc := range []struct {
		name    string
		request func(benignName, hidden string) string
	}{
		{"CL and TE", func(b, hidden string) string {
			body := chunk(benign) + "0\r\n\r\n" + hidden
			return createHead(b) + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(body)) + body
		}},
		{"chunk extension", func(b, hidden string) string {
			return createHead(b) + "Transfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x;ext=\"1\"\r\n%s\r\n", len(benign), benign) + "0;last\r\n\r\n" + hidden
		}},
		{"obs-fold TE", func(b, hidden string) string {
			body := chunk(benign) + "0\r\n\r\n" + hidden
			return createHead(b) + fmt.Sprintf("Content-Length: %d\r\nX-Fold: a\r\n Transfer-Encoding: chunked\r\n\r\n", len(body)) + body
		}},
		{"HTTP/1.0 TE", func(b, hidden string) string {
			body := chunk(benign) + "0\r\n\r\n" + hidden
			return strings.Replace(createHead(b), "HTTP/1.1", "HTTP/1.0", 1) +
				fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(body)) + body
		}},
		{"body past Content-Length", func(b, hidden string) string {
			return createHead(b) + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(benign)) + benign + hidden
		}},
		{"after denied create", func(b, hidden string) string {
			return createHead(b) + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(privileged)) + privileged + hidden
		}},
		{"in drained body", func(_, hidden string) string {
			return fmt.Sprintf("POST /dockmoat-unknown HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n", len(hidden)) +
				hidden + "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
		}},
		{"denied 100-continue", func(b, hidden string) string {
			return createHead(b) + fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(privileged)) +
				privileged + hidden
		}},
		{"allowed 100-continue", func(b, hidden string) string {
			return createHead(b) + fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(benign)) +
				benign + hidden
		}},
		{"upgrade on create", func(b, hidden string) string {
			return createHead(b) + "Connection: Upgrade\r\nUpgrade: tcp\r\n" +
				fmt.Sprintf("Content-Length: %d\r\n\r\n", len(privileged)) + privileged + hidden
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			suffix := fmt.Sprintf("%d-%d", i, time.Now().UnixNano())
			benignName, hiddenName := "attack-benign-"+suffix, "attack-privileged-"+suffix
			t.Cleanup(func() { s.direct.Run(nil, "rm", "-f", benignName, hiddenName) })

			reply := s.rawExchangeAs(t, ci, tc.request(benignName, hiddenCreate(hiddenName)))
			t.Logf("responses: %q", statusLines(reply))
			r := s.direct.Run(nil, "container", "inspect", "--format", "{{.HostConfig.Privileged}}", hiddenName)
			if r.Err == nil {
				t.Errorf("a privileged create hidden in the request stream created %s (Privileged=%s); the gateway replied %q",
					hiddenName, strings.TrimSpace(r.Stdout), statusLines(reply))
			}
		})
	}
}

// testHugeHeader sends a 2 MiB header, twice the gateway's limit, and
// expects 431 without the request reaching the daemon.
func (s *attackSuite) testHugeHeader(t *testing.T) {
	request := "GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Filler: " +
		strings.Repeat("a", 2<<20) + "\r\n\r\n"
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, s.admin))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the response to a 2 MiB header: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status = %s, want 431", resp.Status)
	}
}

// testSlowHeader sends a valid request header one byte every 100 ms, a
// slowloris client, and expects the gateway to close the connection about
// the header timeout after it opened.
func (s *attackSuite) testSlowHeader(t *testing.T) {
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, s.admin))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	header := "GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Slow: " + strings.Repeat("s", 200) + "\r\n\r\n"
	limit := attackHeaderTimeout + 3*time.Second
	for i := 0; i < len(header); i++ {
		select {
		case elapsed := <-closed:
			if elapsed < attackHeaderTimeout/2 {
				t.Errorf("connection closed after %s, before the header timeout of %s", elapsed, attackHeaderTimeout)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{header[i]}); err != nil {
			return
		}
		if time.Since(start) > limit {
			break
		}
	}
	select {
	case <-closed:
	case <-time.After(time.Until(start.Add(limit))):
		t.Errorf("slow header connection still open %s after it opened, want it closed after the header timeout of %s",
			limit, attackHeaderTimeout)
	}
}

// testTruncatedBodyAudited starts an upload with a Content-Length the
// client never completes and closes the connection. The request must still
// leave an audit record.
func (s *attackSuite) testTruncatedBodyAudited(t *testing.T) {
	volume := fmt.Sprintf("truncated-%d", time.Now().UnixNano())
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, s.admin))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.WriteString(conn, "POST /volumes/create?"+volume+"=1 HTTP/1.1\r\nHost: docker\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"Name\":")
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	time.Sleep(300 * time.Millisecond)
	conn.Close()
	rec := waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
		return r.str("remote_addr") == local && r.str("path") == "/volumes/create"
	})
	if got := rec.num("bytes_in"); got >= 1000 {
		t.Errorf("bytes_in = %v for a body cut short, want less than 1000", got)
	}
	if rec.num("status") == http.StatusCreated {
		t.Errorf("truncated create recorded with status 201: %v", rec)
	}
}

// testConnectionLimit runs a second gateway with --max-connections 2,
// holds two connections open and expects a third to wait until one of them
// closes.
func (s *attackSuite) testConnectionLimit(t *testing.T) {
	gw := startGatewayProcess(t, "serve", s.daemon, s.gw.StateDir, "--max-connections", "2")
	gw.waitReady(t, s.admin)
	config := bundleTLSConfig(t, s.admin)
	var openConns []*tls.Conn
	for i := 0; i < 2; i++ {
		conn, err := tls.Dial("tcp", gw.Addr, config)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		openConns = append(openConns, conn)
	}

	third, err := net.DialTimeout("tcp", gw.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	thirdConfig := config.Clone()
	thirdConfig.ServerName = "127.0.0.1"
	tlsThird := tls.Client(third, thirdConfig)
	handshake := make(chan error, 1)
	go func() { handshake <- tlsThird.Handshake() }()
	select {
	case err := <-handshake:
		t.Fatalf("third connection completed its handshake (%v) while 2 of --max-connections 2 were open", err)
	case <-time.After(time.Second):
	}
	openConns[0].Close()
	select {
	case err := <-handshake:
		if err != nil {
			t.Errorf("third connection after one closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("third connection not served within 5 s after one of the open connections closed")
	}
}

// testBadCRLKeepsOld writes a corrupt CRL and then a CRL from another CA
// over crl.pem. Each time the gateway must log why it kept the old CRL and
// go on rejecting a revoked client while serving the others.
func (s *attackSuite) testBadCRLKeepsOld(t *testing.T) {
	revokee := issueClient(t, s.gw.StateDir, "attack-crl-revokee", "admin")
	mustDockmoat(t, "pki", "revoke", "attack-crl-revokee", "--dir", s.gw.StateDir)
	crlPath := filepath.Join(s.gw.StateDir, "crl.pem")
	good, err := os.ReadFile(crlPath)
	if err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(crlPath, good, 0o644)
	waitRejected := func(t *testing.T) {
		deadline := time.Now().Add(liveChangeTimeout)
		for {
			status, err := s.pingWith(bundleTLSConfig(t, revokee))
			if err != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("revoked client still served (status %d) %s after pki revoke", status, liveChangeTimeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRejected(t)

	otherState := filepath.Join(t.TempDir(), "other-ca")
	mustDockmoat(t, "pki", "init", "--dir", otherState, "--name", "Other CA")
	issueClient(t, otherState, "other-client")
	mustDockmoat(t, "pki", "revoke", "other-client", "--dir", otherState)
	foreign, err := os.ReadFile(filepath.Join(otherState, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"corrupt", []byte("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n")},
		{"other CA", foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(s.gw.Log(), "\n")
			if err := os.WriteFile(crlPath, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(liveChangeTimeout)
			logged := false
			for !logged && time.Now().Before(deadline) {
				lines := strings.Split(s.gw.Log(), "\n")
				for _, line := range lines[min(before, len(lines)):] {
					if strings.Contains(line, "crl") && (strings.Contains(line, "ERROR") || strings.Contains(line, "WARN")) {
						logged = true
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !logged {
				t.Errorf("no error about crl.pem logged within %s\n%s", liveChangeTimeout, s.gw.Log())
			}
			if status, err := s.pingWith(bundleTLSConfig(t, revokee)); err == nil {
				t.Errorf("revoked client served with status %d after a %s CRL was written", status, tc.name)
			}
			if status, err := s.pingWith(bundleTLSConfig(t, s.admin)); err != nil || status != http.StatusOK {
				t.Errorf("admin GET /_ping after a %s CRL: status %d, %v; want 200", tc.name, status, err)
			}
		})
	}

	// Restoring the file the gateway still uses changes nothing, but the
	// log must not end on the failed reload.
	if err := os.WriteFile(crlPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	s.gw.waitLog(t, liveChangeTimeout, "valid again")
}

// processStatus returns field (such as "VmRSS", in KiB) from
// /proc/PID/status of the gateway process.
func processStatus(t *testing.T, g *gatewayProcess, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(value)[0])
		if err != nil {
			t.Fatalf("/proc status %s: %v", field, err)
		}
		return n
	}
	t.Fatalf("/proc status has no field %s", field)
	return 0
}

// openDescriptors returns the number of open file descriptors of the
// gateway process.
func openDescriptors(t *testing.T, g *gatewayProcess) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// waitDescriptors waits up to 5 s for the gateway to have at most max open
// file descriptors and returns the last count.
func waitDescriptors(t *testing.T, g *gatewayProcess, max int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := openDescriptors(t, g)
		if n <= max || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runAttackContainer starts a detached container from the suite's image
// and removes it when the test ends.
func (s *attackSuite) runAttackContainer(t *testing.T, name string, args ...string) {
	t.Helper()
	s.direct.Run(nil, "rm", "-f", name)
	s.direct.Must(t, append([]string{"run", "-d", "--name", name, s.image}, args...)...)
	t.Cleanup(func() { s.direct.Run(nil, "rm", "-f", name) })
}

// testHijackLeak runs 30 exec sessions through the gateway, each of which
// upgrades to a raw stream and ends, and expects the gateway's open file
// descriptors to return to where they were.
func (s *attackSuite) testHijackLeak(t *testing.T) {
	const name = "attack-hijack-leak"
	s.runAttackContainer(t, name, "sleep", "300")
	c := mobyClient(t, s.gw.Host, s.admin)
	ctx := commandContext(t, time.Minute)
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	before := waitDescriptors(t, s.gw, 0)

	for i := 0; i < 30; i++ {
		c := mobyClient(t, s.gw.Host, s.admin)
		created, err := c.ExecCreate(ctx, name, client.ExecCreateOptions{
			Cmd: []string{"echo", "hijack"}, AttachStdout: true, AttachStderr: true,
		})
		if err != nil {
			t.Fatalf("ExecCreate %d: %v", i, err)
		}
		session, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatalf("ExecAttach %d: %v", i, err)
		}
		output, _ := io.ReadAll(session.Reader)
		session.Close()
		c.Close()
		if !bytes.Contains(output, []byte("hijack")) {
			t.Fatalf("exec session %d printed %q, want hijack", i, output)
		}
	}

	// A few descriptors of slack cover idle upstream connections kept
	// for reuse.
	if after := waitDescriptors(t, s.gw, before+4); after > before+4 {
		t.Errorf("open descriptors = %d after 30 exec sessions ended, want at most %d (%d before)", after, before+4, before)
	}
	// The end record is written after the client has seen the stream
	// close, so the last one may lag the loop above.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ended := 0
		for _, r := range readAudit(t, s.gw.AuditLog) {
			if r.str("event") == "hijack_end" && strings.Contains(r.str("path"), "/exec/") {
				ended++
			}
		}
		if ended >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("audit log has %d hijack_end records for exec sessions 5 s after the last ended, want 30", ended)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testIdleConnectionsMemory opens 200 TLS connections that send nothing
// and checks the gateway's resident memory and descriptors while they are
// open and after the header timeout has closed them.
func (s *attackSuite) testIdleConnectionsMemory(t *testing.T) {
	const connections = 200
	rssBefore := processStatus(t, s.gw, "VmRSS")
	fdBefore := openDescriptors(t, s.gw)
	config := bundleTLSConfig(t, s.admin)
	var conns []*tls.Conn
	for i := 0; i < connections; i++ {
		conn, err := tls.Dial("tcp", s.gw.Addr, config)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, conn)
	}
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	rssOpen := processStatus(t, s.gw, "VmRSS")
	// NOTE: 64 MiB for 200 connections is a generous bound that catches
	// per-connection buffers of hundreds of KiB, not a measured budget.
	if grown := rssOpen - rssBefore; grown > 64<<10 {
		t.Errorf("VmRSS grew by %d KiB with %d idle connections open, want at most 65536 KiB", grown, connections)
	}
	t.Logf("VmRSS %d KiB before, %d KiB with %d idle connections", rssBefore, rssOpen, connections)

	if after := waitDescriptors(t, s.gw, fdBefore+4); after > fdBefore+4 {
		t.Errorf("open descriptors = %d after the header timeout, want at most %d", after, fdBefore+4)
	}
}

// testUnreadResponseMemory requests 64 MiB of container logs and reads
// none of it. The gateway must not buffer the response, so its resident
// memory stays well below the response size.
func (s *attackSuite) testUnreadResponseMemory(t *testing.T) {
	const name = "attack-unread"
	s.runAttackContainer(t, name, "sh", "-c",
		"yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c 67108864; echo; echo logs-complete; sleep 300")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.direct.Run(nil, "logs", "--tail", "1", name)
		if r.Err == nil && strings.Contains(r.Stdout, "logs-complete") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not finish writing 64 MiB within 30 s", name)
		}
		time.Sleep(200 * time.Millisecond)
	}

	rssBefore := processStatus(t, s.gw, "VmRSS")
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, s.admin))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /containers/"+name+"/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	rssStalled := processStatus(t, s.gw, "VmRSS")
	t.Logf("VmRSS %d KiB before, %d KiB with a stalled 64 MiB response", rssBefore, rssStalled)
	if grown := rssStalled - rssBefore; grown > 16<<10 {
		t.Errorf("VmRSS grew by %d KiB while the client read nothing of a 64 MiB response, want at most 16384 KiB", grown)
	}

	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the stalled response: %v", err)
	}
	n, _ := io.CopyN(io.Discard, resp.Body, 64<<20)
	resp.Body.Close()
	if n < 64<<20 {
		t.Errorf("read %d bytes of logs after the stall, want at least %d", n, 64<<20)
	}
}

// testShutdownWithSessions sends SIGTERM to a gateway with an open event
// stream and two idle exec sessions, and expects it to exit within the
// drain time plus a small margin and close the sessions.
func (s *attackSuite) testShutdownWithSessions(t *testing.T) {
	const drainTimeout = 2 * time.Second
	const name = "attack-shutdown"
	s.runAttackContainer(t, name, "sleep", "300")
	g := startGatewayProcess(t, "serve", s.daemon, s.gw.StateDir, "--drain-timeout", drainTimeout.String())
	g.waitReady(t, s.admin)
	c := mobyClient(t, g.Host, s.admin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	events := c.Events(ctx, client.EventsListOptions{})
	var closed []chan error
	for i := 0; i < 2; i++ {
		created, err := c.ExecCreate(ctx, name, client.ExecCreateOptions{
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
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, session.Reader)
			done <- err
		}()
		closed = append(closed, done)
	}

	signalled := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := g.waitExit(t, drainTimeout+5*time.Second)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Errorf("dockmoat serve exited with %v after SIGTERM, want exit code 0\n%s", err, g.Log())
	}
	t.Logf("gateway exited %s after SIGTERM", time.Since(signalled).Round(time.Millisecond))
	for i, done := range closed {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("exec session %d still open 5 s after the gateway exited", i+1)
		}
	}
	if err := waitStreamEnd(events, 5*time.Second); err != nil {
		t.Errorf("event stream after the gateway exited: %v", err)
	}
}
