package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// newCA creates a CA with the default profile in a temporary folder.
func newCA(t *testing.T) (*Authority, string) {
	t.Helper()
	dir := t.TempDir()
	a, err := Init(dir, InitOptions{})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return a, dir
}

// readCert parses the single certificate in path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return cert
}

// pemType returns the type of the first PEM block in path.
func pemType(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	return block.Type
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// listDir returns every path under dir, for checks that nothing was written.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() != lockFile {
			paths = append(paths, path)
		}
		return nil
	})
	return paths
}

func TestInitCAProfile(t *testing.T) {
	a, dir := newCA(t)
	ca := readCert(t, CACertPath(dir))
	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Errorf("IsCA = %v, BasicConstraintsValid = %v, want both true", ca.IsCA, ca.BasicConstraintsValid)
	}
	if ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("MaxPathLen = %d, MaxPathLenZero = %v, want 0 and true", ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; ca.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", ca.KeyUsage, want)
	}
	if len(ca.SubjectKeyId) == 0 {
		t.Error("CA has no subject key identifier")
	}
	if got := keyTypeOf(ca.PublicKey); got != DefaultCAKeyType {
		t.Errorf("CA key type = %q, want %q", got, DefaultCAKeyType)
	}
	if ca.SerialNumber.BitLen() > 128 || ca.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %x has %d bits, want 1 to 128", ca.SerialNumber, ca.SerialNumber.BitLen())
	}
	if d := time.Since(ca.NotBefore); d < 4*time.Minute || d > 6*time.Minute {
		t.Errorf("NotBefore is %v in the past, want about 5 minutes", d)
	}
	if got, want := modeOf(t, CAKeyPath(dir)), os.FileMode(0o600); got != want {
		t.Errorf("ca-key.pem mode = %v, want %v", got, want)
	}
	if got := pemType(t, CAKeyPath(dir)); got != "EC PRIVATE KEY" {
		t.Errorf("ca-key.pem PEM type = %q, want EC PRIVATE KEY", got)
	}
	if got := pemType(t, CRLPath(dir)); got != "X509 CRL" {
		t.Errorf("crl.pem PEM type = %q, want X509 CRL", got)
	}
	if _, _, err := a.CRL(); err != nil {
		t.Errorf("CRL: %v", err)
	}
	for _, leftover := range []string{stagingDir, pendingDir} {
		if _, err := os.Stat(filepath.Join(dir, leftover)); err == nil {
			t.Errorf("%s left behind after Init", leftover)
		}
	}
}

func TestInitSubjectsUnique(t *testing.T) {
	_, dir1 := newCA(t)
	_, dir2 := newCA(t)
	s1 := readCert(t, CACertPath(dir1)).Subject.String()
	s2 := readCert(t, CACertPath(dir2)).Subject.String()
	if s1 == s2 {
		t.Errorf("two CAs share subject %q", s1)
	}
	if !strings.HasPrefix(s1, "CN=dockmoat CA ") {
		t.Errorf("subject = %q, want CN=dockmoat CA and a suffix", s1)
	}
}

func TestInitRejectsExisting(t *testing.T) {
	_, dir := newCA(t)
	before, _ := os.ReadFile(CACertPath(dir))
	_, err := Init(dir, InitOptions{})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init error = %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(CACertPath(dir))
	if !bytes.Equal(before, after) {
		t.Error("rejected Init changed ca.pem")
	}
	if _, err := Init(dir, InitOptions{Force: true}); err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	forced, _ := os.ReadFile(CACertPath(dir))
	if bytes.Equal(before, forced) {
		t.Error("Init with Force kept the old ca.pem")
	}
}

func TestInitBadInputWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		opts InitOptions
		want string
	}{
		{"unknown key type", InitOptions{KeyType: "dsa-1024"}, `unknown key type "dsa-1024"`},
		{"negative days", InitOptions{Days: -1}, "invalid validity of -1 days"},
		{"long name", InitOptions{Name: strings.Repeat("x", 60)}, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			_, err := Init(dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Init error = %v, want it to contain %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state folder exists after a rejected Init (stat error %v)", err)
			}
		})
	}
}

