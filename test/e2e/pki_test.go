package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// pkiDir is a dockmoat state directory used by one test.
type pkiDir struct {
	t   *testing.T
	dir string
}

// newPKIDir returns a state directory in a fresh temporary folder; the CA
// is not created yet.
func newPKIDir(t *testing.T) *pkiDir {
	return &pkiDir{t: t, dir: filepath.Join(t.TempDir(), "state")}
}

// initPKI returns a state directory with a CA made by `pki init args`.
func initPKI(t *testing.T, args ...string) *pkiDir {
	p := newPKIDir(t)
	p.must(append([]string{"pki", "init"}, args...)...)
	return p
}

// run runs dockmoat --dir DIR args.
func (p *pkiDir) run(args ...string) result {
	p.t.Helper()
	return runDockmoat(p.t, "", append([]string{"--dir", p.dir}, args...)...)
}

// must runs dockmoat --dir DIR args and fails the test unless it exits 0.
func (p *pkiDir) must(args ...string) result {
	p.t.Helper()
	return mustDockmoat(p.t, append([]string{"--dir", p.dir}, args...)...)
}

func (p *pkiDir) path(elem ...string) string {
	return filepath.Join(append([]string{p.dir}, elem...)...)
}

// list returns the records `pki list --json` prints.
func (p *pkiDir) list() []pkiListEntry {
	p.t.Helper()
	r := p.must("pki", "list", "--json")
	var entries []pkiListEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		p.t.Fatalf("pki list --json: %v\n%s", err, r.stdout)
	}
	return entries
}

// pkiListEntry is the part of a `pki list --json` entry the tests read.
type pkiListEntry struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Serial      string   `json:"serial"`
	Groups      []string `json:"groups"`
	DNSNames    []string `json:"dnsNames"`
	IPs         []string `json:"ips"`
	Status      string   `json:"status"`
	ExpiresSoon bool     `json:"expiresSoon"`
}

// snapshot returns every file under dir with a hash of its content and its
// mode, so tests can check that a rejected command wrote nothing. The lock
// file is left out: opening it is not a write of state.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() == "index.lock" {
			return nil
		}
		info, _ := d.Info()
		entry := info.Mode().String()
		if !d.IsDir() {
			data, _ := os.ReadFile(path)
			sum := sha256.Sum256(data)
			entry += " " + hex.EncodeToString(sum[:])
		}
		files[path] = entry
		return nil
	})
	return files
}

func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	dockertest.Require(t, "openssl")
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func TestPKIInitAndForce(t *testing.T) {
	p := newPKIDir(t)
	r := p.must("pki", "init")
	if !strings.Contains(r.stdout, "created CA \"dockmoat CA ") || !strings.Contains(r.stdout, p.path("ca.pem")) {
		t.Errorf("init stdout = %q, want the CA name and ca.pem path", r.stdout)
	}
	before := snapshot(t, p.dir)

	r = p.run("pki", "init")
	if r.code != 1 {
		t.Errorf("second init exit code = %d, want 1", r.code)
	}
	if want := "dockmoat: a CA already exists in " + p.dir; !strings.Contains(r.stderr, want) {
		t.Errorf("second init stderr = %q, want %q", r.stderr, want)
	}
	if !strings.Contains(r.stderr, "hint: keep using it, or pass --force") {
		t.Errorf("second init stderr = %q, want the --force hint", r.stderr)
	}
	if after := snapshot(t, p.dir); !maps.Equal(before, after) {
		t.Error("rejected init changed the state directory")
	}

	oldCA := readPEMCert(t, p.path("ca.pem"))
	p.must("pki", "init", "--force", "--key-type", "rsa-3072")
	newCA := readPEMCert(t, p.path("ca.pem"))
	if newCA.Subject.String() == oldCA.Subject.String() {
		t.Errorf("new CA subject %q equals the old one", newCA.Subject)
	}
	// The new key must belong to the new certificate.
	keyPub, err := openssl(t, "pkey", "-in", p.path("ca-key.pem"), "-pubout")
	if err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, keyPub)
	}
	certPub, err := openssl(t, "x509", "-in", p.path("ca.pem"), "-noout", "-pubkey")
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, certPub)
	}
	if keyPub != certPub {
		t.Error("ca-key.pem does not match ca.pem after init --force")
	}
}

