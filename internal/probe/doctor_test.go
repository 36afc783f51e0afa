package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// bundle writes ca.pem, cert.pem and key.pem for a client of ca and
// returns the folder.
func (ca *testCA) bundle(t *testing.T, spec leafSpec) string {
	t.Helper()
	dir := t.TempDir()
	if spec.ext == nil {
		spec.ext = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	cert, key := ca.issue(t, spec)
	writePEM(t, dir, "ca.pem", certBlock(ca.cert))
	writePEM(t, dir, "cert.pem", certBlock(cert))
	writePEM(t, dir, "key.pem", keyBlock(t, key))
	return dir
}

func hasFinding(fs []Finding, sev Severity, part string) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool {
		return f.Severity == sev && strings.Contains(f.Message, part)
	})
}

func TestCheckClientFiles(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		sev   Severity
		part  string
	}{
		{"valid RSA bundle", func(t *testing.T) string {
			return ca.bundle(t, leafSpec{cn: "ok", rsaKey: true})
		}, SeverityOK, "unencrypted RSA 2048 key"},
		{"expired client certificate", func(t *testing.T) string {
			return ca.bundle(t, leafSpec{cn: "old", notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)})
		}, SeverityError, "(CN=old) expired on"},
		{"expiring soon", func(t *testing.T) string {
			return ca.bundle(t, leafSpec{cn: "soon", notAfter: now.Add(5 * 24 * time.Hour)})
		}, SeverityWarning, "expires on"},
		{"server certificate as client", func(t *testing.T) string {
			return ca.bundle(t, leafSpec{cn: "srv", ext: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		}, SeverityError, "no clientAuth extended key usage"},
		{"EC key", func(t *testing.T) string {
			return ca.bundle(t, leafSpec{cn: "ec"})
		}, SeverityWarning, "Invalid RSA private key"},
		{"key of another certificate", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "a"})
			_, other := ca.issue(t, leafSpec{cn: "b"})
			writePEM(t, dir, "key.pem", keyBlock(t, other))
			return dir
		}, SeverityError, "does not belong to the certificate"},
		{"legacy encrypted key", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "enc"})
			writePEM(t, dir, "key.pem", &pem.Block{Type: "RSA PRIVATE KEY",
				Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}})
			return dir
		}, SeverityError, "encrypted with a passphrase"},
		{"PKCS#8 encrypted key", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "enc8"})
			writePEM(t, dir, "key.pem", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})
			return dir
		}, SeverityError, "encrypted with a passphrase"},
		{"key in cert.pem", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "mixed"})
			_, key := ca.issue(t, leafSpec{cn: "x"})
			writePEM(t, dir, "cert.pem", keyBlock(t, key))
			return dir
		}, SeverityError, "must hold only CERTIFICATE blocks"},
		{"empty ca.pem", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "noca"})
			if err := os.WriteFile(filepath.Join(dir, "ca.pem"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}, SeverityError, "holds no CERTIFICATE PEM block"},
		{"other CA in ca.pem", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "foreign"})
			writePEM(t, dir, "ca.pem", certBlock(newTestCA(t).cert))
			return dir
		}, SeverityWarning, "which is not in"},
		{"missing cert.pem", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "none"})
			os.Remove(filepath.Join(dir, "cert.pem"))
			os.Remove(filepath.Join(dir, "key.pem"))
			return dir
		}, SeverityWarning, "the client sends no certificate"},
		{"world-readable key", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "open", rsaKey: true})
			if err := os.Chmod(filepath.Join(dir, "key.pem"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, SeverityWarning, "has mode 0644"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			fs, _ := checkClientFiles(filesIn(dir), now)
			if !hasFinding(fs, tt.sev, tt.part) {
				t.Errorf("findings = %+v\nwant a %s containing %q", fs, tt.sev, tt.part)
			}
		})
	}
}

