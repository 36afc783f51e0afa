package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/dockmoat/dockmoat/internal/pki"
)

// doctorSuite holds the daemons and client material of TestDoctor.
type doctorSuite struct {
	stateDir string
	// mutual serves --tlsverify with a dockmoat certificate for
	// DNS:docker.example.test and IP:127.0.0.1, but not localhost.
	mutual *dockertest.Daemon
	// classic serves --tlsverify with certificates made by the classic
	// openssl recipe: a CA without keyUsage and a server certificate with
	// CN=localhost and no subjectAltName.
	classic *dockertest.Daemon
	// tlsOnly encrypts but accepts any client (--tlsverify=false).
	tlsOnly *dockertest.Daemon
	// good is a dockmoat client bundle, and classicClient a client bundle
	// from the classic CA.
	good, classicClient string
}

// TestDoctor covers the field cases doctor must explain, each on real
// files and a real dockerd, and checks that the docker CLI fails (or
// works) the way doctor predicts.
func TestDoctor(t *testing.T) {
	dockertest.Require(t, "openssl")
	s := newDoctorSuite(t)
	t.Run("healthy client", s.testHealthy)
	t.Run("A01 CN-only server certificate", s.testCNOnly)
	t.Run("A02 dialled IP not in SANs", s.testIPNotInSANs)
	t.Run("A02 dialled name not in SANs", s.testNameNotInSANs)
	t.Run("A05 expired client certificate", s.testExpiredClient)
	t.Run("A05 expired CA file", s.testExpiredCA)
	t.Run("A06 encrypted client key", s.testEncryptedKey)
	t.Run("A08 EC client key", s.testECKey)
	t.Run("B04 TLS without client authentication", s.testTLSOnly)
	t.Run("B05 plain HTTP to TLS port", s.testPlainToTLS)
	t.Run("C01 DOCKER_TLS_VERIFY=0", s.testTLSVerifyZero)
	t.Run("C02 no client certificate", s.testNoClientCert)
	t.Run("C04 DOCKER_HOST beats context", s.testHostBeatsContext)
	t.Run("C04 context with TLS files", s.testContext)
	t.Run("Java Python Node messages explained", s.testClientMessages)
	t.Run("closed port", s.testClosedPort)
	t.Run("unix socket", s.testUnixSocket)
}

func newDoctorSuite(t *testing.T) *doctorSuite {
	s := &doctorSuite{stateDir: initTestCA(t)}
	server := issueDockerdCert(t, s.stateDir, "docker.example.test")
	s.good = issueClient(t, s.stateDir, "good")

	s.mutual = dockertest.Start(t, dockertest.Options{
		TCPAddr: "127.0.0.1:0", TLSCACert: server.CA, TLSCert: server.Cert, TLSKey: server.Key, TLSVerify: true,
	})
	s.tlsOnly = dockertest.Start(t, dockertest.Options{
		TCPAddr: "127.0.0.1:0", TLSCACert: server.CA, TLSCert: server.Cert, TLSKey: server.Key,
		ExtraArgs: []string{"--tlsverify=false"},
	})

	classicDir := t.TempDir()
	makeClassicPKI(t, classicDir)
	s.classic = dockertest.Start(t, dockertest.Options{
		TCPAddr:   "127.0.0.1:0",
		TLSCACert: filepath.Join(classicDir, "ca.pem"),
		TLSCert:   filepath.Join(classicDir, "server-cert.pem"),
		TLSKey:    filepath.Join(classicDir, "server-key.pem"),
		TLSVerify: true,
	})
	s.classicClient = filepath.Join(classicDir, "client")
	return s
}