func TestIssueServerProfile(t *testing.T) {
	a, dir := newCA(t)
	rec, err := a.IssueServer(ServerRequest{
		Name:     "server",
		DNSNames: []string{"docker.example.test", "10.0.0.5"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	})
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	paths := BundlePaths(dir, KindServer, "server")
	cert := readCert(t, paths.Cert)
	ca := a.Certificate()

	if got, want := cert.DNSNames, []string{"docker.example.test"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames = %v, want %v", got, want)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.0.0.5", "127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs = %v, want %v", ips, want)
	}
	if !slices.Equal(rec.IPs, ips) {
		t.Errorf("record IPs = %v, want %v", rec.IPs, ips)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}; !slices.Equal(cert.ExtKeyUsage, want) {
		t.Errorf("ExtKeyUsage = %v, want serverAuth only", cert.ExtKeyUsage)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want digitalSignature for an ECDSA key", cert.KeyUsage)
	}
	if !bytes.Equal(cert.AuthorityKeyId, ca.SubjectKeyId) {
		t.Errorf("AuthorityKeyId = %x, want the CA's SKI %x", cert.AuthorityKeyId, ca.SubjectKeyId)
	}
	if cert.IsCA {
		t.Error("server certificate is a CA")
	}
	if got := pemType(t, paths.Key); got != "EC PRIVATE KEY" {
		t.Errorf("server-key.pem PEM type = %q, want EC PRIVATE KEY", got)
	}
	if got := modeOf(t, paths.Key); got != 0o600 {
		t.Errorf("server-key.pem mode = %v, want 0600", got)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, host := range []string{"docker.example.test", "10.0.0.5", "127.0.0.1", "::1"} {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool})
		if err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "10.0.0.6", Roots: pool}); err == nil {
		t.Error("verify for 10.0.0.6 succeeded, want a SAN mismatch")
	}
}

func TestIssueServerDefaultNames(t *testing.T) {
	a, _ := newCA(t)
	rec, err := a.IssueServer(ServerRequest{Name: "server"})
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	if !slices.Contains(rec.DNSNames, "localhost") {
		t.Errorf("DNSNames = %v, want localhost among them", rec.DNSNames)
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if !slices.Contains(rec.IPs, ip) {
			t.Errorf("IPs = %v, want %s among them", rec.IPs, ip)
		}
	}
	for _, name := range rec.DNSNames {
		if net.ParseIP(name) != nil {
			t.Errorf("IP address %q written as a DNS name", name)
		}
	}
}

