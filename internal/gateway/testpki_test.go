package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority minted in memory for tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

var testSerial atomic.Int64

func init() { testSerial.Store(time.Now().UnixNano()) }

func newKey(tb testing.TB) crypto.Signer {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func newTestCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(testSerial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// leafOptions describes a certificate for testCA.issue.
type leafOptions struct {
	name     string
	groups   []string
	server   bool
	notAfter time.Time
	// usage overrides the extended key usage.
	usage []x509.ExtKeyUsage
}

// issued is a leaf certificate with its key, as PEM and as a tls.Certificate.
type issued struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
	pair    tls.Certificate
}

func (ca *testCA) issue(tb testing.TB, opts leafOptions) *issued {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(testSerial.Add(1)),
		Subject:      pkix.Name{CommonName: opts.name, OrganizationalUnit: opts.groups},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     opts.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  opts.usage,
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(12 * time.Hour)
	}
	if opts.server {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
	} else if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	out := &issued{certPEM: pemBlock("CERTIFICATE", der), keyPEM: pemBlock("PRIVATE KEY", keyDER)}
	out.cert, _ = x509.ParseCertificate(der)
	out.pair, err = tls.X509KeyPair(out.certPEM, out.keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// crlPEM returns a CRL signed by ca that revokes certs.
func (ca *testCA) crlPEM(tb testing.TB, certs ...*x509.Certificate) []byte {
	tb.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(testSerial.Add(1)),
		ThisUpdate: time.Now().Add(-time.Minute),
		NextUpdate: time.Now().Add(time.Hour),
	}
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBlock("X509 CRL", der)
}

// testFiles is a state folder with a CA, a server certificate and a CRL.
type testFiles struct {
	dir                                string
	ca                                 *testCA
	server                             *issued
	certFile, keyFile, caFile, crlFile string
}

func newTestFiles(tb testing.TB) *testFiles {
	tb.Helper()
	dir := tb.TempDir()
	ca := newTestCA(tb, "dockmoat test CA")
	f := &testFiles{
		dir:      dir,
		ca:       ca,
		server:   ca.issue(tb, leafOptions{name: "gateway", server: true}),
		certFile: filepath.Join(dir, "server-cert.pem"),
		keyFile:  filepath.Join(dir, "server-key.pem"),
		caFile:   filepath.Join(dir, "ca.pem"),
		crlFile:  filepath.Join(dir, "crl.pem"),
	}
	writeFile(tb, f.certFile, f.server.certPEM)
	writeFile(tb, f.keyFile, f.server.keyPEM)
	writeFile(tb, f.caFile, ca.pem)
	writeFile(tb, f.crlFile, ca.crlPEM(tb))
	return f
}

// writeFile replaces path atomically, the way the pki package writes files.
func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// clientTLS returns a client configuration that trusts f's CA and presents
// cert, or no certificate when cert is nil.
func (f *testFiles) clientTLS(cert *issued) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.pair}
	}
	return cfg
}
