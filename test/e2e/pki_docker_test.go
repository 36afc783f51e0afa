package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// startTLSDockerd starts a private dockerd with --tlsverify on a loopback
// port, using server certificate name from p and p's CA.
func startTLSDockerd(t *testing.T, p *pkiDir, name string) *dockertest.Daemon {
	t.Helper()
	server := p.path("servers", name)
	return dockertest.Start(t, dockertest.Options{
		TCPAddr:   "127.0.0.1:0",
		TLSCACert: p.path("ca.pem"),
		TLSCert:   filepath.Join(server, "server-cert.pem"),
		TLSKey:    filepath.Join(server, "server-key.pem"),
		TLSVerify: true,
	})
}

// dockerHosts returns DOCKER_HOST values that reach d by 127.0.0.1 and by
// localhost.
func dockerHosts(t *testing.T, d *dockertest.Daemon) []string {
	t.Helper()
	_, port, err := net.SplitHostPort(d.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"tcp://127.0.0.1:" + port, "tcp://localhost:" + port}
}

// runTool runs a program with a timeout and returns its combined output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	dockertest.Require(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// TestPKIDockerKeyTypes starts one dockerd per key type, with CA and server
// keys of that type, and connects the docker CLI with client keys of every
// type, by IP and by name.
func TestPKIDockerKeyTypes(t *testing.T) {
	keyTypes := []string{"ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"}
	for _, serverType := range keyTypes {
		t.Run(serverType, func(t *testing.T) {
			p := initPKI(t, "--key-type", serverType)
			p.must("pki", "issue", "server", "--dns", "localhost", "--ip", "127.0.0.1", "--key-type", serverType)
			for _, clientType := range keyTypes {
				p.must("pki", "issue", "client", "client-"+clientType, "--key-type", clientType)
			}
			verifyOpenSSL(t, p, "server", keyTypes)
			d := startTLSDockerd(t, p, "server")
			for _, clientType := range keyTypes {
				certPath := p.path("clients", "client-"+clientType)
				for _, host := range dockerHosts(t, d) {
					cli := dockertest.NewCLI(t, host, certPath)
					r := cli.Run(nil, "version", "--format", "{{.Server.APIVersion}}")
					if r.Err != nil || strings.TrimSpace(r.Stdout) == "" {
						t.Errorf("client %s via %s: docker version: %v\nstdout: %s\nstderr: %s",
							clientType, host, r.Err, r.Stdout, r.Stderr)
					}
				}
			}
		})
	}
}

// verifyOpenSSL checks the server certificate and every client certificate
// with openssl verify -x509_strict for their purposes, and that a client
// certificate is not accepted as a server certificate.
func verifyOpenSSL(t *testing.T, p *pkiDir, server string, clientTypes []string) {
	t.Helper()
	ca := p.path("ca.pem")
	serverCert := p.path("servers", server, "server-cert.pem")
	out, err := openssl(t, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", ca, serverCert)
	if err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify sslserver: %v\n%s", err, out)
	}
	for _, kt := range clientTypes {
		cert := p.path("clients", "client-"+kt, "cert.pem")
		out, err := openssl(t, "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", ca, cert)
		if err != nil || !strings.Contains(out, ": OK") {
			t.Errorf("openssl verify sslclient %s: %v\n%s", kt, err, out)
		}
		if out, err := openssl(t, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", ca, cert); err == nil {
			t.Errorf("openssl verify accepted client certificate %s as a server certificate: %s", kt, out)
		}
	}
}