// makeClassicPKI writes what the widespread openssl recipe makes: a CA
// without keyUsage, a server certificate whose host is only in the CN, and
// a client certificate, all RSA.
func makeClassicPKI(t *testing.T, dir string) {
	caConfig := "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n" +
		"[dn]\nCN = classic CA\n" +
		"[v3_ca]\nbasicConstraints = critical,CA:TRUE\nsubjectKeyIdentifier = hash\n"
	writeTestFile(t, filepath.Join(dir, "ca.cnf"), caConfig)
	runClassicOpenSSL(t, dir, "req", "-x509", "-config", "ca.cnf", "-newkey", "rsa:2048", "-nodes",
		"-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "30")
	runClassicOpenSSL(t, dir, "genrsa", "-out", "server-key.pem", "2048")
	signClassic(t, dir, "server-key.pem", "", "/CN=localhost", "serverAuth",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), "server-cert.pem")

	client := filepath.Join(dir, "client")
	if err := os.Mkdir(client, 0o700); err != nil {
		t.Fatal(err)
	}
	runClassicOpenSSL(t, client, "genrsa", "-out", "key.pem", "2048")
	signClassic(t, client, "key.pem", "", "/CN=classic-client", "clientAuth",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), "cert.pem")
	copyFile(t, filepath.Join(dir, "ca.pem"), filepath.Join(client, "ca.pem"))
}

// signClassic makes a CSR for key with subject and signs it with the CA as
// the openssl recipes do: no subjectAltName, only an extended key usage.
func signClassic(t *testing.T, dir, key, passin, subject, eku, caCert, caKey, out string) {
	t.Helper()
	writeTestFile(t, filepath.Join(dir, "ext.cnf"), "extendedKeyUsage = "+eku+"\n")
	req := []string{"req", "-new", "-key", key, "-subj", subject, "-out", "req.csr"}
	if passin != "" {
		req = append(req, "-passin", "pass:"+passin)
	}
	runClassicOpenSSL(t, dir, req...)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	runClassicOpenSSL(t, dir, "x509", "-req", "-in", "req.csr", "-CA", caCert, "-CAkey", caKey,
		"-set_serial", serial.String(), "-days", "30", "-extfile", "ext.cnf", "-out", out)
}

func runClassicOpenSSL(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runDoctor runs dockmoat with env added to a private HOME and
// DOCKER_CONFIG, as a user's shell would.
func runDoctor(t *testing.T, env []string, args ...string) result {
	t.Helper()
	home := t.TempDir()
	env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker")}, env...)
	return runDockmoatEnv(t, env, "", args...)
}

// tlsEnv returns the environment of a TLS client of addr with bundle.
func tlsEnv(addr, bundle string) []string {
	return []string{"DOCKER_HOST=tcp://" + addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + bundle}
}

// dockerCLI returns a docker CLI with exactly env.
func dockerCLI(t *testing.T, env ...string) *dockertest.CLI {
	cli := dockertest.NewCLI(t, "", "")
	cli.Env = env
	return cli
}

// wantDoctor checks the exit code and that stdout contains every one of
// parts.
func wantDoctor(t *testing.T, r result, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("doctor exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.stdout, p) {
			t.Errorf("doctor stdout has no %q:\n%s", p, r.stdout)
		}
	}
}

// wantCLIFailure runs docker version with env, checks that it fails with
// a message containing want, and that doctor --explain maps that message
// to the explanation id.
func wantCLIFailure(t *testing.T, env []string, want, id string) {
	t.Helper()
	res := dockerCLI(t, env...).Run(nil, "version", "--format", "{{.Server.Version}}")
	if res.Err == nil {
		t.Errorf("docker version succeeded, want it to fail with %q", want)
		return
	}
	if !strings.Contains(res.Stderr, want) {
		t.Errorf("docker version stderr = %q, want it to contain %q", res.Stderr, want)
	}
	r := runDockmoat(t, "", "doctor", "--explain", res.Stderr)
	if r.code != 0 || !strings.Contains(r.stdout, id+" (matched") {
		t.Errorf("doctor --explain of the CLI error: exit %d, stdout %q; want explanation %s", r.code, r.stdout, id)
	}
}

func (s *doctorSuite) testHealthy(t *testing.T) {
	env := tlsEnv(s.mutual.TCPAddr, s.good)
	dockerCLI(t, env...).Must(t, "version")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 0, "OK      client:", "the client would connect", "requires a client certificate")
}