func TestIssueClientProfile(t *testing.T) {
	a, dir := newCA(t)
	rec, err := a.IssueClient(ClientRequest{Name: "alice", Groups: []string{"dev", "ops", "dev"}})
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	paths := BundlePaths(dir, KindClient, "alice")
	cert := readCert(t, paths.Cert)
	if cert.Subject.CommonName != "alice" {
		t.Errorf("CN = %q, want alice", cert.Subject.CommonName)
	}
	if want := []string{"dev", "ops"}; !slices.Equal(cert.Subject.OrganizationalUnit, want) {
		t.Errorf("OU = %v, want %v", cert.Subject.OrganizationalUnit, want)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}; !slices.Equal(cert.ExtKeyUsage, want) {
		t.Errorf("ExtKeyUsage = %v, want clientAuth only", cert.ExtKeyUsage)
	}
	if rec.KeyType != RSA2048 {
		t.Errorf("record key type = %q, want %q", rec.KeyType, RSA2048)
	}
	if got := pemType(t, paths.Key); got != "RSA PRIVATE KEY" {
		t.Errorf("key.pem PEM type = %q, want RSA PRIVATE KEY (PKCS#1)", got)
	}
	if got := modeOf(t, paths.Key); got != 0o600 {
		t.Errorf("key.pem mode = %v, want 0600", got)
	}
	if got := fmtSerial(cert); got != rec.Serial {
		t.Errorf("record serial = %s, certificate serial %s", rec.Serial, got)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 365*24*time.Hour {
		t.Errorf("validity = %v, want at least 365 days", d)
	}
	ca, _ := os.ReadFile(paths.CA)
	if !bytes.Equal(ca, a.CertificatePEM()) {
		t.Error("bundle ca.pem differs from the CA certificate")
	}
}

func fmtSerial(cert *x509.Certificate) string {
	return strings.ToLower(cert.SerialNumber.Text(16))
}

func TestIssueKeyTypes(t *testing.T) {
	a, dir := newCA(t)
	wantPEM := map[KeyType]string{
		ECDSAP256: "EC PRIVATE KEY",
		ECDSAP384: "EC PRIVATE KEY",
		RSA2048:   "RSA PRIVATE KEY",
		RSA3072:   "RSA PRIVATE KEY",
		RSA4096:   "RSA PRIVATE KEY",
	}
	for _, kt := range KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			name := "client-" + string(kt)
			if _, err := a.IssueClient(ClientRequest{Name: name, KeyType: kt}); err != nil {
				t.Fatalf("IssueClient: %v", err)
			}
			paths := BundlePaths(dir, KindClient, name)
			if got := keyTypeOf(readCert(t, paths.Cert).PublicKey); got != kt {
				t.Errorf("certificate key type = %q, want %q", got, kt)
			}
			if got := pemType(t, paths.Key); got != wantPEM[kt] {
				t.Errorf("key PEM type = %q, want %q", got, wantPEM[kt])
			}
			server := "server-" + string(kt)
			if _, err := a.IssueServer(ServerRequest{Name: server, DNSNames: []string{"localhost"}, KeyType: kt}); err != nil {
				t.Fatalf("IssueServer: %v", err)
			}
			cert := readCert(t, BundlePaths(dir, KindServer, server).Cert)
			want := x509.KeyUsageDigitalSignature
			if kt.isRSA() {
				want |= x509.KeyUsageKeyEncipherment
			}
			if cert.KeyUsage != want {
				t.Errorf("server KeyUsage = %v, want %v", cert.KeyUsage, want)
			}
		})
	}
}

func TestParseKeyType(t *testing.T) {
	for _, kt := range KeyTypes {
		got, err := ParseKeyType(string(kt))
		if err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %q, %v, want %q", kt, got, err, kt)
		}
	}
	_, err := ParseKeyType("ed25519")
	if err == nil || !strings.Contains(err.Error(), "ecdsa-p256, ecdsa-p384, rsa-2048") {
		t.Errorf("ParseKeyType(ed25519) error = %v, want the list of types", err)
	}
}

func TestIssueBadInputWritesNothing(t *testing.T) {
	a, dir := newCA(t)
	before := listDir(t, dir)
	tests := []struct {
		name  string
		issue func() error
		want  string
	}{
		{"client key type", func() error {
			_, err := a.IssueClient(ClientRequest{Name: "bob", KeyType: "rsa-1024"})
			return err
		}, `unknown key type "rsa-1024"`},
		{"client days", func() error {
			_, err := a.IssueClient(ClientRequest{Name: "bob", Days: -5})
			return err
		}, "invalid validity of -5 days"},
		{"client name with slash", func() error {
			_, err := a.IssueClient(ClientRequest{Name: "../bob"})
			return err
		}, `invalid certificate name "../bob"`},
		{"client name with space", func() error {
			_, err := a.IssueClient(ClientRequest{Name: "bob smith"})
			return err
		}, `invalid certificate name "bob smith"`},
		{"group with comma", func() error {
			_, err := a.IssueClient(ClientRequest{Name: "bob", Groups: []string{"a,b"}})
			return err
		}, `invalid group "a,b"`},
		{"server DNS name", func() error {
			_, err := a.IssueServer(ServerRequest{Name: "server", DNSNames: []string{"bad_host"}})
			return err
		}, `invalid DNS name "bad_host"`},
		{"server IP", func() error {
			_, err := a.IssueServer(ServerRequest{Name: "server", IPs: []net.IP{{1, 2, 3}}})
			return err
		}, "invalid IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.issue()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if after := listDir(t, dir); !slices.Equal(before, after) {
				t.Errorf("files after rejected request = %v, want %v", after, before)
			}
		})
	}
}