// TestPKIDockerClients drives one dockerd with every export format and
// every real client: the docker CLI (PEM folder, env, context import),
// curl, Java's JSSE with the PKCS#12 export, and a client of another CA.
func TestPKIDockerClients(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "server", "--dns", "localhost", "--ip", "127.0.0.1")
	p.must("pki", "issue", "client", "alice", "--group", "dev")
	d := startTLSDockerd(t, p, "server")
	hosts := dockerHosts(t, d)
	_, port, _ := net.SplitHostPort(d.TCPAddr)
	clientDir := p.path("clients", "alice")

	t.Run("dir export", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "bundle")
		r := p.must("pki", "export", "alice", "--format", "dir", "--out", out, "--host", hosts[0])
		for _, want := range []string{
			"--tlscacert=" + filepath.Join(out, "ca.pem"),
			"<dockerHost>https://127.0.0.1:" + port + "</dockerHost>",
			"<dockerCertPath>" + out + "</dockerCertPath>",
			"docker.cert.path=" + out,
			"docker context create alice --docker",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("usage lacks %q\n%s", want, r.stdout)
			}
		}
		for _, host := range hosts {
			if got := dockertest.NewCLI(t, host, out).Must(t, "version", "--format", "{{.Server.Os}}"); got != "linux" {
				t.Errorf("docker version via %s: Server.Os = %q, want linux", host, got)
			}
		}
	})

	t.Run("env export", func(t *testing.T) {
		r := p.must("pki", "export", "alice", "--format", "env", "--host", hosts[1])
		var env []string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			env = append(env, strings.TrimPrefix(line, "export "))
		}
		want := []string{"DOCKER_HOST=" + hosts[1], "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + clientDir}
		if strings.Join(env, "\n") != strings.Join(want, "\n") {
			t.Fatalf("env export = %q, want %q", env, want)
		}
		if !strings.Contains(r.stderr, "docker.tls.verify=1") {
			t.Errorf("stderr lacks the Testcontainers properties:\n%s", r.stderr)
		}
		cli := &dockertest.CLI{Env: env, ConfigDir: t.TempDir()}
		if got := cli.Must(t, "version", "--format", "{{.Server.Os}}"); got != "linux" {
			t.Errorf("docker version with the env export: Server.Os = %q, want linux", got)
		}
	})

	t.Run("context import", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "alice.dockercontext")
		r := p.must("pki", "export", "alice", "--format", "context", "--host", hosts[1], "--out", file)
		if !strings.Contains(r.stdout, "docker context import alice "+file) {
			t.Errorf("usage lacks the import command:\n%s", r.stdout)
		}
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("context file mode = %v, want 0600", st.Mode().Perm())
		}
		cli := &dockertest.CLI{ConfigDir: t.TempDir()}
		cli.Must(t, "context", "import", "dockmoat-alice", file)
		if got := cli.Must(t, "--context", "dockmoat-alice", "version", "--format", "{{.Server.Os}}"); got != "linux" {
			t.Errorf("docker --context version: Server.Os = %q, want linux", got)
		}
	})

	t.Run("java p12", func(t *testing.T) {
		dockertest.Require(t, "java")
		dir := t.TempDir()
		passFile := filepath.Join(dir, "p12.pass")
		if err := os.WriteFile(passFile, []byte("changeit-7f3a\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		store := filepath.Join(dir, "alice.p12")
		r := p.must("pki", "export", "alice", "--format", "p12", "--password-file", passFile, "--out", store, "--host", hosts[0])
		if !strings.Contains(r.stdout, "-Djavax.net.ssl.keyStore="+store) {
			t.Errorf("usage lacks the JSSE key store setting:\n%s", r.stdout)
		}
		for _, host := range []string{"127.0.0.1", "localhost"} {
			out, err := runTool(t, "java", "testdata/pki/Ping.java", store, "changeit-7f3a", host, port)
			if err != nil {
				t.Errorf("java Ping via %s: %v\n%s", host, err, out)
				continue
			}
			if !strings.Contains(out, "HTTP/1.1 200 OK") || !strings.Contains(out, "\nOK") {
				t.Errorf("java Ping via %s printed %q, want 200 OK and body OK", host, out)
			}
		}
		if out, err := runTool(t, "java", "testdata/pki/Ping.java", store, "wrong", "127.0.0.1", port); err == nil {
			t.Errorf("java Ping with a wrong key store password succeeded: %s", out)
		}
	})

	t.Run("curl PEM", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1", "localhost"} {
			out, err := runTool(t, "curl", "--silent", "--show-error", "--fail",
				"--cacert", filepath.Join(clientDir, "ca.pem"),
				"--cert", filepath.Join(clientDir, "cert.pem"),
				"--key", filepath.Join(clientDir, "key.pem"),
				"https://"+net.JoinHostPort(host, port)+"/_ping")
			if err != nil || out != "OK" {
				t.Errorf("curl via %s: %v, output %q, want OK", host, err, out)
			}
		}
		out, err := runTool(t, "curl", "--silent", "--show-error", "--fail",
			"--cacert", filepath.Join(clientDir, "ca.pem"), "https://127.0.0.1:"+port+"/_ping")
		if err == nil {
			t.Errorf("curl without a client certificate succeeded: %q", out)
		}
	})

	t.Run("python strict ssl", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1", "localhost"} {
			out, err := runTool(t, "python3", "testdata/pki/ping.py",
				filepath.Join(clientDir, "ca.pem"), filepath.Join(clientDir, "cert.pem"),
				filepath.Join(clientDir, "key.pem"), host, port)
			if err != nil {
				t.Errorf("python ping.py via %s: %v\n%s", host, err, out)
				continue
			}
			if !strings.Contains(out, "HTTP/1.1 200 OK") || !strings.Contains(out, "\nOK") {
				t.Errorf("python ping.py via %s printed %q, want 200 OK and body OK", host, out)
			}
		}
	})

	t.Run("other CA rejected", func(t *testing.T) {
		other := initPKI(t)
		other.must("pki", "issue", "client", "mallory")
		cli := dockertest.NewCLI(t, hosts[0], other.path("clients", "mallory"))
		r := cli.Run(nil, "version", "--format", "{{.Server.Os}}")
		if r.Err == nil {
			t.Fatalf("docker version with another CA's client certificate succeeded: %s", r.Stdout)
		}
		if !strings.Contains(r.Stderr, "tls:") {
			t.Errorf("stderr = %q, want a TLS error", r.Stderr)
		}
		// The other CA's bundle also does not trust this daemon.
		if !strings.Contains(r.Stderr, "certificate") {
			t.Errorf("stderr = %q, want a certificate error", r.Stderr)
		}
	})

	t.Run("revoked export", func(t *testing.T) {
		p.must("pki", "issue", "client", "gone", "--key-type", "ecdsa-p256")
		p.must("pki", "revoke", "gone")
		r := p.run("pki", "export", "gone", "--format", "dir", "--out", filepath.Join(t.TempDir(), "x"))
		if r.code != 1 || !strings.Contains(r.stderr, `client certificate "gone"`) || !strings.Contains(r.stderr, "is revoked") {
			t.Errorf("export of a revoked client: exit %d stderr %q, want 1 and is revoked", r.code, r.stderr)
		}
		if !bytes.Contains([]byte(r.stderr), []byte("hint:")) {
			t.Errorf("stderr = %q, want a hint", r.stderr)
		}
	})
}
