package e2e

import (
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/dockmoat/dockmoat/internal/pki"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata with the current output")

// compareGolden compares got with testdata/NAME, or rewrites the file
// when the test runs with -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended\ngot:\n%s\nwant:\n%s",
			path, got, want)
	}
}

// initTestCA creates a CA in a new state directory and returns the directory.
func initTestCA(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{Name: "dockmoat test CA"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// issueDockerdCert issues the server certificate "dockerd" for dnsName and
// 127.0.0.1 from the CA in stateDir and returns the paths of its bundle.
func issueDockerdCert(t testing.TB, stateDir, dnsName string) pki.Bundle {
	t.Helper()
	a, err := pki.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueServer(pki.ServerRequest{
		Name: "dockerd", DNSNames: []string{dnsName}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
	}); err != nil {
		t.Fatal(err)
	}
	return pki.BundlePaths(stateDir, pki.KindServer, "dockerd")
}

var (
	serialPattern = regexp.MustCompile(`serial [0-9a-f]+`)
	datePattern   = regexp.MustCompile(`valid until \d{4}-\d{2}-\d{2}`)
)

// normalizeOutput replaces temporary paths and per-run values in out with
// placeholders, so golden files stay stable.
func normalizeOutput(out string, paths map[string]string) string {
	for path, placeholder := range paths {
		out = strings.ReplaceAll(out, path, placeholder)
	}
	out = serialPattern.ReplaceAllString(out, "serial SERIAL")
	return datePattern.ReplaceAllString(out, "valid until DATE")
}

func daemonConfigFixture(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "daemonconfig", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDaemonConfigPrintsMergeAndClash(t *testing.T) {
	dir := initTestCA(t)
	tlsDir := t.TempDir()
	r := runDockmoat(t, "", "daemon-config", "--dir", dir,
		"--listen", "tcp://0.0.0.0:2376", "--san", "docker.example.test", "--san", "10.0.0.5",
		"--tls-dir", tlsDir,
		"--daemon-json", daemonConfigFixture(t, "existing-daemon.json"),
		"--unit", daemonConfigFixture(t, "docker.service"),
		"--socket-unit", daemonConfigFixture(t, "docker.socket"))
	if r.code != 0 {
		t.Fatalf("exit code = %d, want 0\nstderr: %s", r.code, r.stderr)
	}
	paths := map[string]string{tlsDir: "$TLS_DIR", daemonConfigFixture(t, ""): "$TESTDATA"}
	compareGolden(t, "daemonconfig/print.stdout", normalizeOutput(r.stdout, paths))
	compareGolden(t, "daemonconfig/print.stderr", normalizeOutput(r.stderr, paths))

	for _, name := range []string{"ca.pem", "server-cert.pem", "server-key.pem"} {
		if _, err := os.Stat(filepath.Join(tlsDir, name)); err != nil {
			t.Errorf("%s not written to --tls-dir: %v", name, err)
		}
	}
	info, err := os.Stat(filepath.Join(tlsDir, "server-key.pem"))
	if err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("server-key.pem mode = %04o, want 0600", info.Mode().Perm())
	}
}

func TestDaemonConfigWritesFiles(t *testing.T) {
	dir := initTestCA(t)
	tlsDir := t.TempDir()
	out := t.TempDir()
	r := runDockmoat(t, "", "daemon-config", "--dir", dir,
		"--listen", "tcp://10.0.0.5:2376", "--tls-dir", tlsDir, "--out", out,
		"--daemon-json", daemonConfigFixture(t, "existing-daemon.json"),
		"--unit", daemonConfigFixture(t, "docker.service"),
		"--socket-unit", daemonConfigFixture(t, "docker.socket"))
	if r.code != 0 {
		t.Fatalf("exit code = %d, want 0\nstderr: %s", r.code, r.stderr)
	}
	paths := map[string]string{tlsDir: "$TLS_DIR", out: "$OUT", daemonConfigFixture(t, ""): "$TESTDATA"}
	compareGolden(t, "daemonconfig/out.stdout", normalizeOutput(r.stdout, paths))
	for _, name := range []string{"daemon.json", "docker.service.d/dockmoat-tls.conf", "docker.socket.d/dockmoat-tls.conf"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		compareGolden(t, "daemonconfig/out/"+name, normalizeOutput(string(data), paths))
	}
	rec := findIssued(t, dir, "dockerd")
	if len(rec.IPs) != 1 || rec.IPs[0] != "10.0.0.5" {
		t.Errorf("dockerd certificate IPs = %v, want [10.0.0.5] from the listener", rec.IPs)
	}
}

func TestDaemonConfigReusesCertificate(t *testing.T) {
	dir := initTestCA(t)
	args := []string{"daemon-config", "--dir", dir, "--listen", "tcp://127.0.0.1:2376",
		"--tls-dir", t.TempDir(), "--daemon-json", filepath.Join(t.TempDir(), "missing.json"),
		"--unit", daemonConfigFixture(t, "plain.service"), "--socket-unit", daemonConfigFixture(t, "plain.service")}
	first := mustDockmoat(t, args...)
	second := mustDockmoat(t, args...)
	if !strings.Contains(first.stderr, "issued server certificate") {
		t.Errorf("first run stderr = %q, want it to issue the certificate", first.stderr)
	}
	if !strings.Contains(second.stderr, "reusing server certificate") {
		t.Errorf("second run stderr = %q, want it to reuse the certificate", second.stderr)
	}

	// A new name needs --reissue, because clients of the old certificate
	// would otherwise break without notice.
	widened := append(append([]string{}, args...), "--san", "docker.example.test")
	r := runDockmoat(t, "", widened...)
	if r.code != 1 {
		t.Errorf("exit code without --reissue = %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "DNS:docker.example.test") {
		t.Errorf("stderr = %q, want it to name the missing DNS:docker.example.test", r.stderr)
	}
	mustDockmoat(t, append(widened, "--reissue")...)
	rec := findIssued(t, dir, "dockerd")
	if len(rec.DNSNames) != 1 || rec.DNSNames[0] != "docker.example.test" {
		t.Errorf("reissued DNS names = %v, want [docker.example.test]", rec.DNSNames)
	}
}

func TestDaemonConfigRejectsInput(t *testing.T) {
	dir := initTestCA(t)
	bad := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(bad, []byte(`["not", "an", "object"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"listener without port", []string{"--listen", "tcp://0.0.0.0"}, "explicit port"},
		{"unix listener", []string{"--listen", "unix:///run/x.sock"}, "want tcp://HOST:PORT"},
		{"daemon.json not an object", []string{"--daemon-json", bad}, "not a JSON object"},
		{"relative socket", []string{"--socket", "unix://docker.sock"}, "want unix:///ABSOLUTE/PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"daemon-config", "--dir", dir, "--tls-dir", t.TempDir(),
				"--unit", daemonConfigFixture(t, "plain.service"), "--socket-unit", daemonConfigFixture(t, "plain.service")}, tt.args...)
			r := runDockmoat(t, "", args...)
			if r.code != 2 {
				t.Errorf("exit code = %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.want)
			}
		})
	}
	r := runDockmoat(t, "", "daemon-config", "--dir", t.TempDir(), "--tls-dir", t.TempDir())
	if r.code == 0 || !strings.Contains(r.stderr, "dockmoat pki init") {
		t.Errorf("without a CA: exit %d, stderr %q; want a failure that names 'dockmoat pki init'", r.code, r.stderr)
	}
}

func findIssued(t testing.TB, dir, name string) pki.Record {
	t.Helper()
	a, err := pki.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok, err := a.Find(name)
	if err != nil || !ok {
		t.Fatalf("find %s: found %v, %v", name, ok, err)
	}
	return rec
}

// TestDaemonConfigServesMutualTLS starts a real dockerd with nothing but
// the generated daemon.json, and connects with the docker CLI.
func TestDaemonConfigServesMutualTLS(t *testing.T) {
	dockertest.Require(t, "dockerd", "docker")
	dir := initTestCA(t)
	addr := freeLoopbackPort(t)
	host, _, _ := net.SplitHostPort(addr)
	// The socket lives directly under the temp dir because unix socket
	// paths are limited to 108 bytes.
	sockDir, err := os.MkdirTemp("", "dm-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "docker.sock")
	existing := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(existing, []byte(`{"hosts": ["fd://"], "tlsverify": false, "debug": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	mustDockmoat(t, "daemon-config", "--dir", dir,
		"--listen", "tcp://"+addr, "--socket", "unix://"+sock,
		"--tls-dir", t.TempDir(), "--daemon-json", existing, "--out", out,
		"--unit", daemonConfigFixture(t, "docker.service"), "--socket-unit", daemonConfigFixture(t, "docker.socket"))

	config := filepath.Join(out, "daemon.json")
	var doc map[string]any
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("generated daemon.json: %v\n%s", err, data)
	}
	if doc["tlsverify"] != true {
		t.Errorf("tlsverify = %v, want true", doc["tlsverify"])
	}
	if doc["debug"] != true {
		t.Errorf("debug = %v, want the existing true kept", doc["debug"])
	}

	d := dockertest.Start(t, dockertest.Options{ConfigFile: config, NoHostFlags: true, Socket: sock})
	bundle := issueClient(t, dir, "ci")
	cli := dockertest.NewCLI(t, "tcp://"+addr, bundle)
	if got := cli.Must(t, "version", "--format", "{{.Server.Os}}"); got != "linux" {
		t.Errorf("server OS through the TLS listener = %q, want %q", got, "linux")
	}
	if got := d.CLI(t).Must(t, "info", "--format", "{{.Debug}}"); got != "true" {
		t.Errorf("debug on the unix socket = %q, want the merged true", got)
	}

	// A client without a certificate must be rejected.
	caOnly := t.TempDir()
	copyFile(t, filepath.Join(bundle, "ca.pem"), filepath.Join(caOnly, "ca.pem"))
	res := dockertest.NewCLI(t, "tcp://"+addr, caOnly).Run(nil, "version")
	if res.Err == nil {
		t.Errorf("docker version without a client certificate succeeded, want it rejected\n%s", res.Stdout)
	}
	r := runDockmoat(t, "", "check", addr)
	if r.code != 0 || !strings.Contains(r.stdout, "mutual TLS required") {
		t.Errorf("check %s: exit %d, stdout %q; want 0 and mutual TLS required", addr, r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "IP:"+host) {
		t.Errorf("check stdout = %q, want the certificate's IP:%s", r.stdout, host)
	}
}