func TestCheckCAProfile(t *testing.T) {
	ca := newTestCA(t)
	noUsage := *ca.cert
	noUsage.KeyUsage = 0
	leaf, _ := ca.issue(t, leafSpec{cn: "leaf"})
	tests := []struct {
		name string
		cert *x509.Certificate
		sev  Severity
		part string
	}{
		{"CA without keyUsage", &noUsage, SeverityWarning, "CA cert does not include key usage extension"},
		{"leaf as CA", leaf, SeverityWarning, "is not a CA certificate"},
	}
	for _, tt := range tests {
		fs := checkCAProfile("ca.pem", tt.cert)
		if !hasFinding(fs, tt.sev, tt.part) {
			t.Errorf("%s: findings = %+v, want a %s containing %q", tt.name, fs, tt.sev, tt.part)
		}
	}
	if fs := checkCAProfile("ca.pem", ca.cert); len(fs) != 0 {
		t.Errorf("proper CA: findings = %+v, want none", fs)
	}
}

func endpointConfig(t *testing.T, addr, dir string, tlsOn bool) ClientConfig {
	t.Helper()
	return ClientConfig{Host: "tcp://" + addr, Source: "test", TLS: tlsOn, TLSVerify: tlsOn, Files: filesIn(dir)}
}

func TestDiagnoseProtocolMismatch(t *testing.T) {
	ca := newTestCA(t)
	dir := ca.bundle(t, leafSpec{cn: "client", rsaKey: true})
	plain := httptest.NewServer(fakeDocker)
	t.Cleanup(plain.Close)
	mutual := startTLS(t, fakeDocker, &tls.Config{
		Certificates: []tls.Certificate{ca.serverTLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(),
	})

	tests := []struct {
		name  string
		cfg   ClientConfig
		fails bool
		part  string
	}{
		{"TLS client to plain port", endpointConfig(t, plain.Listener.Addr().String(), dir, true), true,
			"http: server gave HTTP response to HTTPS client"},
		{"plain client to TLS port", endpointConfig(t, mutual, dir, false), true,
			"speaks TLS, but the client sends plain HTTP"},
		{"TLS client to mutual TLS", endpointConfig(t, mutual, dir, true), false,
			"GET /_ping succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Diagnose(context.Background(), tt.cfg, nil, Options{Timeout: 3 * time.Second})
			if rep.ClientFails != tt.fails {
				t.Errorf("client fails = %v, want %v\nfindings: %+v", rep.ClientFails, tt.fails, rep.Findings)
			}
			if !slices.ContainsFunc(rep.Findings, func(f Finding) bool { return strings.Contains(f.Message, tt.part) }) {
				t.Errorf("findings = %+v\nwant one containing %q", rep.Findings, tt.part)
			}
		})
	}
}

func TestDiagnoseClosedDindPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:2375")
	if err != nil {
		t.Skipf("port 2375 on 127.0.0.1 is not free: %v", err)
	}
	l.Close()
	cfg := ClientConfig{Host: "tcp://127.0.0.1:2375", Source: "DOCKER_HOST"}
	rep := Diagnose(context.Background(), cfg, nil, Options{})
	if !rep.ClientFails {
		t.Errorf("client fails = false, want true for a closed port")
	}
	want := "DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/certs/client"
	if !slices.ContainsFunc(rep.Findings, func(f Finding) bool { return strings.Contains(f.Fix, want) }) {
		t.Errorf("findings = %+v\nwant a fix containing %q", rep.Findings, want)
	}
}

