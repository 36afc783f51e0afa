// Package pki is dockmoat's certificate authority for Docker TLS. It creates
// the CA, issues server and client certificates, renews and revokes them,
// signs the certificate revocation list (CRL) and keeps every file of it in
// one state directory.
//
// Layout of a state directory DIR:
//
//	DIR/ca.pem                 CA certificate
//	DIR/ca-key.pem             CA key, 0600, optionally encrypted (PKCS#8 PBES2)
//	DIR/crl.pem                CRL signed by the CA, rewritten on every revocation
//	DIR/index.json             every certificate the CA issued
//	DIR/index.lock             flock(2) lock that serializes writers
//	DIR/servers/NAME/          ca.pem, server-cert.pem, server-key.pem
//	DIR/clients/NAME/          ca.pem, cert.pem, key.pem
//
// Every file is written to a temporary file in the same folder, synced and
// renamed into place, and keys are created with mode 0600. Issuance writes
// the certificate and key files first and the index last, so a crash leaves
// either the old index or the new one, never a partial one. A certificate
// that a crash left on disk but not in the index is listed by the next
// issue, renew or revoke of its name.
package pki

import (
	"errors"
	"path/filepath"
	"time"
)

// Kind is the kind of an issued certificate.
type Kind string

// Kinds of issued certificates.
const (
	KindServer Kind = "server"
	KindClient Kind = "client"
)

// Record statuses. StatusExpired is computed when a record is read; the
// index stores only the other three.
const (
	StatusValid      = "valid"
	StatusExpired    = "expired"
	StatusRevoked    = "revoked"
	StatusSuperseded = "superseded"
)

// Default validity periods in days.
const (
	DefaultCADays     = 3650
	DefaultServerDays = 730
	DefaultClientDays = 365
)

// ExpiryWarning is the time before NotAfter from which pki list marks a
// certificate as expiring soon.
const ExpiryWarning = 30 * 24 * time.Hour

// clockSkew is how far NotBefore is set in the past, so that peers whose
// clocks run a few minutes behind still accept a new certificate.
const clockSkew = 5 * time.Minute

// Errors that callers branch on.
var (
	// ErrExists means Init found a CA and Force was not set.
	ErrExists = errors.New("a CA already exists")
	// ErrNoCA means the state directory contains no CA certificate.
	ErrNoCA = errors.New("no CA found")
	// ErrPassphraseRequired means the CA key is encrypted and Unlock has
	// not been called.
	ErrPassphraseRequired = errors.New("the CA key is encrypted and needs a passphrase")
	// ErrWrongPassphrase means the passphrase does not decrypt the CA key.
	ErrWrongPassphrase = errors.New("wrong passphrase for the CA key")
	// ErrCAExpired means the CA certificate has expired, so nothing it
	// signs would be accepted.
	ErrCAExpired = errors.New("the CA certificate has expired")
	// ErrNotFound means no record matches a name or serial.
	ErrNotFound = errors.New("certificate not found")
	// ErrAlreadyIssued means a valid certificate with that name exists.
	ErrAlreadyIssued = errors.New("a valid certificate with this name exists")
	// ErrInvalidIndex means index.json cannot be read as an index. The CA
	// certificate and key are not affected.
	ErrInvalidIndex = errors.New("invalid index")
	// ErrInvalidInput matches, through errors.Is, every error about an
	// invalid request field: a name, group, key type, validity, DNS name or
	// IP address. Such requests write nothing.
	ErrInvalidInput = errors.New("invalid input")
)

// inputError marks an invalid request field without changing its message.
type inputError struct{ err error }

func (e *inputError) Error() string        { return e.err.Error() }
func (e *inputError) Unwrap() error        { return e.err }
func (e *inputError) Is(target error) bool { return target == ErrInvalidInput }

// invalidInput marks err as an ErrInvalidInput; nil stays nil.
func invalidInput(err error) error {
	if err == nil {
		return nil
	}
	return &inputError{err: err}
}

// File names inside the state directory and inside issued bundles.
const (
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	crlFile        = "crl.pem"
	indexFile      = "index.json"
	lockFile       = "index.lock"
	serverCertFile = "server-cert.pem"
	serverKeyFile  = "server-key.pem"
	clientCertFile = "cert.pem"
	clientKeyFile  = "key.pem"
)

// CACertPath returns the path of the CA certificate in state directory dir.
func CACertPath(dir string) string { return filepath.Join(dir, caCertFile) }

// CAKeyPath returns the path of the CA key in state directory dir.
func CAKeyPath(dir string) string { return filepath.Join(dir, caKeyFile) }

// CRLPath returns the path of the PEM CRL in state directory dir.
func CRLPath(dir string) string { return filepath.Join(dir, crlFile) }

// IndexPath returns the path of the index of issued certificates.
func IndexPath(dir string) string { return filepath.Join(dir, indexFile) }

// ServerDir returns the folder that contains ca.pem, server-cert.pem and
// server-key.pem of server certificate name.
func ServerDir(dir, name string) string { return filepath.Join(dir, "servers", name) }

// ClientDir returns the folder that contains ca.pem, cert.pem and key.pem of
// client certificate name.
func ClientDir(dir, name string) string { return filepath.Join(dir, "clients", name) }

// Bundle names the three PEM files of an issued certificate.
type Bundle struct {
	CA, Cert, Key string
}

// BundlePaths returns the file paths of the current certificate of kind and
// name, whether or not they exist.
func BundlePaths(dir string, kind Kind, name string) Bundle {
	if kind == KindServer {
		d := ServerDir(dir, name)
		return Bundle{
			CA:   filepath.Join(d, caCertFile),
			Cert: filepath.Join(d, serverCertFile),
			Key:  filepath.Join(d, serverKeyFile),
		}
	}
	d := ClientDir(dir, name)
	return Bundle{
		CA:   filepath.Join(d, caCertFile),
		Cert: filepath.Join(d, clientCertFile),
		Key:  filepath.Join(d, clientKeyFile),
	}
}

// Record describes one issued certificate as stored in the index.
type Record struct {
	Name     string   `json:"name"`
	Kind     Kind     `json:"kind"`
	Groups   []string `json:"groups,omitempty"`
	Serial   string   `json:"serial"`
	DNSNames []string `json:"dnsNames,omitempty"`
	IPs      []string `json:"ips,omitempty"`
	KeyType  KeyType  `json:"keyType"`

	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`

	// Status is StatusValid, StatusExpired, StatusRevoked or
	// StatusSuperseded. A superseded certificate was replaced by Renew but
	// stays cryptographically valid until it expires or is revoked.
	Status    string    `json:"status"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// ExpiresWithin reports whether r is unexpired at now and expires within d.
func (r Record) ExpiresWithin(d time.Duration, now time.Time) bool {
	return now.Before(r.NotAfter) && r.NotAfter.Sub(now) <= d
}

// withStatus returns r with StatusExpired in place of StatusValid when r
// has expired at now.
func (r Record) withStatus(now time.Time) Record {
	if r.Status == StatusValid && !now.Before(r.NotAfter) {
		r.Status = StatusExpired
	}
	return r
}