func (s *doctorSuite) testCNOnly(t *testing.T) {
	_, port, _ := net.SplitHostPort(s.classic.TCPAddr)
	env := tlsEnv(net.JoinHostPort("localhost", port), s.classicClient)
	wantCLIFailure(t, env, "legacy Common Name field", "legacy-common-name")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1,
		"has no subjectAltName, only a subject CN",
		"dockmoat up --dns localhost", "daemon-config --san localhost --reissue",
		// The classic CA has no keyUsage, which Python 3.13 rejects.
		"has no keyUsage extension")
}

func (s *doctorSuite) testIPNotInSANs(t *testing.T) {
	env := tlsEnv(s.classic.TCPAddr, s.classicClient)
	wantCLIFailure(t, env, "doesn't contain any IP SANs", "hostname-mismatch")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1, "the client dials 127.0.0.1", "dockmoat up --ip 127.0.0.1")
}

func (s *doctorSuite) testNameNotInSANs(t *testing.T) {
	_, port, _ := net.SplitHostPort(s.mutual.TCPAddr)
	env := tlsEnv(net.JoinHostPort("localhost", port), s.good)
	wantCLIFailure(t, env, "certificate is valid for docker.example.test, not localhost", "hostname-mismatch")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1,
		"the client dials localhost, but the server's certificate is valid only for DNS:docker.example.test, IP:127.0.0.1",
		"--dns localhost", "DOCKER_HOST=tcp://docker.example.test:"+port)
}

func (s *doctorSuite) testExpiredClient(t *testing.T) {
	bundle := t.TempDir()
	copyFile(t, filepath.Join(s.good, "ca.pem"), filepath.Join(bundle, "ca.pem"))
	cert, key := signExpired(t, s.stateDir, "expired-client")
	writeTestFile(t, filepath.Join(bundle, "cert.pem"), cert)
	writeTestFile(t, filepath.Join(bundle, "key.pem"), key)

	env := tlsEnv(s.mutual.TCPAddr, bundle)
	if res := dockerCLI(t, env...).Run(nil, "version"); res.Err == nil {
		t.Errorf("docker version with an expired client certificate succeeded")
	}
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1, filepath.Join(bundle, "cert.pem")+" (CN=expired-client) expired on",
		"dockmoat pki renew expired-client")
}

func (s *doctorSuite) testExpiredCA(t *testing.T) {
	bundle := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem"} {
		copyFile(t, filepath.Join(s.good, f), filepath.Join(bundle, f))
	}
	writeTestFile(t, filepath.Join(bundle, "ca.pem"), expiredSelfSignedCA(t))
	r := runDoctor(t, tlsEnv(s.mutual.TCPAddr, bundle), "doctor")
	wantDoctor(t, r, 1, filepath.Join(bundle, "ca.pem")+" (CN=expired CA) expired on")
}

func (s *doctorSuite) testEncryptedKey(t *testing.T) {
	bundle := t.TempDir()
	copyFile(t, filepath.Join(s.good, "ca.pem"), filepath.Join(bundle, "ca.pem"))
	runClassicOpenSSL(t, bundle, "genrsa", "-aes256", "-passout", "pass:secret", "-out", "key.pem", "2048")
	signClassic(t, bundle, "key.pem", "secret", "/CN=a06", "clientAuth",
		pki.CACertPath(s.stateDir), pki.CAKeyPath(s.stateDir), "cert.pem")

	env := tlsEnv(s.mutual.TCPAddr, bundle)
	wantCLIFailure(t, env, "private key", "encrypted-key")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1, "is encrypted with a passphrase", "openssl pkey -in "+filepath.Join(bundle, "key.pem"))
}