func TestDiagnoseServerCertificate(t *testing.T) {
	ca := newTestCA(t)
	dir := ca.bundle(t, leafSpec{cn: "client", rsaKey: true})
	serve := func(spec leafSpec) string {
		cert, key := ca.issue(t, spec)
		return startTLS(t, fakeDocker, &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(),
		})
	}
	serverAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tests := []struct {
		name string
		addr string
		part string
	}{
		{"CN only", serve(leafSpec{cn: "127.0.0.1", ext: serverAuth}), "has no subjectAltName, only a subject CN"},
		{"other IP", serve(leafSpec{cn: "s", ips: []net.IP{net.IPv4(10, 10, 10, 20)}, ext: serverAuth}),
			"valid only for IP:10.10.10.20"},
		{"expired server", serve(leafSpec{cn: "s", ips: []net.IP{net.IPv4(127, 0, 0, 1)}, ext: serverAuth,
			notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)}), "expired on"},
		{"client certificate as server", serve(leafSpec{cn: "s", ips: []net.IP{net.IPv4(127, 0, 0, 1)},
			ext: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), "no serverAuth extended key usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Diagnose(context.Background(), endpointConfig(t, tt.addr, dir, true), nil, Options{})
			if !rep.ClientFails {
				t.Errorf("client fails = false, want true\nfindings: %+v", rep.Findings)
			}
			if !hasFinding(rep.Findings, SeverityError, tt.part) {
				t.Errorf("findings = %+v\nwant an error containing %q", rep.Findings, tt.part)
			}
			for _, f := range rep.Findings {
				if strings.Contains(f.Fix, "pki issue server") {
					t.Errorf("fix %q names pki issue server, which neither dockerd nor the gateway reads", f.Fix)
				}
			}
		})
	}
}