func TestPKICAProfileOpenSSL(t *testing.T) {
	p := initPKI(t)
	text, err := openssl(t, "x509", "-in", p.path("ca.pem"), "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, text)
	}
	for _, want := range []string{
		"X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0",
		"X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
		"X509v3 Subject Key Identifier",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("CA certificate text lacks %q\n%s", want, text)
		}
	}
}

func TestPKIBadInputWritesNothing(t *testing.T) {
	passFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("right horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("wrong horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := initPKI(t)
	encrypted := initPKI(t, "--passphrase-file", passFile)
	corrupt := initPKI(t)
	if err := os.WriteFile(corrupt.path("ca.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := newPKIDir(t)

	tests := []struct {
		name       string
		pki        *pkiDir
		args       []string
		wantCode   int
		wantStderr []string
	}{
		{"unknown key type", plain, []string{"pki", "issue", "client", "alice", "--key-type", "ed25519"}, 2,
			[]string{`invalid --key-type: unknown key type "ed25519": use one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096`}},
		{"days zero", plain, []string{"pki", "issue", "client", "alice", "--days", "0"}, 2,
			[]string{"invalid --days 0", "hint: pass --days N with N >= 1"}},
		{"days zero server", plain, []string{"pki", "issue", "server", "--days", "0"}, 2,
			[]string{"invalid --days 0"}},
		{"malformed IP", plain, []string{"pki", "issue", "server", "--ip", "10.0.0.256"}, 2,
			[]string{`invalid --ip: invalid IP address "10.0.0.256"`}},
		{"bad DNS name", plain, []string{"pki", "issue", "server", "--dns", "bad_name.example"}, 2,
			[]string{`invalid DNS name "bad_name.example"`}},
		{"bad client name", plain, []string{"pki", "issue", "client", "../etc"}, 2,
			[]string{`invalid certificate name "../etc"`}},
		{"bad group", plain, []string{"pki", "issue", "client", "alice", "--group", "a b"}, 2,
			[]string{`invalid group "a b"`}},
		{"wrong passphrase", encrypted, []string{"pki", "issue", "client", "alice", "--passphrase-file", wrongFile}, 2,
			[]string{"wrong passphrase for the CA key", "hint: check the file passed to --passphrase-file"}},
		{"missing passphrase", encrypted, []string{"pki", "issue", "client", "alice"}, 2,
			[]string{"the CA key is encrypted and needs a passphrase", "hint: pass --passphrase-file FILE"}},
		{"missing CA", missing, []string{"pki", "issue", "client", "alice"}, 1,
			[]string{"no CA found in " + missing.dir, "hint: create one with 'dockmoat pki init'"}},
		{"corrupt CA", corrupt, []string{"pki", "issue", "client", "alice"}, 1,
			[]string{"invalid CA certificate " + corrupt.path("ca.pem"), "hint: restore the state directory"}},
		{"init unknown key type", missing, []string{"pki", "init", "--key-type", "rsa-1024"}, 2,
			[]string{`unknown key type "rsa-1024"`}},
		{"init days zero", missing, []string{"pki", "init", "--days", "0"}, 2,
			[]string{"invalid --days 0"}},
		{"unknown reason", plain, []string{"pki", "revoke", "alice", "--reason", "bored"}, 2,
			[]string{`unknown revocation reason "bored"`}},
		{"revoke unknown", plain, []string{"pki", "revoke", "nobody"}, 1,
			[]string{`no certificate with name or serial "nobody"`}},
		{"renew unknown", plain, []string{"pki", "renew", "nobody"}, 1,
			[]string{`no certificate named "nobody"`}},
		{"export unknown format", plain, []string{"pki", "export", "alice", "--format", "jks"}, 2,
			[]string{`unknown export format "jks"`}},
		{"export p12 without password", plain, []string{"pki", "export", "alice", "--format", "p12"}, 2,
			[]string{"--format p12 needs --password-file"}},
		{"export bad host", plain, []string{"pki", "export", "alice", "--format", "env", "--host", "https://x:1"}, 2,
			[]string{`invalid Docker host "https://x:1"`}},
		{"client without name", plain, []string{"pki", "issue", "client"}, 2,
			[]string{"takes 1 argument (NAME), got 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, tt.pki.dir)
			r := runDockmoat(t, "", append([]string{"--dir", tt.pki.dir}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr: %s", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
				}
			}
			if after := snapshot(t, tt.pki.dir); !maps.Equal(before, after) {
				t.Errorf("state directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestPKIEncryptedCAKey(t *testing.T) {
	passFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("s3cret phrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := initPKI(t, "--passphrase-file", passFile)
	if got := readPEMBlock(t, p.path("ca-key.pem")).Type; got != "ENCRYPTED PRIVATE KEY" {
		t.Errorf("ca-key.pem PEM type = %q, want ENCRYPTED PRIVATE KEY", got)
	}
	out, err := openssl(t, "pkey", "-in", p.path("ca-key.pem"), "-passin", "file:"+passFile, "-noout")
	if err != nil {
		t.Errorf("openssl pkey with the passphrase: %v\n%s", err, out)
	}
	if out, err := openssl(t, "pkey", "-in", p.path("ca-key.pem"), "-passin", "pass:nope", "-noout"); err == nil {
		t.Errorf("openssl pkey with a wrong passphrase succeeded: %s", out)
	}
	p.must("pki", "issue", "client", "alice", "--passphrase-file", passFile)
	r := runDockmoat(t, "s3cret phrase\n", "--dir", p.dir, "pki", "revoke", "alice", "--passphrase-file", "-")
	if r.code != 0 {
		t.Errorf("revoke with the passphrase on stdin: exit %d, stderr %s", r.code, r.stderr)
	}
	// A06: leaf keys stay unencrypted although the CA key is encrypted.
	block := readPEMBlock(t, p.path("clients", "alice", "key.pem"))
	if block.Type != "RSA PRIVATE KEY" || len(block.Headers) != 0 {
		t.Errorf("client key PEM type %q headers %v, want an unencrypted RSA PRIVATE KEY", block.Type, block.Headers)
	}
}

// A01 and A02: every server certificate carries subjectAltNames, and IP
// addresses are IP SANs, never DNS names.
func TestPKIServerSANs(t *testing.T) {
	p := initPKI(t)
	r := p.must("pki", "issue", "server")
	if !strings.Contains(r.stderr, "no --dns or --ip given, so the certificate names this host: localhost") {
		t.Errorf("stderr = %q, want the default names printed", r.stderr)
	}
	cert := readPEMCert(t, p.path("servers", "server", "server-cert.pem"))
	if !slices.Contains(cert.DNSNames, "localhost") {
		t.Errorf("DNS SANs = %v, want localhost", cert.DNSNames)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	for _, want := range []string{"127.0.0.1", "::1"} {
		if !slices.Contains(ips, want) {
			t.Errorf("IP SANs = %v, want %s", ips, want)
		}
	}

	p.must("pki", "issue", "server", "--name", "docker", "--dns", "docker.example.test", "--dns", "10.0.0.5", "--ip", "10.10.10.20")
	cert = readPEMCert(t, p.path("servers", "docker", "server-cert.pem"))
	if want := []string{"docker.example.test"}; !slices.Equal(cert.DNSNames, want) {
		t.Errorf("DNS SANs = %v, want %v (10.0.0.5 must be an IP SAN)", cert.DNSNames, want)
	}
	ips = nil
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.0.0.5", "10.10.10.20"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs = %v, want %v", ips, want)
	}
	ca := p.path("ca.pem")
	serverCert := p.path("servers", "docker", "server-cert.pem")
	for _, ip := range []string{"10.0.0.5", "10.10.10.20"} {
		if out, err := openssl(t, "verify", "-x509_strict", "-purpose", "sslserver", "-verify_ip", ip, "-CAfile", ca, serverCert); err != nil {
			t.Errorf("openssl verify -verify_ip %s: %v\n%s", ip, err, out)
		}
	}
	out, err := openssl(t, "verify", "-x509_strict", "-purpose", "sslserver", "-verify_ip", "10.0.0.6", "-CAfile", ca, serverCert)
	if err == nil {
		t.Errorf("openssl verify -verify_ip 10.0.0.6 succeeded, want a mismatch: %s", out)
	}
	if list := p.list(); len(list) != 2 || !slices.Equal(list[1].IPs, []string{"10.0.0.5", "10.10.10.20"}) {
		t.Errorf("pki list = %+v, want two servers, the second with IPs 10.0.0.5 and 10.10.10.20", list)
	}
}

// writeExpiredCA writes a CA to dir whose certificate expired yesterday.
func writeExpiredCA(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: "expired test CA"},
		NotBefore:             time.Now().AddDate(-2, 0, 0),
		NotAfter:              time.Now().AddDate(0, 0, -1),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writes := map[string][]byte{
		"ca.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"ca-key.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range writes {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A05: issuance rejects an expired CA, and list flags what expires soon.
func TestPKIExpiry(t *testing.T) {
	expired := newPKIDir(t)
	writeExpiredCA(t, expired.dir)
	before := snapshot(t, expired.dir)
	r := expired.run("pki", "issue", "client", "alice")
	if r.code != 1 {
		t.Errorf("issue with an expired CA: exit code %d, want 1", r.code)
	}
	if want := "the CA certificate has expired on " + time.Now().AddDate(0, 0, -1).UTC().Format(time.DateOnly); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if !strings.Contains(r.stderr, "hint: create a new CA with 'dockmoat pki init --force'") {
		t.Errorf("stderr = %q, want the init --force hint", r.stderr)
	}
	if after := snapshot(t, expired.dir); !maps.Equal(before, after) {
		t.Error("rejected issuance changed the state directory")
	}

	p := initPKI(t, "--days", "60")
	p.must("pki", "issue", "client", "short", "--days", "10", "--key-type", "ecdsa-p256")
	p.must("pki", "issue", "client", "long", "--days", "40", "--key-type", "ecdsa-p256")
	r = p.must("pki", "issue", "client", "capped", "--days", "365", "--key-type", "ecdsa-p256")
	if !strings.Contains(r.stderr, "warning: the validity was cut to the CA's expiry") {
		t.Errorf("stderr = %q, want the cut-validity warning", r.stderr)
	}
	soon := map[string]bool{}
	for _, e := range p.list() {
		soon[e.Name] = e.ExpiresSoon
	}
	if want := map[string]bool{"short": true, "long": false, "capped": false}; !maps.Equal(soon, want) {
		t.Errorf("expiresSoon = %v, want %v", soon, want)
	}
	table := p.must("pki", "list").stdout
	for _, line := range strings.Split(table, "\n") {
		flagged := strings.Contains(line, "expires soon")
		if strings.HasPrefix(line, "short ") != flagged && line != "" && !strings.HasPrefix(line, "NAME") {
			t.Errorf("list line %q: expires-soon mark = %v, want it only on short", line, flagged)
		}
	}
}

// A06 and A08: leaf keys are unencrypted, mode 0600, with PEM labels that
// match their content; client keys default to RSA PKCS#1.
func TestPKILeafKeys(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "server", "--dns", "localhost")
	p.must("pki", "issue", "client", "java")
	p.must("pki", "issue", "client", "go", "--key-type", "ecdsa-p384")
	tests := []struct {
		path    string
		pemType string
		openssl string
	}{
		{p.path("servers", "server", "server-key.pem"), "EC PRIVATE KEY", "EC"},
		{p.path("clients", "java", "key.pem"), "RSA PRIVATE KEY", "RSA"},
		{p.path("clients", "go", "key.pem"), "EC PRIVATE KEY", "EC"},
	}
	for _, tt := range tests {
		block := readPEMBlock(t, tt.path)
		if block.Type != tt.pemType {
			t.Errorf("%s PEM type = %q, want %q", tt.path, block.Type, tt.pemType)
		}
		if len(block.Headers) != 0 {
			t.Errorf("%s has PEM headers %v, want none (unencrypted)", tt.path, block.Headers)
		}
		st, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", tt.path, st.Mode().Perm())
		}
		// -passin with an empty password fails on an encrypted key.
		out, err := openssl(t, "pkey", "-in", tt.path, "-passin", "pass:", "-noout", "-text")
		if err != nil {
			t.Errorf("openssl pkey %s without a passphrase: %v\n%s", tt.path, err, out)
		}
		if !strings.Contains(out, "Private-Key:") {
			t.Errorf("openssl pkey %s printed %q, want a private key", tt.path, out)
		}
	}
	if _, err := x509.ParsePKCS1PrivateKey(readPEMBlock(t, p.path("clients", "java", "key.pem")).Bytes); err != nil {
		t.Errorf("default client key is not PKCS#1: %v", err)
	}
	help := runDockmoat(t, "", "pki", "issue", "client", "--help").stdout
	if !strings.Contains(help, "RSA 2048 in PKCS#1 PEM") || !strings.Contains(help, "ecdsa-p256") {
		t.Errorf("issue client --help does not document key types per client:\n%s", help)
	}
}

func TestPKIRenewAndRevoke(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "client", "alice", "--group", "dev", "--key-type", "ecdsa-p256")
	r := p.run("pki", "issue", "client", "alice")
	if r.code != 1 || !strings.Contains(r.stderr, "a valid certificate with this name exists") || !strings.Contains(r.stderr, "dockmoat pki renew alice") {
		t.Errorf("second issue: exit %d stderr %q, want 1 and the renew hint", r.code, r.stderr)
	}
	first := p.list()[0]
	p.must("pki", "renew", "alice")
	list := p.list()
	if len(list) != 2 || list[0].Status != "superseded" || list[1].Status != "valid" {
		t.Fatalf("after renew: %+v, want superseded then valid", list)
	}
	if !slices.Equal(list[1].Groups, []string{"dev"}) {
		t.Errorf("renewed groups = %v, want [dev]", list[1].Groups)
	}
	renewed := list[1]

	// Revoking the name also revokes the superseded certificate, which
	// Renew left valid.
	r = p.must("pki", "revoke", "alice", "--reason", "keyCompromise")
	for _, serial := range []string{renewed.Serial, first.Serial} {
		if !strings.Contains(r.stdout, "serial "+serial) {
			t.Errorf("revoke stdout = %q, want serial %s", r.stdout, serial)
		}
	}
	r = p.run("pki", "revoke", first.Serial, "--reason", "superseded")
	if r.code != 1 || !strings.Contains(r.stderr, "already revoked") {
		t.Errorf("revoke of the superseded serial: exit %d stderr %q, want 1 and already revoked", r.code, r.stderr)
	}

	crlText, err := openssl(t, "crl", "-in", p.path("crl.pem"), "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, crlText)
	}
	for _, serial := range []string{first.Serial, renewed.Serial} {
		want := strings.ToUpper(serial)
		if len(want)%2 == 1 {
			want = "0" + want
		}
		if !strings.Contains(crlText, "Serial Number: "+want) {
			t.Errorf("openssl crl -text lacks serial %s\n%s", want, crlText)
		}
	}
	if !strings.Contains(crlText, "Key Compromise") {
		t.Errorf("openssl crl -text lacks the reason Key Compromise\n%s", crlText)
	}
	if out, err := openssl(t, "crl", "-in", p.path("crl.pem"), "-CAfile", p.path("ca.pem"), "-noout"); err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -CAfile: %v, %q, want verify OK", err, out)
	}
	revokedCert := p.path("clients", "alice", "cert.pem")
	out, err := openssl(t, "verify", "-x509_strict", "-crl_check", "-CRLfile", p.path("crl.pem"), "-CAfile", p.path("ca.pem"), revokedCert)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -crl_check of the revoked certificate: %v, %q, want certificate revoked", err, out)
	}

	printed := p.must("pki", "crl").stdout
	stored, _ := os.ReadFile(p.path("crl.pem"))
	if printed != string(stored) {
		t.Error("pki crl output differs from crl.pem")
	}
	crlOut := filepath.Join(t.TempDir(), "crl.pem")
	r = p.must("pki", "crl", "--update", "--out", crlOut)
	if !strings.Contains(r.stdout, "with 2 revoked certificates") {
		t.Errorf("crl --update stdout = %q, want 2 revoked certificates", r.stdout)
	}
	// A revoked name may be issued again.
	p.must("pki", "issue", "client", "alice", "--key-type", "ecdsa-p256")
}

// TestPKIConcurrentIssue runs several `pki issue` processes at once. None
// may lose an index entry or reuse a serial. Of the processes that issue the
// same name, exactly one succeeds.
func TestPKIConcurrentIssue(t *testing.T) {
	p := initPKI(t)
	const n = 8
	results := make([]result, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("client%d", i)
			if i >= n {
				name = "same"
			}
			results[i] = runPKIProcess(p.dir, "pki", "issue", "client", name, "--key-type", "ecdsa-p256")
		}()
	}
	wg.Wait()
	sameOK := 0
	for i, r := range results {
		switch {
		case i < n && r.code != 0:
			t.Errorf("issue client%d: exit %d, stderr %s", i, r.code, r.stderr)
		case i >= n && r.code == 0:
			sameOK++
		case i >= n && !strings.Contains(r.stderr, "a valid certificate with this name exists"):
			t.Errorf("issue same: exit %d, stderr %q, want success or already issued", r.code, r.stderr)
		}
	}
	if sameOK != 1 {
		t.Errorf("%d processes issued the name same, want exactly 1", sameOK)
	}
	list := p.list()
	if len(list) != n+1 {
		t.Errorf("index contains %d records, want %d", len(list), n+1)
	}
	serials := map[string]bool{}
	for _, e := range list {
		if serials[e.Serial] {
			t.Errorf("serial %s appears twice", e.Serial)
		}
		serials[e.Serial] = true
	}
}

// runPKIProcess runs dockmoat --dir dir args without a testing.TB, so it is
// safe in goroutines. A process that could not run has exit code -1.
func runPKIProcess(dir string, args ...string) result {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	r, err := execDockmoat(time.Minute, env, "", append([]string{"--dir", dir}, args...)...)
	if err != nil {
		r.code = -1
	}
	return r
}

// TestPKIKilledIssuers kills `pki issue` processes at random points and
// checks that the index stays readable and that every record it lists has
// its certificate on disk.
func TestPKIKilledIssuers(t *testing.T) {
	p := initPKI(t)
	for i := range 30 {
		cmd := exec.Command(dockmoatBin, "--dir", p.dir, "pki", "issue", "client", fmt.Sprintf("k%d", i), "--key-type", "ecdsa-p256")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%15) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	list := p.list()
	for _, e := range list {
		cert := readPEMCert(t, p.path("clients", e.Name, "cert.pem"))
		if got := fmt.Sprintf("%x", cert.SerialNumber); got != e.Serial {
			t.Errorf("%s: cert.pem serial %s, index serial %s", e.Name, got, e.Serial)
		}
	}
	t.Logf("%d of 30 killed issuers completed", len(list))
	p.must("pki", "issue", "client", "after", "--key-type", "ecdsa-p256")
	if got := len(p.list()); got != len(list)+1 {
		t.Errorf("index after one more issue has %d records, want %d", got, len(list)+1)
	}
}
