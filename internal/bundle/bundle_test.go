package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/pki"
	"software.sslmate.com/src/go-pkcs12"
)

// issueClient creates a CA and a client "alice" and returns the state
// directory.
func issueClient(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	a, err := pki.Init(dir, pki.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClient(pki.ClientRequest{Name: "alice", Groups: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		in       string
		host     string
		port     string
		wantFail bool
	}{
		{in: "tcp://docker.example.test:2376", host: "docker.example.test", port: "2376"},
		{in: "tcp://127.0.0.1:2376", host: "127.0.0.1", port: "2376"},
		{in: "tcp://[::1]:2376", host: "::1", port: "2376"},
		{in: "https://docker.example.test:2376", wantFail: true},
		{in: "tcp://docker.example.test", wantFail: true},
		{in: "tcp://docker.example.test:0", wantFail: true},
		{in: "tcp://:2376", wantFail: true},
		{in: "unix:///var/run/docker.sock", wantFail: true},
	}
	for _, tt := range tests {
		host, port, err := ParseHost(tt.in)
		if tt.wantFail {
			if err == nil {
				t.Errorf("ParseHost(%q) = %q, %q, want an error", tt.in, host, port)
			}
			continue
		}
		if err != nil || host != tt.host || port != tt.port {
			t.Errorf("ParseHost(%q) = %q, %q, %v, want %q, %q", tt.in, host, port, err, tt.host, tt.port)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats {
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := ParseFormat("jks"); err == nil || !strings.Contains(err.Error(), `"jks"`) {
		t.Errorf("ParseFormat(jks) error = %v, want it to name the value", err)
	}
}

func TestLoadRejectsMismatchedKey(t *testing.T) {
	dir := issueClient(t)
	f, err := Load(dir, "alice")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	other, err := os.ReadFile(pki.CACertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	f.Cert = other
	if _, err := tlsPair(f); err == nil {
		t.Error("tlsPair accepted a key that does not match the certificate")
	}
	f.Key = []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n")
	if _, err := tlsPair(f); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("tlsPair with an encrypted key: error = %v, want it to say encrypted", err)
	}
}

func TestWriteDir(t *testing.T) {
	f, err := Load(issueClient(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle")
	if err := WriteDir(f, out); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"ca.pem": 0o644, "cert.pem": 0o644, "key.pem": 0o600} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, st.Mode().Perm(), want)
		}
	}
}

func TestContextArchive(t *testing.T) {
	f, err := Load(issueClient(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	data, err := ContextArchive(f, "alice", "tcp://127.0.0.1:2376")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[hdr.Name] = body
	}
	for name, want := range map[string][]byte{"tls/docker/ca.pem": f.CA, "tls/docker/cert.pem": f.Cert, "tls/docker/key.pem": f.Key} {
		if !bytes.Equal(files[name], want) {
			t.Errorf("%s differs from the bundle file", name)
		}
	}
	var meta contextMeta
	if err := json.Unmarshal(files["meta.json"], &meta); err != nil {
		t.Fatalf("meta.json: %v", err)
	}
	if got := meta.Endpoints["docker"].Host; got != "tcp://127.0.0.1:2376" {
		t.Errorf("docker endpoint host = %q, want tcp://127.0.0.1:2376", got)
	}
	if meta.Endpoints["docker"].SkipTLSVerify {
		t.Error("SkipTLSVerify = true, want false")
	}
}

func TestPKCS12RoundTrip(t *testing.T) {
	f, err := Load(issueClient(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	data, err := PKCS12(f, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	_, cert, chain, err := pkcs12.DecodeChain(data, "changeit")
	if err != nil {
		t.Fatalf("DecodeChain: %v", err)
	}
	if cert.Subject.CommonName != "alice" {
		t.Errorf("certificate CN = %q, want alice", cert.Subject.CommonName)
	}
	if len(chain) != 1 || !chain[0].IsCA {
		t.Errorf("chain = %d certificates, want the CA only", len(chain))
	}
	if _, err := PKCS12(f, ""); err == nil {
		t.Error("PKCS12 with an empty password succeeded")
	}
}

func TestEnv(t *testing.T) {
	got, err := Env("tcp://docker.example.test:2376", "/home/a b/certs")
	if err != nil {
		t.Fatal(err)
	}
	want := "export DOCKER_HOST=tcp://docker.example.test:2376\n" +
		"export DOCKER_TLS_VERIFY=1\n" +
		"export DOCKER_CERT_PATH='/home/a b/certs'\n"
	if got != want {
		t.Errorf("Env =\n%s\nwant\n%s", got, want)
	}
	if _, err := Env("docker.example.test", "/x"); err == nil {
		t.Error("Env accepted a host without tcp://")
	}
}

func TestWriteUsage(t *testing.T) {
	var buf bytes.Buffer
	err := WriteUsage(&buf, Usage{Name: "alice", Host: "tcp://docker.example.test:2376", CertPath: "/certs/alice", Format: FormatContext, File: "alice.dockercontext"})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"docker context import alice alice.dockercontext",
		"docker --tlsverify --tlscacert=/certs/alice/ca.pem --tlscert=/certs/alice/cert.pem --tlskey=/certs/alice/key.pem -H=tcp://docker.example.test:2376 version",
		"docker context create alice --docker 'host=tcp://docker.example.test:2376,ca=/certs/alice/ca.pem,cert=/certs/alice/cert.pem,key=/certs/alice/key.pem'",
		"<dockerHost>https://docker.example.test:2376</dockerHost>",
		"<dockerCertPath>/certs/alice</dockerCertPath>",
		"docker.host=tcp://docker.example.test:2376",
		"docker.tls.verify=1",
		"docker.cert.path=/certs/alice",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q\n%s", want, out)
		}
	}
}

func TestContextName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"alice", "alice"},
		{"ci-runner.build_1", "ci-runner.build_1"},
		{"alice@example.test", "alice_example.test"},
		{"a", "dockmoat-a"},
		{"7", "dockmoat-7"},
	}
	for _, tt := range tests {
		got := ContextName(tt.name)
		if got != tt.want {
			t.Errorf("ContextName(%q) = %q, want %q", tt.name, got, tt.want)
		}
		if !contextNamePattern.MatchString(got) {
			t.Errorf("ContextName(%q) = %q, which docker rejects", tt.name, got)
		}
	}
}