func TestIssueDuplicateName(t *testing.T) {
	a, _ := newCA(t)
	if _, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	_, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256})
	if !errors.Is(err, ErrAlreadyIssued) {
		t.Fatalf("second IssueClient error = %v, want ErrAlreadyIssued", err)
	}
	if _, err := a.Revoke("alice", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256}); err != nil {
		t.Errorf("IssueClient after revocation: %v", err)
	}
	if _, err := a.IssueServer(ServerRequest{Name: "alice", DNSNames: []string{"localhost"}}); !errors.Is(err, ErrAlreadyIssued) {
		t.Errorf("IssueServer with a client's name: error = %v, want ErrAlreadyIssued", err)
	}
}

func TestRenewSupersedes(t *testing.T) {
	a, dir := newCA(t)
	old, err := a.IssueClient(ClientRequest{Name: "ci", Groups: []string{"build"}, Days: 30, KeyType: ECDSAP384})
	if err != nil {
		t.Fatal(err)
	}
	oldKey, _ := os.ReadFile(BundlePaths(dir, KindClient, "ci").Key)
	renewed, err := a.Renew("ci")
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if renewed.Serial == old.Serial {
		t.Error("renewal kept the serial")
	}
	if renewed.KeyType != ECDSAP384 || !slices.Equal(renewed.Groups, []string{"build"}) {
		t.Errorf("renewed key type %q groups %v, want %q and [build]", renewed.KeyType, renewed.Groups, ECDSAP384)
	}
	if d := renewed.NotAfter.Sub(renewed.NotBefore) - clockSkew; d != 30*24*time.Hour {
		t.Errorf("renewed validity = %v, want 30 days", d)
	}
	newKey, _ := os.ReadFile(BundlePaths(dir, KindClient, "ci").Key)
	if bytes.Equal(oldKey, newKey) {
		t.Error("renewal kept the key")
	}
	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, r := range list {
		statuses = append(statuses, r.Status)
	}
	if want := []string{StatusSuperseded, StatusValid}; !slices.Equal(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	found, ok, err := a.Find("ci")
	if err != nil || !ok || found.Serial != renewed.Serial {
		t.Errorf("Find = %s, %v, %v, want serial %s", found.Serial, ok, err, renewed.Serial)
	}
	if _, err := a.Renew("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Renew(nobody) error = %v, want ErrNotFound", err)
	}
}

func TestRevokeWritesCRL(t *testing.T) {
	a, _ := newCA(t)
	first, err := a.IssueClient(ClientRequest{Name: "mallory", KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := a.Renew("mallory")
	if err != nil {
		t.Fatal(err)
	}
	_, before, _ := a.CRL()
	_, err = a.Revoke("MALLORY-not-a-serial", "")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke of an unknown name: error = %v, want ErrNotFound", err)
	}
	revoked, err := a.Revoke(strings.ToUpper(first.Serial), "superseded")
	if err != nil {
		t.Fatalf("Revoke by serial of the superseded certificate: %v", err)
	}
	if len(revoked) != 1 || revoked[0].Serial != first.Serial {
		t.Errorf("Revoke by serial revoked %+v, want only serial %s", revoked, first.Serial)
	}
	revoked, err = a.Revoke("mallory", "keycompromise")
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if len(revoked) != 1 || revoked[0].Serial != renewed.Serial || revoked[0].Reason != "keyCompromise" {
		t.Errorf("Revoke by name revoked %+v, want only serial %s with reason keyCompromise", revoked, renewed.Serial)
	}
	crl, after, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) {
		t.Error("CRL unchanged by Revoke")
	}
	var serials []string
	for _, e := range crl.RevokedCertificateEntries {
		serials = append(serials, e.SerialNumber.Text(16))
	}
	sort.Strings(serials)
	want := []string{first.Serial, renewed.Serial}
	sort.Strings(want)
	if !slices.Equal(serials, want) {
		t.Errorf("CRL serials = %v, want %v", serials, want)
	}
	if crl.Number.Int64() != 3 {
		t.Errorf("CRL number = %v, want 3 after Init and two revocations", crl.Number)
	}
	if _, err := a.Revoke("mallory", ""); err == nil {
		t.Error("second Revoke of the same certificate succeeded")
	}
	if _, err := a.Revoke("mallory", "bored"); err == nil || !strings.Contains(err.Error(), `unknown revocation reason "bored"`) {
		t.Errorf("Revoke with reason bored: error = %v", err)
	}
}

