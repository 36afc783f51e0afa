package probe

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Severity ranks a finding.
type Severity string

// Severities. Only SeverityError means the client fails.
const (
	SeverityOK      Severity = "ok"
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// Finding is one observation of doctor, with its cause and fix.
type Finding struct {
	Severity Severity `json:"severity"`
	// Subject is the topic of the finding: a file name, an environment
	// variable or "endpoint".
	Subject string `json:"subject"`
	Message string `json:"message"`
	// Fix is the command or environment lines that fix it.
	Fix string `json:"fix,omitempty"`
}

// ExpirySoon is the time before expiry from which a certificate draws a
// warning.
const ExpirySoon = 30 * 24 * time.Hour

// ClientFiles are the PEM files a Docker client presents and trusts.
type ClientFiles struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// clientMaterial is the parsed content of the client files, as far as
// they parse.
type clientMaterial struct {
	roots     *x509.CertPool
	cas       []*x509.Certificate
	leaf      *x509.Certificate
	chain     []*x509.Certificate
	key       crypto.PrivateKey
	keyPair   *tls.Certificate
	certFound bool
}

// checkClientFiles checks ca.pem, cert.pem and key.pem the way Docker
// clients and strict verifiers read them.
func checkClientFiles(files ClientFiles, now time.Time) ([]Finding, *clientMaterial) {
	var fs findings
	m := &clientMaterial{}
	fs.add(checkCAFile(files.CA, now, m)...)
	fs.add(checkCertFile(files.Cert, now, m)...)
	fs.add(checkKeyFile(files.Key, m)...)

	if m.leaf != nil && m.key != nil {
		pub, ok := m.key.(interface{ Public() crypto.PublicKey })
		if ok && !publicKeysEqual(pub.Public(), m.leaf.PublicKey) {
			fs.errorf("key.pem", "regenerate the pair: dockmoat pki issue client NAME --out DIR",
				"%s does not belong to the certificate in %s, so clients fail with "+
					"\"tls: private key does not match public key\"", files.Key, files.Cert)
		} else if ok {
			chain := [][]byte{m.leaf.Raw}
			for _, c := range m.chain {
				chain = append(chain, c.Raw)
			}
			m.keyPair = &tls.Certificate{Certificate: chain, PrivateKey: m.key, Leaf: m.leaf}
		}
	}
	if m.leaf != nil && m.roots != nil {
		fs.add(checkClientChain(files, m, now)...)
	}
	return fs.list, m
}

type findings struct{ list []Finding }

func (f *findings) add(list ...Finding) { f.list = append(f.list, list...) }

func (f *findings) note(sev Severity, subject, fix, format string, args ...any) {
	f.list = append(f.list, Finding{Severity: sev, Subject: subject, Message: fmt.Sprintf(format, args...), Fix: fix})
}

func (f *findings) errorf(subject, fix, format string, args ...any) {
	f.note(SeverityError, subject, fix, format, args...)
}

func (f *findings) warnf(subject, fix, format string, args ...any) {
	f.note(SeverityWarning, subject, fix, format, args...)
}

func (f *findings) okf(subject, format string, args ...any) {
	f.note(SeverityOK, subject, "", format, args...)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// maxPEMFile bounds what doctor reads of one TLS file. Real bundles are a
// few KiB; the bound keeps a path such as /dev/zero from exhausting memory.
const maxPEMFile = 1 << 20

// readBlocks returns the PEM blocks of path and any bytes that are neither
// PEM nor white space.
func readBlocks(path string) ([]*pem.Block, bool, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxPEMFile+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxPEMFile {
		return nil, false, fmt.Errorf("%s is larger than %d bytes, which no PEM certificate or key file is; point DOCKER_CERT_PATH at the folder with ca.pem, cert.pem and key.pem", path, maxPEMFile)
	}
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	return blocks, strings.TrimSpace(string(rest)) != "", nil
}

func checkCAFile(path string, now time.Time, m *clientMaterial) []Finding {
	var fs findings
	blocks, junk, err := readBlocks(path)
	if err != nil {
		fs.errorf("ca.pem", "point DOCKER_CERT_PATH at the folder with ca.pem, cert.pem and key.pem",
			"cannot read the CA certificate: %v", err)
		return fs.list
	}
	if junk {
		fs.warnf("ca.pem", "", "%s has text that is not PEM, which some clients reject", path)
	}
	m.roots = x509.NewCertPool()
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			fs.errorf("ca.pem", "keep only the CA certificate in ca.pem",
				"%s holds a %q PEM block; it must hold only CERTIFICATE blocks", path, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			fs.errorf("ca.pem", "", "%s holds a certificate that does not parse: %v", path, err)
			continue
		}
		m.cas = append(m.cas, c)
		m.roots.AddCert(c)
		fs.add(checkValidity("ca.pem", path, c, now, "issue a new CA: dockmoat pki init --force, then reissue every certificate")...)
		fs.add(checkCAProfile(path, c)...)
	}
	if len(m.cas) == 0 {
		m.roots = nil
		fs.errorf("ca.pem", "copy the CA certificate (ca.pem) from the CA into this folder",
			"%s holds no CERTIFICATE PEM block, so clients cannot verify the server", path)
	} else if len(m.cas) > 1 {
		fs.note(SeverityInfo, "ca.pem", "", "%s holds %d CA certificates; clients trust each of them", path, len(m.cas))
	}
	return fs.list
}

// checkCAProfile reports CA certificates that strict verifiers reject.
func checkCAProfile(path string, c *x509.Certificate) []Finding {
	var fs findings
	name := c.Subject.String()
	switch {
	case !c.IsCA:
		fs.warnf("ca.pem", "use the CA's certificate as ca.pem: dockmoat pki export NAME --format dir",
			"%s (%s) is not a CA certificate (no basicConstraints CA:TRUE); clients accept it "+
				"only as the server's own self-signed certificate", path, name)
	case c.KeyUsage == 0:
		fs.warnf("ca.pem", "issue the CA with keyUsage keyCertSign: dockmoat pki init",
			"the CA %s in %s has no keyUsage extension; OpenSSL 3 strict verification, the default "+
				"in Python 3.13's ssl module, rejects it with \"CA cert does not include key usage extension\"",
			name, path)
	case c.KeyUsage&x509.KeyUsageCertSign == 0:
		fs.errorf("ca.pem", "issue the CA with keyUsage keyCertSign: dockmoat pki init",
			"the CA %s in %s has a keyUsage without keyCertSign, so it may not sign certificates", name, path)
	}
	return fs.list
}

func checkValidity(subject, path string, c *x509.Certificate, now time.Time, fix string) []Finding {
	var fs findings
	name := c.Subject.String()
	switch {
	case now.After(c.NotAfter):
		fs.errorf(subject, fix, "%s (%s) expired on %s; clients fail with "+
			"\"x509: certificate has expired or is not yet valid\"", path, name, day(c.NotAfter))
	case now.Before(c.NotBefore):
		fs.errorf(subject, "check the clock of this machine and of the issuer",
			"%s (%s) is not valid before %s; the clock may be wrong", path, name, c.NotBefore.UTC().Format(time.RFC3339))
	case c.NotAfter.Sub(now) < ExpirySoon:
		fs.warnf(subject, fix, "%s (%s) expires on %s, in %d days", path, name, day(c.NotAfter),
			int(c.NotAfter.Sub(now).Hours()/24))
	default:
		fs.okf(subject, "%s (%s) is valid until %s", path, name, day(c.NotAfter))
	}
	return fs.list
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func checkCertFile(path string, now time.Time, m *clientMaterial) []Finding {
	var fs findings
	blocks, _, err := readBlocks(path)
	if errors.Is(err, os.ErrNotExist) {
		fs.warnf("cert.pem", "", "%s does not exist, so the client sends no certificate", path)
		return fs.list
	}
	if err != nil {
		fs.errorf("cert.pem", "", "cannot read the client certificate: %v", err)
		return fs.list
	}
	m.certFound = true
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			fs.errorf("cert.pem", "keep the certificate in cert.pem and the key in key.pem",
				"%s holds a %q PEM block; it must hold only CERTIFICATE blocks", path, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			fs.errorf("cert.pem", "", "%s holds a certificate that does not parse: %v", path, err)
			continue
		}
		if i == 0 {
			m.leaf = c
		} else {
			m.chain = append(m.chain, c)
		}
	}
	if m.leaf == nil {
		fs.errorf("cert.pem", "", "%s holds no CERTIFICATE PEM block; clients fail with "+
			"\"tls: failed to find any PEM data in certificate input\"", path)
		return fs.list
	}
	name := m.leaf.Subject.CommonName
	fs.add(checkValidity("cert.pem", path, m.leaf, now, "renew it: dockmoat pki renew "+name)...)
	if len(m.leaf.ExtKeyUsage) > 0 && !slices.Contains(m.leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
		!slices.Contains(m.leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		fs.errorf("cert.pem", "issue a client certificate: dockmoat pki issue client "+name,
			"%s has no clientAuth extended key usage, so dockerd rejects it with "+
				"\"x509: certificate specifies an incompatible key usage\"", path)
	}
	return fs.list
}

func checkKeyFile(path string, m *clientMaterial) []Finding {
	var fs findings
	blocks, _, err := readBlocks(path)
	if errors.Is(err, os.ErrNotExist) {
		if m.certFound {
			fs.errorf("key.pem", "", "%s does not exist, so the certificate cannot be used", path)
		}
		return fs.list
	}
	if err != nil {
		fs.errorf("key.pem", "", "cannot read the client key: %v", err)
		return fs.list
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		fs.warnf("key.pem", "chmod 600 "+path, "%s has mode %04o; anyone who can read it is root on the Docker host",
			path, info.Mode().Perm())
	}
	var keys []*pem.Block
	for _, b := range blocks {
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			keys = append(keys, b)
		}
	}
	if len(keys) != 1 {
		fs.errorf("key.pem", "", "%s holds %d private key PEM blocks, want exactly one", path, len(keys))
		return fs.list
	}
	b := keys[0]
	if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		fs.errorf("key.pem", fmt.Sprintf("write it without a passphrase: openssl pkey -in %s -out %s.plain && "+
			"chmod 600 %s.plain && mv %s.plain %s", path, path, path, path, path),
			"%s is encrypted with a passphrase; Docker clients cannot prompt for it and fail with "+
				"\"tls: failed to parse private key\"", path)
		return fs.list
	}
	key, err := parseKey(b)
	if err != nil {
		fs.errorf("key.pem", "", "%s does not parse as a %s: %v", path, b.Type, err)
		return fs.list
	}
	m.key = key
	fs.add(checkKeyType(path, b.Type, key)...)
	return fs.list
}