func (s *doctorSuite) testECKey(t *testing.T) {
	bundle := t.TempDir()
	copyFile(t, filepath.Join(s.good, "ca.pem"), filepath.Join(bundle, "ca.pem"))
	runClassicOpenSSL(t, bundle, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem")
	signClassic(t, bundle, "key.pem", "", "/CN=a08", "clientAuth",
		pki.CACertPath(s.stateDir), pki.CAKeyPath(s.stateDir), "cert.pem")

	env := tlsEnv(s.mutual.TCPAddr, bundle)
	// The docker CLI reads EC keys; Java clients are the ones that fail.
	dockerCLI(t, env...).Must(t, "version")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 0, "ECDSA P-256 key", "Invalid RSA private key", "--key-type rsa-2048")

	e := runDockmoat(t, "", "doctor", "--explain", "java.security.spec.InvalidKeySpecException: Invalid RSA private key")
	if e.code != 0 || !strings.Contains(e.stdout, "rsa-only-client") {
		t.Errorf("explain of the Java message: exit %d, stdout %q; want rsa-only-client", e.code, e.stdout)
	}
}

func (s *doctorSuite) testTLSOnly(t *testing.T) {
	env := tlsEnv(s.tlsOnly.TCPAddr, s.good)
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 0, "WARNING endpoint:", "accepts TLS clients without a certificate",
		"anyone who reaches it is root", "--tlsverify")
	// Anyone may connect: curl -k without a certificate gets a response.
	dockertest.Require(t, "curl")
	out, err := exec.Command("curl", "-sk", "https://"+s.tlsOnly.TCPAddr+"/_ping").Output()
	if err != nil || string(out) != "OK" {
		t.Errorf("curl -k /_ping = %q, %v; want OK, which proves the port is open", out, err)
	}
}

func (s *doctorSuite) testPlainToTLS(t *testing.T) {
	env := []string{"DOCKER_HOST=tcp://" + s.mutual.TCPAddr, "DOCKER_CERT_PATH=" + s.good}
	wantCLIFailure(t, env, "Client sent an HTTP request to an HTTPS server", "http-to-https")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1,
		"speaks TLS, but the client sends plain HTTP",
		"400 Bad Request",
		"DOCKER_CERT_PATH is set but DOCKER_TLS_VERIFY is not",
		"export DOCKER_TLS_VERIFY=1")
}

func (s *doctorSuite) testTLSVerifyZero(t *testing.T) {
	env := []string{"DOCKER_HOST=tcp://" + s.mutual.TCPAddr, "DOCKER_TLS_VERIFY=0", "DOCKER_CERT_PATH=" + s.good}
	// The docker CLI reads any value as "on", so this works.
	dockerCLI(t, env...).Must(t, "version")
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 0, "DOCKER_TLS_VERIFY=0 still turns TLS verification on", "TLS, verifying the server")
}

func (s *doctorSuite) testNoClientCert(t *testing.T) {
	bundle := t.TempDir()
	copyFile(t, filepath.Join(s.good, "ca.pem"), filepath.Join(bundle, "ca.pem"))
	env := tlsEnv(s.mutual.TCPAddr, bundle)
	res := dockerCLI(t, env...).Run(nil, "version")
	if res.Err == nil {
		t.Fatal("docker version without a client certificate succeeded")
	}
	e := runDockmoat(t, "", "doctor", "--explain", res.Stderr)
	if !strings.Contains(e.stdout, "no-client-certificate") {
		t.Errorf("explain of %q = %q, want no-client-certificate", res.Stderr, e.stdout)
	}
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1, "requires a client certificate but the client has no usable one",
		"does not exist, so the client sends no certificate", "dockmoat pki issue client")
}

// createContext makes docker context "remote" for the mutual daemon with
// the good bundle, with the real docker CLI, and makes it current.
func (s *doctorSuite) createContext(t *testing.T) *dockertest.CLI {
	cli := dockerCLI(t)
	cli.Must(t, "context", "create", "remote", "--docker", "host=tcp://"+s.mutual.TCPAddr+
		",ca="+filepath.Join(s.good, "ca.pem")+",cert="+filepath.Join(s.good, "cert.pem")+
		",key="+filepath.Join(s.good, "key.pem"))
	cli.Must(t, "context", "use", "remote")
	return cli
}