func TestExpiredCARejected(t *testing.T) {
	a, dir := newCA(t)
	a.now = func() time.Time { return time.Now().AddDate(11, 0, 0) }
	before := listDir(t, dir)
	_, err := a.IssueClient(ClientRequest{Name: "late"})
	if !errors.Is(err, ErrCAExpired) {
		t.Fatalf("IssueClient with an expired CA: error = %v, want ErrCAExpired", err)
	}
	if after := listDir(t, dir); !slices.Equal(before, after) {
		t.Errorf("files after rejected issuance = %v, want %v", after, before)
	}
}

func TestNotAfterCappedAtCA(t *testing.T) {
	dir := t.TempDir()
	a, err := Init(dir, InitOptions{Days: 10})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := a.IssueClient(ClientRequest{Name: "alice", Days: 365, KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.NotAfter.Equal(a.Certificate().NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", rec.NotAfter, a.Certificate().NotAfter)
	}
}

func TestListExpiresSoon(t *testing.T) {
	a, _ := newCA(t)
	if _, err := a.IssueClient(ClientRequest{Name: "short", Days: 10, KeyType: ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClient(ClientRequest{Name: "long", Days: 100, KeyType: ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, r := range list {
		want := r.Name == "short"
		if got := r.ExpiresWithin(ExpiryWarning, now); got != want {
			t.Errorf("%s ExpiresWithin = %v, want %v", r.Name, got, want)
		}
	}
	a.now = func() time.Time { return now.AddDate(0, 0, 20) }
	short, _, _ := a.Find("short")
	if short.Status != StatusExpired {
		t.Errorf("status after expiry = %q, want %q", short.Status, StatusExpired)
	}
}

func TestEncryptedCAKey(t *testing.T) {
	dir := t.TempDir()
	pass := []byte("correct horse battery staple")
	if _, err := Init(dir, InitOptions{Passphrase: pass}); err != nil {
		t.Fatal(err)
	}
	if got := pemType(t, CAKeyPath(dir)); got != "ENCRYPTED PRIVATE KEY" {
		t.Errorf("ca-key.pem PEM type = %q, want ENCRYPTED PRIVATE KEY", got)
	}
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a.KeyEncrypted() {
		t.Error("KeyEncrypted = false, want true")
	}
	if _, err := a.IssueClient(ClientRequest{Name: "alice"}); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("IssueClient while locked: error = %v, want ErrPassphraseRequired", err)
	}
	if err := a.Unlock([]byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Unlock with a wrong passphrase: error = %v, want ErrWrongPassphrase", err)
	}
	if err := a.Unlock(pass); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if _, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256}); err != nil {
		t.Errorf("IssueClient after Unlock: %v", err)
	}
}

func TestEncryptedCAKeyOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	if _, err := Init(dir, InitOptions{KeyType: RSA2048, Passphrase: []byte("s3cret")}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkey", "-in", CAKeyPath(dir), "-passin", "pass:s3cret", "-pubout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "BEGIN PUBLIC KEY") {
		t.Errorf("openssl pkey output = %q, want a public key", out)
	}
	out, err = exec.Command("openssl", "pkey", "-in", CAKeyPath(dir), "-passin", "pass:wrong", "-noout").CombinedOutput()
	if err == nil {
		t.Errorf("openssl pkey with a wrong passphrase succeeded: %s", out)
	}
}

func TestDecryptOpenSSLKey(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	out, err := exec.Command("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-aes-128-cbc", "-pass", "pass:abc", "-out", path).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(path)
	key, err := parseKeyPEM(data, []byte("abc"))
	if err != nil {
		t.Fatalf("parseKeyPEM of an OpenSSL key: %v", err)
	}
	if _, ok := key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("key type %T, want *ecdsa.PrivateKey", key)
	}
	if _, err := parseKeyPEM(data, []byte("abd")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: error = %v, want ErrWrongPassphrase", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, ErrNoCA) {
		t.Errorf("Open of an empty folder: error = %v, want ErrNoCA", err)
	}
	if err := os.WriteFile(CACertPath(dir), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "invalid CA certificate") {
		t.Errorf("Open with a corrupt ca.pem: error = %v, want invalid CA certificate", err)
	}
}

func TestOpenFinishesPendingInit(t *testing.T) {
	_, dir := newCA(t)
	old, _ := os.ReadFile(CACertPath(dir))
	// Simulate a crash right after the new CA was committed: the new files
	// are complete in the pending folder and none has been moved yet.
	other := t.TempDir()
	if _, err := Init(other, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(dir, pendingDir)
	if err := os.Mkdir(pending, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{caCertFile, caKeyFile, crlFile, indexFile} {
		data, _ := os.ReadFile(filepath.Join(other, name))
		if err := os.WriteFile(filepath.Join(pending, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if bytes.Equal(old, a.CertificatePEM()) {
		t.Error("Open kept the old CA, want the committed new one")
	}
	if err := a.Unlock(nil); err != nil {
		t.Errorf("Unlock after recovery: %v", err)
	}
	if _, err := os.Stat(pending); err == nil {
		t.Error("pending folder left behind")
	}
}

func TestConcurrentIssue(t *testing.T) {
	_, dir := newCA(t)
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := Open(dir)
			if err != nil {
				errs <- err
				return
			}
			_, err = a.IssueClient(ClientRequest{Name: "c" + string(rune('a'+i)), KeyType: ECDSAP256})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != workers {
		t.Fatalf("index contains %d records, want %d", len(list), workers)
	}
	serials := map[string]bool{}
	for _, r := range list {
		if serials[r.Serial] {
			t.Errorf("serial %s issued twice", r.Serial)
		}
		serials[r.Serial] = true
	}
}

func TestNormalizeSerial(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"0A:1B:ff", "a1bff", true},
		{"0xdeadbeef", "deadbeef", true},
		{"00ff", "ff", true},
		{"alice", "", false},
		{"0", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeSerial(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeSerial(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"alice", "ci-runner.01", "bob@example.test", "A_b"}
	bad := []string{"", ".hidden", "-x", "a/b", "..", "a b", "ä", strings.Repeat("a", 65)}
	for _, name := range good {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range bad {
		if err := ValidateName(name); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", name)
		}
	}
}

func TestLeafKeyMatchesCertificate(t *testing.T) {
	a, dir := newCA(t)
	if _, err := a.IssueClient(ClientRequest{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	paths := BundlePaths(dir, KindClient, "alice")
	data, _ := os.ReadFile(paths.Key)
	key, err := parseKeyPEM(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		t.Fatalf("key type %T, want *rsa.PrivateKey", key)
	}
	if !publicKeysEqual(key.Public(), readCert(t, paths.Cert).PublicKey) {
		t.Error("key.pem does not match cert.pem")
	}
}

func TestInvalidInputMarked(t *testing.T) {
	a, _ := newCA(t)
	_, err := a.IssueClient(ClientRequest{Name: "bad name"})
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad name: error = %v, want ErrInvalidInput", err)
	}
	_, err = a.IssueServer(ServerRequest{Name: "server", DNSNames: []string{"-x"}})
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad DNS name: error = %v, want ErrInvalidInput", err)
	}
	if _, err := ParseKeyType("x"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad key type: error = %v, want ErrInvalidInput", err)
	}
	if _, err := a.IssueClient(ClientRequest{Name: "ok", KeyType: ECDSAP256}); errors.Is(err, ErrInvalidInput) {
		t.Errorf("valid request: error = %v matches ErrInvalidInput", err)
	}
}

func TestRecordTimesMatchCertificate(t *testing.T) {
	a, dir := newCA(t)
	rec, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	cert := readCert(t, BundlePaths(dir, KindClient, "alice").Cert)
	if !rec.NotBefore.Equal(cert.NotBefore) {
		t.Errorf("record NotBefore = %v, certificate %v", rec.NotBefore, cert.NotBefore)
	}
	if !rec.NotAfter.Equal(cert.NotAfter) {
		t.Errorf("record NotAfter = %v, certificate %v", rec.NotAfter, cert.NotAfter)
	}
}

// A CA key that other users can read lets them sign client certificates,
// so signing rejects it until its mode is 0600 again.
func TestCAKeyModeChecked(t *testing.T) {
	_, dir := newCA(t)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(CAKeyPath(dir), mode); err != nil {
			t.Fatal(err)
		}
		a, err := Open(dir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		_, err = a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256})
		if err == nil {
			t.Fatalf("IssueClient with CA key mode %v succeeded, want an error", mode)
		}
		if want := "chmod 600 " + CAKeyPath(dir); !strings.Contains(err.Error(), want) {
			t.Errorf("IssueClient with CA key mode %v: error = %q, want it to contain %q", mode, err, want)
		}
		if _, err := os.Stat(ClientDir(dir, "alice")); err == nil {
			t.Errorf("IssueClient with CA key mode %v wrote %s", mode, ClientDir(dir, "alice"))
		}
	}

	if err := os.Chmod(CAKeyPath(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256}); err != nil {
		t.Errorf("IssueClient with CA key mode 0600: %v", err)
	}
}

// Renew keeps the old certificate valid for the switch-over, so revoking
// the name must also revoke the superseded certificates that have not
// expired: otherwise a client whose old key leaked still authenticates
// after 'pki revoke NAME'.
func TestRevokeNameRevokesSuperseded(t *testing.T) {
	a, _ := newCA(t)
	first, err := a.IssueClient(ClientRequest{Name: "mallory", KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.Renew("mallory")
	if err != nil {
		t.Fatal(err)
	}
	current, err := a.Renew("mallory")
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.IssueClient(ClientRequest{Name: "trent", KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}

	revoked, err := a.Revoke("mallory", "keyCompromise")
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	var serials []string
	for _, r := range revoked {
		serials = append(serials, r.Serial)
	}
	if want := []string{current.Serial, first.Serial, second.Serial}; !slices.Equal(serials, want) {
		t.Errorf("revoked serials = %v, want the current one, then the superseded ones: %v", serials, want)
	}

	crl, _, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	onCRL := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		onCRL[e.SerialNumber.Text(16)] = e.ReasonCode
	}
	for _, rec := range []Record{first, second, current} {
		if code, ok := onCRL[rec.Serial]; !ok {
			t.Errorf("serial %s of mallory is not on the CRL", rec.Serial)
		} else if code != 1 {
			t.Errorf("serial %s reason code = %d, want 1 (keyCompromise)", rec.Serial, code)
		}
	}
	if _, ok := onCRL[other.Serial]; ok {
		t.Errorf("serial %s of trent is on the CRL", other.Serial)
	}
	if _, err := a.Revoke("mallory", ""); err == nil {
		t.Error("second Revoke of mallory succeeded, want an already revoked error")
	}
}

// signWithoutIndex writes a new bundle for the client name and leaves the
// index as it was, which is the state a process killed between the bundle
// and the index write leaves behind.
func signWithoutIndex(t *testing.T, a *Authority, name string, groups ...string) Record {
	t.Helper()
	spec, err := clientSpec(ClientRequest{Name: name, Groups: groups, KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.signer(); err != nil {
		t.Fatal(err)
	}
	idx, err := a.loadIndex()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := a.sign(spec, idx)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A certificate whose bundle reached the disk before a crash must not
// escape revocation by name, because clients may read it from the state
// directory.
func TestRevokeAdoptsInterruptedRenewal(t *testing.T) {
	a, dir := newCA(t)
	old, err := a.IssueClient(ClientRequest{Name: "mallory", KeyType: ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	orphan := signWithoutIndex(t, a, "mallory")
	if got := fmtSerial(readCert(t, BundlePaths(dir, KindClient, "mallory").Cert)); got != orphan.Serial {
		t.Fatalf("cert.pem serial = %s, want the unlisted serial %s", got, orphan.Serial)
	}

	revoked, err := a.Revoke("mallory", "keyCompromise")
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	var serials []string
	for _, r := range revoked {
		serials = append(serials, r.Serial)
	}
	if want := []string{orphan.Serial, old.Serial}; !slices.Equal(serials, want) {
		t.Errorf("revoked serials = %v, want %v", serials, want)
	}
	crl, _, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	onCRL := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		onCRL[e.SerialNumber.Text(16)] = true
	}
	for _, serial := range []string{orphan.Serial, old.Serial} {
		if !onCRL[serial] {
			t.Errorf("serial %s is not on the CRL", serial)
		}
	}
	records, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("List has %d records, want 2", len(records))
	}
	if got := records[1]; got.Serial != orphan.Serial || got.KeyType != ECDSAP256 || !got.NotAfter.Equal(orphan.NotAfter) {
		t.Errorf("adopted record = %+v, want serial %s, key type %s, NotAfter %v", got, orphan.Serial, ECDSAP256, orphan.NotAfter)
	}
}

// Renewing after an interrupted renewal supersedes the certificate that
// reached the disk, so it is listed and can be revoked by serial.
func TestRenewAdoptsInterruptedRenewal(t *testing.T) {
	a, _ := newCA(t)
	if _, err := a.IssueClient(ClientRequest{Name: "alice", Groups: []string{"dev"}, KeyType: ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	orphan := signWithoutIndex(t, a, "alice", "dev")
	renewed, err := a.Renew("alice")
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	records, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range records {
		got = append(got, r.Status)
	}
	if want := []string{StatusSuperseded, StatusSuperseded, StatusValid}; !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	if records[1].Serial != orphan.Serial || !slices.Equal(records[1].Groups, []string{"dev"}) {
		t.Errorf("adopted record = %+v, want serial %s with group dev", records[1], orphan.Serial)
	}
	if records[2].Serial != renewed.Serial {
		t.Errorf("current serial = %s, want %s", records[2].Serial, renewed.Serial)
	}
}

// Errors for names that are almost valid say what to change: a zone
// cannot be part of an IP SAN, and a DNS SAN holds the ASCII (xn--) form
// of an internationalized name.
func TestSANErrorsNameTheFix(t *testing.T) {
	tests := []struct {
		name string
		dns  string
		want string
	}{
		{"IPv6 with zone", "fe80::1%eth0", `remove the zone "%eth0"`},
		{"IPv4 with zone", "192.0.2.1%1", `remove the zone "%1"`},
		{"unicode name", "bücher.example", "xn--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := normalizeSANs([]string{tt.dns}, nil)
			if err == nil {
				t.Fatalf("normalizeSANs(%q) succeeded, want an error", tt.dns)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("normalizeSANs(%q) error = %q, want it to contain %q", tt.dns, err, tt.want)
			}
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("normalizeSANs(%q) error is not ErrInvalidInput", tt.dns)
			}
		})
	}
}

// Errors from the os package already name the path, so the store's
// wrappers must not repeat it.
func TestStoreErrorsNamePathOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := mkdirPrivate(file)
	if err == nil {
		t.Fatal("mkdirPrivate of a file succeeded")
	}
	if got := strings.Count(err.Error(), file); got != 1 {
		t.Errorf("mkdirPrivate error = %q names %s %d times, want once", err, file, got)
	}
}

// An Authority opened before `pki init --force` replaced the CA must not
// sign with the old key into the new CA's index, where the record would
// list a certificate that the new CA's CRL cannot revoke.
func TestSignAfterCAReplaced(t *testing.T) {
	a, dir := newCA(t)
	if _, err := Init(dir, InitOptions{Force: true}); err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	before := listDir(t, dir)
	_, err := a.IssueClient(ClientRequest{Name: "alice", KeyType: ECDSAP256})
	if err == nil {
		t.Fatal("IssueClient with the replaced CA succeeded")
	}
	if !strings.Contains(err.Error(), "was replaced") {
		t.Errorf("IssueClient error = %q, want it to say the CA was replaced", err)
	}
	if after := listDir(t, dir); !slices.Equal(before, after) {
		t.Errorf("files after rejected issue = %v, want %v", after, before)
	}
}
