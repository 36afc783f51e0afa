package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Authority is a CA loaded from a state directory. Its methods are safe for
// concurrent use, and writers in other processes are serialized by a lock
// file, so several `dockmoat pki` runs may work on one directory at once.
type Authority struct {
	dir  string
	cert *x509.Certificate
	// certPEM is the CA certificate as stored, copied into every bundle.
	certPEM []byte

	mu        sync.Mutex
	key       crypto.Signer
	encrypted bool
	// now is the clock, replaced in tests.
	now func() time.Time
}

// InitOptions configures a new CA. Zero values select the defaults.
type InitOptions struct {
	// Name is the first part of the CA's subject CN, "dockmoat CA" by
	// default. A suffix of 64 random bits makes every CA's subject unique,
	// so clients that trust several dockmoat CAs do not confuse their chains.
	Name string
	// KeyType is the CA key type, DefaultCAKeyType by default.
	KeyType KeyType
	// Days is the validity in days, DefaultCADays by default.
	Days int
	// Passphrase, when not empty, encrypts the CA key (PKCS#8, PBES2 with
	// AES-256-CBC). An Authority from Open then needs Unlock with it before
	// it can sign.
	Passphrase []byte
	// Force replaces an existing CA. Certificates the old CA issued stop
	// being accepted by anything that trusts the new one.
	Force bool
}

// Init creates a CA in dir and returns it unlocked. It returns ErrExists
// when dir already contains a CA, unless opts.Force is set. The new CA's
// certificate, key, empty CRL and empty index replace the old ones all
// together, so a crash at any point leaves either the old CA or the new one.
// Issued bundles under servers/ and clients/ stay on disk, but the new index
// does not list them.
func Init(dir string, opts InitOptions) (*Authority, error) {
	name, keyType, days, err := validateInit(opts)
	if err != nil {
		return nil, err
	}
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	if err := recoverPending(dir); err != nil {
		return nil, err
	}
	if Exists(dir) && !opts.Force {
		return nil, fmt.Errorf("%w in %s", ErrExists, dir)
	}

	a := &Authority{dir: dir, now: time.Now}
	files, err := a.create(name, keyType, days, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	if err := commitFiles(dir, files); err != nil {
		return nil, err
	}
	return a, nil
}

func validateInit(opts InitOptions) (name string, keyType KeyType, days int, err error) {
	name = opts.Name
	if name == "" {
		name = "dockmoat CA"
	}
	// The CN is name, a space and 16 hex digits, within the 64 of RFC 5280.
	if len(name) > maxNameLen-17 {
		return "", "", 0, invalidInput(fmt.Errorf("CA name %q is too long: use at most %d characters", name, maxNameLen-17))
	}
	keyType, err = opts.KeyType.orDefault(DefaultCAKeyType)
	if err != nil {
		return "", "", 0, err
	}
	days, err = validDays(opts.Days, DefaultCADays)
	return name, keyType, days, err
}

// validDays returns days, or def when days is 0, and rejects negative or
// absurd values.
func validDays(days, def int) (int, error) {
	if days == 0 {
		return def, nil
	}
	if days < 0 || days > 100*366 {
		return 0, invalidInput(fmt.Errorf("invalid validity of %d days: use 1 to %d", days, 100*366))
	}
	return days, nil
}

// create makes the CA key, certificate, CRL and index in memory, fills a,
// and returns the encoded files by name.
func (a *Authority) create(name string, keyType KeyType, days int, passphrase []byte) (map[string][]byte, error) {
	key, err := generateKey(keyType)
	if err != nil {
		return nil, err
	}
	cert, der, err := selfSignCA(key, name, days, a.now())
	if err != nil {
		return nil, err
	}
	a.cert = cert
	a.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	a.key = key
	a.encrypted = len(passphrase) > 0

	var keyPEM []byte
	if a.encrypted {
		keyPEM, err = encryptKeyPEM(key, passphrase)
	} else {
		keyPEM, err = encodeKeyPEM(key)
	}
	if err != nil {
		return nil, err
	}
	crl, err := a.signCRL(nil, big.NewInt(1))
	if err != nil {
		return nil, err
	}
	index, err := encodeIndex(&indexData{Version: indexVersion})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		caKeyFile:  keyPEM,
		caCertFile: a.certPEM,
		crlFile:    crl,
		indexFile:  index,
	}, nil
}

