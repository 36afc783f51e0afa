package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// tlsState is one loaded generation of the server certificate, the client
// CA and the CRL. It is immutable once built; a reload builds a new one.
type tlsState struct {
	config *tls.Config
	roots  *x509.CertPool
	// caCerts are the certificates in the CA file, the first one being the
	// CA that signs client certificates.
	caCerts []*x509.Certificate
	leaf    *x509.Certificate
	// revoked holds the serials on the CRL in lowercase hexadecimal, the form
	// of identity.Identity.Serial.
	revoked map[string]struct{}
	// crlNextUpdate is the CRL's NextUpdate, zero without a CRL.
	crlNextUpdate time.Time
	// digest identifies the file contents this state was built from, so a
	// reload that finds nothing changed can be skipped.
	digest [sha256.Size]byte
}

// errRevoked matches, with errors.Is, the handshake error of a revoked client
// certificate.
var errRevoked = errors.New("client certificate is revoked")

// revokedError is the handshake error of a revoked client certificate.
type revokedError struct {
	cert *x509.Certificate
}

func (e *revokedError) Error() string {
	return fmt.Sprintf("client certificate %q with serial %x is revoked",
		e.cert.Subject.CommonName, e.cert.SerialNumber)
}

func (e *revokedError) Is(target error) bool { return target == errRevoked }

// loadTLSState reads the files named in cfg and builds the TLS configuration
// used for client handshakes.
func loadTLSState(cfg *Config) (*tlsState, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("read server certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read server key: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	var crlPEM []byte
	if cfg.CRLFile != "" {
		crlPEM, err = os.ReadFile(cfg.CRLFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read CRL: %w", err)
		}
	}

	st := &tlsState{digest: digestFiles(certPEM, keyPEM, caPEM, crlPEM)}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load server certificate %s with key %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	st.leaf = pair.Leaf
	if err := st.loadCA(cfg.CAFile, caPEM); err != nil {
		return nil, err
	}
	if err := st.loadCRL(cfg.CRLFile, crlPEM); err != nil {
		return nil, err
	}
	st.config = st.newConfig(&pair)
	return st, nil
}

func digestFiles(files ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%d:", len(f))
		h.Write(f)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func (st *tlsState) loadCA(path string, data []byte) error {
	st.roots = x509.NewCertPool()
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("parse client CA %s: %w", path, err)
		}
		if !cert.IsCA {
			return fmt.Errorf("client CA %s: certificate %q is not a CA certificate", path, cert.Subject.CommonName)
		}
		st.roots.AddCert(cert)
		st.caCerts = append(st.caCerts, cert)
	}
	if len(st.caCerts) == 0 {
		return fmt.Errorf("client CA %s: no PEM CERTIFICATE block found", path)
	}
	return nil
}

// loadCRL parses a PEM or DER CRL and checks that one of the CA certificates
// signed it. An empty data means no CRL file exists yet, so nothing is
// revoked.
func (st *tlsState) loadCRL(path string, data []byte) error {
	st.revoked = map[string]struct{}{}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return fmt.Errorf("CRL %s: PEM block is %q, want \"X509 CRL\"", path, block.Type)
		}
		der = block.Bytes
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("parse CRL %s: %w", path, err)
	}
	if err := checkCRLSignature(crl, st.caCerts); err != nil {
		return fmt.Errorf("CRL %s: %w", path, err)
	}
	for _, entry := range crl.RevokedCertificateEntries {
		st.revoked[fmt.Sprintf("%x", entry.SerialNumber)] = struct{}{}
	}
	st.crlNextUpdate = crl.NextUpdate
	return nil
}

func checkCRLSignature(crl *x509.RevocationList, cas []*x509.Certificate) error {
	var lastErr error
	for _, ca := range cas {
		if lastErr = crl.CheckSignatureFrom(ca); lastErr == nil {
			return nil
		}
	}
	return fmt.Errorf("not signed by the client CA: %w", lastErr)
}

func (st *tlsState) newConfig(pair *tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{*pair},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        st.roots,
		NextProtos:       []string{"http/1.1"},
		VerifyConnection: st.verifyConnection,
	}
}

// verifyConnection runs after the chain check of every handshake, including
// resumed sessions. A resumed session was verified against the CA of an
// earlier state, so its chain is checked again against the current CA.
func (st *tlsState) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: client didn't provide a certificate")
	}
	leaf := cs.PeerCertificates[0]
	if err := checkClientUsage(leaf); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	if cs.DidResume {
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots:         st.roots,
			Intermediates: intermediates(cs.PeerCertificates[1:]),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
	}
	if st.isRevoked(leaf) {
		return &revokedError{cert: leaf}
	}
	return nil
}

// checkClientUsage rejects a client certificate that is a CA or does not
// name clientAuth among its extended key usages. crypto/x509 treats a
// certificate without extended key usages as valid for any usage, so
// without this check the CA certificate itself, whose key signs every
// client certificate, would pass as a client.
func checkClientUsage(leaf *x509.Certificate) error {
	if leaf.IsCA {
		return x509.CertificateInvalidError{Cert: leaf, Reason: x509.IncompatibleUsage,
			Detail: "a CA certificate is not a client certificate"}
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return x509.CertificateInvalidError{Cert: leaf, Reason: x509.IncompatibleUsage,
			Detail: "the certificate does not name clientAuth in its extended key usage"}
	}
	return nil
}

func intermediates(certs []*x509.Certificate) *x509.CertPool {
	if len(certs) == 0 {
		return nil
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

func (st *tlsState) isRevoked(cert *x509.Certificate) bool {
	if len(st.revoked) == 0 {
		return false
	}
	_, ok := st.revoked[fmt.Sprintf("%x", cert.SerialNumber)]
	return ok
}

// caFingerprint returns the SHA-256 fingerprint of the signing CA in
// lowercase hexadecimal.
func (st *tlsState) caFingerprint() string {
	sum := sha256.Sum256(st.caCerts[0].Raw)
	return hex.EncodeToString(sum[:])
}