func TestDiagnoseUnknownCA(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	dir := ca.bundle(t, leafSpec{cn: "client", rsaKey: true})
	addr := startTLS(t, fakeDocker, &tls.Config{
		Certificates: []tls.Certificate{other.serverTLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: other.pool(),
	})
	rep := Diagnose(context.Background(), endpointConfig(t, addr, dir, true), nil, Options{})
	for _, part := range []string{"which is not in", "PKIX path building failed", "accepts client certificates issued by"} {
		if !hasFinding(rep.Findings, SeverityError, part) {
			t.Errorf("findings = %+v\nwant an error containing %q", rep.Findings, part)
		}
	}
}

func TestResolveClient(t *testing.T) {
	config := t.TempDir()
	writeContext(t, config, "remote", "tcp://docker.example.test:2376", true)
	writeFile(t, filepath.Join(config, "config.json"), `{"currentContext": "remote"}`)

	tests := []struct {
		name      string
		env       map[string]string
		opts      ClientOptions
		host      string
		source    string
		tlsVerify bool
	}{
		{"current context", nil, ClientOptions{}, "tcp://docker.example.test:2376", "context remote (from currentContext", true},
		{"DOCKER_HOST beats context", map[string]string{"DOCKER_HOST": "tcp://h:2375"}, ClientOptions{},
			"tcp://h:2375", "DOCKER_HOST", false},
		{"DOCKER_TLS_VERIFY=0 is on", map[string]string{"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "0"},
			ClientOptions{}, "tcp://h:2376", "DOCKER_HOST", true},
		{"--host beats DOCKER_HOST", map[string]string{"DOCKER_HOST": "tcp://h:2375"}, ClientOptions{Host: "tcp://f:2376"},
			"tcp://f:2376", "--host", false},
		{"--cert-path turns verification on", nil, ClientOptions{Host: "tcp://f:2376", CertPath: "/certs"},
			"tcp://f:2376", "--host", true},
		{"DOCKER_CONTEXT", map[string]string{"DOCKER_CONTEXT": "remote"}, ClientOptions{},
			"tcp://docker.example.test:2376", "context remote (from DOCKER_CONTEXT)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DOCKER_CONFIG": config}
			for k, v := range tt.env {
				env[k] = v
			}
			tt.opts.Getenv = func(k string) string { return env[k] }
			cfg, _, err := ResolveClient(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tt.host {
				t.Errorf("host = %q, want %q", cfg.Host, tt.host)
			}
			if !strings.HasPrefix(cfg.Source, tt.source) {
				t.Errorf("source = %q, want it to start with %q", cfg.Source, tt.source)
			}
			if cfg.TLSVerify != tt.tlsVerify {
				t.Errorf("TLS verify = %v, want %v", cfg.TLSVerify, tt.tlsVerify)
			}
		})
	}
}

func TestResolveClientErrors(t *testing.T) {
	config := t.TempDir()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string {
			if k == "DOCKER_CONFIG" {
				return config
			}
			return vars[k]
		}
	}
	if _, _, err := ResolveClient(ClientOptions{Getenv: env(map[string]string{"DOCKER_CONTEXT": "nope"})}); err == nil ||
		!strings.Contains(err.Error(), `context "nope"`) {
		t.Errorf("unknown context: error = %v, want it to name the context", err)
	}
	if _, _, err := ResolveClient(ClientOptions{Getenv: env(nil), Host: "tcp://a:1", Context: "b"}); err == nil {
		t.Error("--host with --context succeeded, want an error")
	}
	writeFile(t, filepath.Join(config, "config.json"), `{`)
	if _, _, err := ResolveClient(ClientOptions{Getenv: env(nil)}); err == nil {
		t.Error("broken config.json accepted, want an error")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeContext stores a context the way the docker CLI does, under the
// SHA-256 of its name.
func writeContext(t *testing.T, config, name, host string, withTLS bool) {
	t.Helper()
	meta := map[string]any{
		"Name":      name,
		"Metadata":  map[string]any{},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": false}},
	}
	data, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(config, "contexts", "meta", contextID(name), "meta.json"), string(data))
	if withTLS {
		writeFile(t, filepath.Join(config, "contexts", "tls", contextID(name), "docker", "ca.pem"), "")
	}
}

// startUnixDocker serves fakeDocker on a unix socket in a temporary folder
// and returns the socket path.
func startUnixDocker(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(fakeDocker)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return path
}

// A unix socket host is checked by connecting to it, as for TCP, instead
// of being reported as a client that would connect.
func TestDiagnoseUnixSocket(t *testing.T) {
	live := startUnixDocker(t)
	notDocker := filepath.Join(t.TempDir(), "other.sock")
	l, err := net.Listen("unix", notDocker)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewUnstartedServer(http.NotFoundHandler())
	web.Listener = l
	web.Start()
	t.Cleanup(web.Close)

	tests := []struct {
		name  string
		host  string
		fails bool
		part  string
	}{
		{"serving socket", "unix://" + live, false, "GET /_ping succeeded"},
		{"missing socket", "unix://" + filepath.Join(t.TempDir(), "none.sock"), true, "Cannot connect to the Docker daemon at unix://"},
		{"not docker", "unix://" + notDocker, true, "not a Docker answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ClientConfig{Host: tt.host, Source: "DOCKER_HOST"}
			rep := Diagnose(context.Background(), cfg, nil, Options{Timeout: 3 * time.Second})
			if rep.ClientFails != tt.fails {
				t.Errorf("client fails = %v, want %v\nfindings: %+v", rep.ClientFails, tt.fails, rep.Findings)
			}
			if !slices.ContainsFunc(rep.Findings, func(f Finding) bool { return strings.Contains(f.Message, tt.part) }) {
				t.Errorf("findings = %+v\nwant one containing %q", rep.Findings, tt.part)
			}
		})
	}
}

// Hosts that doctor cannot connect to the way the client does are marked
// unchecked, so the report does not read as a client that connects.
func TestDiagnoseUncheckedHosts(t *testing.T) {
	tests := []struct {
		host      string
		unchecked bool
	}{
		{"ssh://user@docker.example.test", true},
		{"npipe:////./pipe/docker_engine", true},
		{"fd://", true},
		{"unix://" + startUnixDocker(t), false},
	}
	for _, tt := range tests {
		rep := Diagnose(context.Background(), ClientConfig{Host: tt.host, Source: "DOCKER_HOST"}, nil, Options{Timeout: 3 * time.Second})
		if rep.Unchecked != tt.unchecked {
			t.Errorf("Diagnose(%s): unchecked = %v, want %v", tt.host, rep.Unchecked, tt.unchecked)
		}
	}
}