func (s *doctorSuite) testHostBeatsContext(t *testing.T) {
	cli := s.createContext(t)
	env := []string{"DOCKER_CONFIG=" + cli.ConfigDir, "DOCKER_HOST=tcp://" + s.mutual.TCPAddr}
	cli.Env = env[1:]
	// The CLI ignores the context's TLS files because DOCKER_HOST is set.
	if res := cli.Run(nil, "version"); !strings.Contains(res.Stderr, "Client sent an HTTP request to an HTTPS server") {
		t.Errorf("docker version with DOCKER_HOST and a context: stderr %q, want the plain HTTP error", res.Stderr)
	}
	r := runDoctor(t, env, "doctor")
	wantDoctor(t, r, 1, `context "remote" (from currentContext in`, "the docker CLI uses DOCKER_HOST",
		"ignores the context and its TLS files", "(from DOCKER_HOST)")
}

func (s *doctorSuite) testContext(t *testing.T) {
	cli := s.createContext(t)
	cli.Must(t, "version")
	r := runDoctor(t, []string{"DOCKER_CONFIG=" + cli.ConfigDir}, "doctor")
	wantDoctor(t, r, 0, "context remote (from currentContext in", "TLS, verifying the server",
		"tools that read only DOCKER_HOST", "DOCKER_CERT_PATH="+filepath.Join(cli.ConfigDir, "contexts", "tls"))

	r = runDoctor(t, []string{"DOCKER_CONFIG=" + cli.ConfigDir, "DOCKER_CONTEXT=remote"}, "doctor", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"source": "context remote (from DOCKER_CONTEXT)"`) {
		t.Errorf("doctor --json with DOCKER_CONTEXT: exit %d, stdout %s", r.code, r.stdout)
	}
	r = runDoctor(t, []string{"DOCKER_CONFIG=" + cli.ConfigDir, "DOCKER_CONTEXT=missing"}, "doctor")
	if r.code != 2 || !strings.Contains(r.stderr, `context "missing"`) {
		t.Errorf("doctor with an unknown context: exit %d, stderr %q; want 2 and the context named", r.code, r.stderr)
	}
}

func TestDoctorExplainStdin(t *testing.T) {
	trace := "Exception in thread \"main\" javax.net.ssl.SSLHandshakeException: PKIX path building failed\n" +
		"\tat java.base/sun.security.ssl.Alert.createSSLException(Alert.java:131)\n" +
		"Caused by: sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path\n"
	r := runDockmoat(t, trace, "doctor", "--explain", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "unknown-authority (matched") {
		t.Errorf("explain of a stack trace on stdin: exit %d, stdout %q; want unknown-authority", r.code, r.stdout)
	}
	r = runDockmoat(t, "all good\n", "doctor", "--explain", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "no known cause matches") {
		t.Errorf("explain of an unknown message: exit %d, stderr %q; want 1 and no known cause", r.code, r.stderr)
	}
	r = runDockmoat(t, "", "doctor", "--explain", "")
	if r.code != 2 {
		t.Errorf("explain of an empty message: exit %d, want 2", r.code)
	}
}

func (s *doctorSuite) testClosedPort(t *testing.T) {
	addr := freeLoopbackPort(t)
	r := runDoctor(t, tlsEnv(addr, s.good), "doctor")
	wantDoctor(t, r, 1, "cannot connect to "+addr, "Cannot connect to the Docker daemon")
}

// A unix socket host is probed like a TCP one: doctor connects and sends
// GET /_ping, so a missing socket fails instead of passing unchecked.
func (s *doctorSuite) testUnixSocket(t *testing.T) {
	r := runDoctor(t, []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, "doctor")
	wantDoctor(t, r, 1, "Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock")
	r = runDoctor(t, []string{"DOCKER_HOST=" + s.mutual.Host}, "doctor")
	wantDoctor(t, r, 0, "GET /_ping succeeded")
}

// Small TLS clients in Java, Python and Node that print the error their
// runtime raises, so the messages fed to doctor --explain are real ones.
const (
	javaClient = `import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class TlsClient {
    public static void main(String[] args) {
        try {
            HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
            c.getResponseCode();
        } catch (Exception e) {
            System.err.println(e);
            System.exit(1);
        }
    }
}
`
	pythonClient = `import socket, ssl, sys
host, port, cafile, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
if mode == "strict":
    # Python 3.13 sets this flag by default.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
try:
    with socket.create_connection((host, port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=host):
            pass
except Exception as e:
    print(repr(e), file=sys.stderr)
    sys.exit(1)
`
	nodeClient = `const https = require('https');
const fs = require('fs');
const [url, ca] = process.argv.slice(2);
const options = ca ? { ca: fs.readFileSync(ca) } : {};
https.get(url, options, () => process.exit(0)).on('error', (e) => {
  console.error(e.code + ': ' + e.message);
  process.exit(1);
});
`
)

// testClientMessages makes each runtime fail against the daemons and
// checks that doctor --explain maps its message to the right cause.
func (s *doctorSuite) testClientMessages(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "TlsClient.java"), javaClient)
	writeTestFile(t, filepath.Join(dir, "client.py"), pythonClient)
	writeTestFile(t, filepath.Join(dir, "client.js"), nodeClient)
	_, mutualPort, _ := net.SplitHostPort(s.mutual.TCPAddr)
	_, classicPort, _ := net.SplitHostPort(s.classic.TCPAddr)
	ca := filepath.Join(s.good, "ca.pem")
	trustStore := filepath.Join(dir, "trust.p12")

	tests := []struct {
		name    string
		program string
		args    []string
		want    string
	}{
		{"java default trust store", "java", []string{filepath.Join(dir, "TlsClient.java"),
			"https://" + s.mutual.TCPAddr + "/_ping"}, "unknown-authority"},
		{"java name not in SANs", "java", []string{"-Djavax.net.ssl.trustStore=" + trustStore,
			"-Djavax.net.ssl.trustStorePassword=changeit", filepath.Join(dir, "TlsClient.java"),
			"https://localhost:" + mutualPort + "/_ping"}, "hostname-mismatch"},
		{"python name not in SANs", "python3", []string{filepath.Join(dir, "client.py"),
			"localhost", mutualPort, ca, "default"}, "hostname-mismatch"},
		{"python strict CA without keyUsage", "python3", []string{filepath.Join(dir, "client.py"),
			"localhost", classicPort, filepath.Join(s.classicClient, "ca.pem"), "strict"}, "ca-key-usage"},
		{"node unknown CA", "node", []string{filepath.Join(dir, "client.js"),
			"https://" + s.mutual.TCPAddr + "/_ping"}, "unknown-authority"},
		{"node name not in SANs", "node", []string{filepath.Join(dir, "client.js"),
			"https://localhost:" + mutualPort + "/_ping", ca}, "hostname-mismatch"},
	}
	if _, err := exec.LookPath("keytool"); err == nil {
		runTrustStoreImport(t, ca, trustStore)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dockertest.Require(t, tt.program)
			if tt.program == "java" {
				dockertest.Require(t, "keytool")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, tt.program, tt.args...)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatalf("%s connected, want it to fail", tt.program)
			}
			message := strings.TrimSpace(stderr.String())
			t.Logf("%s printed: %s", tt.program, message)
			r := runDockmoat(t, "", "doctor", "--explain", message)
			if r.code != 0 || !strings.HasPrefix(r.stdout, tt.want+" (matched") {
				t.Errorf("explain of %s's message %q:\n%s\nwant %s first", tt.program, message, r.stdout, tt.want)
			}
		})
	}
}

func runTrustStoreImport(t *testing.T, ca, store string) {
	t.Helper()
	out, err := exec.Command("keytool", "-importcert", "-noprompt", "-alias", "dockmoat-ca", "-file", ca,
		"-keystore", store, "-storetype", "PKCS12", "-storepass", "changeit").CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -importcert: %v\n%s", err, out)
	}
}

// signExpired returns a client certificate and key, signed by the CA in
// stateDir, that expired a day ago.
func signExpired(t *testing.T, stateDir, cn string) (certPEM, keyPEM string) {
	t.Helper()
	caCert := readPEMCert(t, pki.CACertPath(stateDir))
	caKey := readKey(t, pki.CAKeyPath(stateDir))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     time.Now().Add(-24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// expiredSelfSignedCA returns a CA certificate that expired a day ago.
func expiredSelfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "expired CA"},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(-24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