// selfSignCA creates the self-signed CA certificate for key, valid from
// clockSkew before now until days days after now. The common name is name followed by
// random hex digits, so that CAs created with the same name have distinct
// subjects. MaxPathLen 0 makes verifiers reject any intermediate CA that
// the CA signs.
func selfSignCA(key crypto.Signer, name string, days int, now time.Time) (*x509.Certificate, []byte, error) {
	now = now.UTC().Truncate(time.Second)
	serial, err := newSerial(nil)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   name + " " + randomHex(8),
			Organization: []string{"dockmoat"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, der, nil
}

// Exists reports whether dir contains a CA certificate or key.
func Exists(dir string) bool {
	for _, name := range []string{caCertFile, caKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// Open loads the CA of state directory dir: its certificate and index. The
// key is loaded when the first certificate is signed, or by Unlock, and may
// be missing until then. Open returns an error wrapping ErrNoCA when dir
// contains no CA certificate.
func Open(dir string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, pendingDir)); err == nil {
		lock, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		err = recoverPending(dir)
		lock.unlock()
		if err != nil {
			return nil, err
		}
	}

	certPEM, err := os.ReadFile(CACertPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoCA, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("invalid CA certificate %s: %w", CACertPath(dir), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("invalid CA certificate %s: it is not a CA certificate", CACertPath(dir))
	}
	a := &Authority{dir: dir, cert: cert, certPEM: certPEM, now: time.Now}
	if _, err := a.loadIndex(); err != nil {
		return nil, err
	}

	// A CA key kept offline is fine until something needs to be signed.
	keyPEM, err := os.ReadFile(CAKeyPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("invalid CA key %s: no PEM block found", CAKeyPath(dir))
	}
	a.encrypted = block.Type == encryptedKeyPEMType
	return a, nil
}

// parseCertPEM parses a file that must contain exactly one certificate.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("unexpected PEM block %q, want CERTIFICATE", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Dir returns the state directory.
func (a *Authority) Dir() string { return a.dir }

// Certificate returns the CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// CertificatePEM returns the CA certificate as stored in ca.pem.
func (a *Authority) CertificatePEM() []byte { return append([]byte(nil), a.certPEM...) }

// KeyEncrypted reports whether the CA key is encrypted with a passphrase.
func (a *Authority) KeyEncrypted() bool { return a.encrypted }

// Unlock loads the CA key, decrypting it with passphrase when it is
// encrypted. It returns ErrWrongPassphrase for a passphrase that does not
// decrypt the key and ErrPassphraseRequired for an empty one. An
// unencrypted key ignores passphrase.
func (a *Authority) Unlock(passphrase []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.loadKey(passphrase)
}

// signer returns the CA key, loading an unencrypted key on first use.
// The caller holds a.mu.
func (a *Authority) signer() (crypto.Signer, error) {
	if a.key == nil {
		if err := a.loadKey(nil); err != nil {
			return nil, err
		}
	}
	return a.key, nil
}

// loadKey reads, decrypts and checks the CA key. It rejects a key file
// that group or others may read, as OpenSSH does for private keys, because
// a user who reads the CA key can sign client certificates that are root on
// every Docker host trusting the CA.
func (a *Authority) loadKey(passphrase []byte) error {
	path := CAKeyPath(a.dir)
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the CA key %s is missing, and signing needs it: copy it back from where it is kept", path)
	}
	if err != nil {
		return fmt.Errorf("read CA key: %w", err)
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("CA key %s has mode %04o, so other users may have read it: run 'chmod 600 %s', and replace the CA with 'dockmoat pki init --force' if the key may have been copied", path, mode, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read CA key: %w", err)
	}
	key, err := parseKeyPEM(data, passphrase)
	if errors.Is(err, ErrPassphraseRequired) || errors.Is(err, ErrWrongPassphrase) {
		return err
	}
	if err != nil {
		return fmt.Errorf("invalid CA key %s: %w", CAKeyPath(a.dir), err)
	}
	if !publicKeysEqual(key.Public(), a.cert.PublicKey) {
		return fmt.Errorf("CA key %s does not match the CA certificate %s", CAKeyPath(a.dir), CACertPath(a.dir))
	}
	a.key = key
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// checkCurrent rejects signing when ca.pem no longer contains a's
// certificate, because `pki init --force` replaced the CA after a was
// opened. Signing with the old key would add records to the new CA's
// index that its CRL cannot revoke. The caller holds the lock.
func (a *Authority) checkCurrent() error {
	data, err := os.ReadFile(CACertPath(a.dir))
	if err != nil {
		return fmt.Errorf("read CA certificate: %w", err)
	}
	if !bytes.Equal(data, a.certPEM) {
		return fmt.Errorf("the CA in %s was replaced while this command ran: run the command again", a.dir)
	}
	return nil
}

// checkUsable rejects signing with a CA that has expired or is not valid
// yet at now.
func (a *Authority) checkUsable(now time.Time) error {
	if now.After(a.cert.NotAfter) {
		return fmt.Errorf("%w on %s (%s)", ErrCAExpired, a.cert.NotAfter.UTC().Format(time.DateOnly), CACertPath(a.dir))
	}
	if now.Before(a.cert.NotBefore) {
		return fmt.Errorf("the CA certificate is not valid before %s: check the system clock", a.cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// pendingDir and stagingDir hold Init's files. stagingDir is written first.
// Renaming it to pendingDir commits the new CA, and recoverPending then moves
// the files into place, also after a crash.
const (
	stagingDir = ".init-staging"
	pendingDir = ".init-pending"
)

// commitFiles replaces files in dir all together through the staging and
// pending folders. The caller holds the directory lock.
func commitFiles(dir string, files map[string][]byte) error {
	staging := filepath.Join(dir, stagingDir)
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		if err := WriteFileAtomic(filepath.Join(staging, name), data, fileMode(name)); err != nil {
			return err
		}
	}
	if err := os.Rename(staging, filepath.Join(dir, pendingDir)); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return recoverPending(dir)
}

// recoverPending finishes a committed Init: it moves every file left in the
// pending folder into dir and removes the folder. An uncommitted staging
// folder is discarded. The caller holds the directory lock.
func recoverPending(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, stagingDir)); err != nil {
		return err
	}
	pending := filepath.Join(dir, pendingDir)
	entries, err := os.ReadDir(pending)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(pending, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("failed to finish CA creation: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(pending); err != nil {
		return err
	}
	return syncDir(dir)
}

// fileMode returns the mode of a state file: 0600 for keys, 0644 otherwise.
func fileMode(name string) os.FileMode {
	switch name {
	case caKeyFile, serverKeyFile, clientKeyFile:
		return 0o600
	}
	return 0o644
}