func parseKey(b *pem.Block) (crypto.PrivateKey, error) {
	switch b.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	return nil, fmt.Errorf("unknown PEM type %q", b.Type)
}

// checkKeyType reports client key types and formats that some Docker
// clients cannot read.
func checkKeyType(path, pemType string, key crypto.PrivateKey) []Finding {
	var fs findings
	fix := "issue an RSA client key: dockmoat pki issue client NAME --key-type rsa-2048"
	switch key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		fs.warnf("key.pem", fix, "%s is an %s key; the docker CLI accepts it, but Java clients that read "+
			"only RSA keys (Spotify docker-client behind older docker-maven-plugin versions, older "+
			"docker-java) fail with \"Invalid RSA private key\"", path, KeyType(key))
	case *rsa.PrivateKey:
		if pemType == "PRIVATE KEY" {
			fs.note(SeverityInfo, "key.pem", "convert it: openssl rsa -in "+path+" -traditional -out key-pkcs1.pem, then use key-pkcs1.pem as key.pem",
				"%s is an RSA key in PKCS#8 form; some older Java clients read only PKCS#1 "+
					"(\"BEGIN RSA PRIVATE KEY\")", path)
		} else {
			fs.okf("key.pem", "%s is an unencrypted %s key", path, KeyType(key))
		}
	}
	return fs.list
}

// checkClientChain checks that cert.pem chains to a CA in ca.pem. Docker
// setups usually use one CA for both sides, but the server may trust
// another CA for clients. A mismatch is therefore only a warning here, and
// the handshake shows whether the server accepts the certificate.
func checkClientChain(files ClientFiles, m *clientMaterial, now time.Time) []Finding {
	var fs findings
	inter := x509.NewCertPool()
	for _, c := range m.chain {
		inter.AddCert(c)
	}
	_, err := m.leaf.Verify(x509.VerifyOptions{
		Roots: m.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
		fs.okf("cert.pem", "%s chains to %s", files.Cert, files.CA)
	case errors.As(err, &unknown):
		fs.warnf("cert.pem", "", "%s is issued by %s, which is not in %s; the daemon must trust that issuer",
			files.Cert, m.leaf.Issuer, files.CA)
	}
	return fs.list
}
