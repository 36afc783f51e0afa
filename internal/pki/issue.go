package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"time"
)

// ServerRequest describes a server certificate, for dockerd or the gateway.
type ServerRequest struct {
	// Name names the certificate and its folder under DIR/servers.
	Name string
	// DNSNames and IPs are the subjectAltNames. When both are empty,
	// DefaultServerNames supplies them. A DNS name that parses as an IP
	// address is written as an IP SAN.
	DNSNames []string
	IPs      []net.IP
	// Days is the validity, DefaultServerDays when 0.
	Days int
	// KeyType is DefaultServerKeyType when empty.
	KeyType KeyType
}

// ClientRequest describes a client certificate.
type ClientRequest struct {
	// Name is the subject CN, which the gateway uses as the client's
	// identity, and the name of its folder under DIR/clients.
	Name string
	// Groups are written as subject OU values, one per group.
	Groups []string
	// Days is the validity, DefaultClientDays when 0.
	Days int
	// KeyType is DefaultClientKeyType when empty.
	KeyType KeyType
}

// leafSpec is a validated request of either kind.
type leafSpec struct {
	kind     Kind
	name     string
	groups   []string
	dnsNames []string
	ips      []net.IP
	days     int
	keyType  KeyType
}

// IssueServer issues a server certificate and writes ca.pem,
// server-cert.pem and server-key.pem to ServerDir(dir, req.Name). It fails
// with ErrAlreadyIssued when a valid certificate of that name exists (renew
// or revoke it first). The certificate never outlives the CA: its NotAfter
// is cut to the CA's NotAfter.
func (a *Authority) IssueServer(req ServerRequest) (Record, error) {
	spec, err := serverSpec(req)
	if err != nil {
		return Record{}, err
	}
	return a.issueNew(spec)
}

// IssueClient issues a client certificate and writes ca.pem, cert.pem and
// key.pem to ClientDir(dir, req.Name). It fails with ErrAlreadyIssued when
// a valid certificate of that name exists (renew or revoke it first). The
// certificate never outlives the CA.
func (a *Authority) IssueClient(req ClientRequest) (Record, error) {
	spec, err := clientSpec(req)
	if err != nil {
		return Record{}, err
	}
	return a.issueNew(spec)
}

func serverSpec(req ServerRequest) (leafSpec, error) {
	if err := ValidateName(req.Name); err != nil {
		return leafSpec{}, err
	}
	keyType, err := req.KeyType.orDefault(DefaultServerKeyType)
	if err != nil {
		return leafSpec{}, err
	}
	days, err := validDays(req.Days, DefaultServerDays)
	if err != nil {
		return leafSpec{}, err
	}
	dnsNames, ips := req.DNSNames, req.IPs
	if len(dnsNames) == 0 && len(ips) == 0 {
		if dnsNames, ips, err = DefaultServerNames(); err != nil {
			return leafSpec{}, err
		}
	}
	dnsNames, ips, err = normalizeSANs(dnsNames, ips)
	if err != nil {
		return leafSpec{}, err
	}
	return leafSpec{kind: KindServer, name: req.Name, dnsNames: dnsNames, ips: ips, days: days, keyType: keyType}, nil
}

func clientSpec(req ClientRequest) (leafSpec, error) {
	if err := ValidateName(req.Name); err != nil {
		return leafSpec{}, err
	}
	var groups []string
	seen := map[string]bool{}
	for _, g := range req.Groups {
		if err := validateGroup(g); err != nil {
			return leafSpec{}, err
		}
		if !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	keyType, err := req.KeyType.orDefault(DefaultClientKeyType)
	if err != nil {
		return leafSpec{}, err
	}
	days, err := validDays(req.Days, DefaultClientDays)
	if err != nil {
		return leafSpec{}, err
	}
	return leafSpec{kind: KindClient, name: req.Name, groups: groups, days: days, keyType: keyType}, nil
}

// issueNew issues spec unless a valid certificate of that name exists.
func (a *Authority) issueNew(spec leafSpec) (Record, error) {
	return a.withLock(func(idx *indexData) (Record, error) {
		if err := a.adoptBundle(idx, spec.name); err != nil {
			return Record{}, err
		}
		if i := idx.current(spec.name); i >= 0 {
			r := idx.Records[i].withStatus(a.now())
			if r.Status == StatusValid {
				return Record{}, fmt.Errorf("%w: %s %q, serial %s, expires %s: renew it with 'dockmoat pki renew %s' or revoke it first",
					ErrAlreadyIssued, r.Kind, r.Name, r.Serial, r.NotAfter.UTC().Format(time.DateOnly), r.Name)
			}
			if r.Kind != spec.kind {
				return Record{}, fmt.Errorf("name %q belongs to a %s certificate: choose another name", spec.name, r.Kind)
			}
		}
		rec, err := a.sign(spec, idx)
		if err != nil {
			return Record{}, err
		}
		idx.Records = append(idx.Records, rec)
		return rec, nil
	})
}

// Renew issues a new certificate with a new key, the same names, groups,
// key type and validity period as the current certificate called name, and
// marks the old one superseded. The old certificate is not revoked: it stays
// usable until it expires, so clients can switch over; revoke its serial to
// end it at once. Revoked certificates cannot be renewed.
func (a *Authority) Renew(name string) (Record, error) {
	return a.withLock(func(idx *indexData) (Record, error) {
		if err := a.adoptBundle(idx, name); err != nil {
			return Record{}, err
		}
		i := idx.current(name)
		if i < 0 {
			return Record{}, fmt.Errorf("%w: no certificate named %q: issue one with 'dockmoat pki issue'", ErrNotFound, name)
		}
		old := idx.Records[i]
		if old.Status == StatusRevoked {
			return Record{}, fmt.Errorf("certificate %q (serial %s) is revoked: issue a new one with 'dockmoat pki issue %s %s'", name, old.Serial, old.Kind, name)
		}
		spec := leafSpec{
			kind:     old.Kind,
			name:     old.Name,
			groups:   old.Groups,
			dnsNames: old.DNSNames,
			days:     int((old.NotAfter.Sub(old.NotBefore) - clockSkew + 12*time.Hour) / (24 * time.Hour)),
			keyType:  old.KeyType,
		}
		for _, s := range old.IPs {
			spec.ips = append(spec.ips, net.ParseIP(s))
		}
		if spec.days < 1 {
			spec.days = 1
		}
		rec, err := a.sign(spec, idx)
		if err != nil {
			return Record{}, err
		}
		idx.Records[i].Status = StatusSuperseded
		idx.Records = append(idx.Records, rec)
		return rec, nil
	})
}

// withLock runs change with the directory lock held and the index freshly
// read, then saves the index that change modified. change must write every
// other file before it returns, so the index is always written last.
func (a *Authority) withLock(change func(*indexData) (Record, error)) (Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lock, err := lockDir(a.dir)
	if err != nil {
		return Record{}, err
	}
	defer lock.unlock()
	if err := a.checkCurrent(); err != nil {
		return Record{}, err
	}
	if err := a.checkUsable(a.now()); err != nil {
		return Record{}, err
	}
	if _, err := a.signer(); err != nil {
		return Record{}, err
	}
	idx, err := a.loadIndex()
	if err != nil {
		return Record{}, err
	}
	rec, err := change(idx)
	if err != nil {
		return Record{}, err
	}
	if err := a.saveIndex(idx); err != nil {
		return Record{}, err
	}
	return rec.withStatus(a.now()), nil
}

// sign creates the certificate and key for spec, writes its bundle and
// returns its record. The caller holds the lock and a loaded key.
func (a *Authority) sign(spec leafSpec, idx *indexData) (Record, error) {
	key, err := generateKey(spec.keyType)
	if err != nil {
		return Record{}, err
	}
	serial, err := newSerial(idx)
	if err != nil {
		return Record{}, err
	}
	tmpl, err := a.leafTemplate(spec, serial, key.Public())
	if err != nil {
		return Record{}, err
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return Record{}, fmt.Errorf("sign %s certificate %q: %w", spec.kind, spec.name, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return Record{}, err
	}
	if err := a.writeBundle(spec.kind, spec.name, certPEM, keyPEM); err != nil {
		return Record{}, err
	}

	rec := Record{
		Name:      spec.name,
		Kind:      spec.kind,
		Groups:    spec.groups,
		Serial:    fmt.Sprintf("%x", serial),
		DNSNames:  spec.dnsNames,
		KeyType:   spec.keyType,
		NotBefore: tmpl.NotBefore.UTC(),
		NotAfter:  tmpl.NotAfter.UTC(),
		Status:    StatusValid,
	}
	for _, ip := range spec.ips {
		rec.IPs = append(rec.IPs, ip.String())
	}
	return rec, nil
}

// leafTemplate returns the certificate template for spec.
func (a *Authority) leafTemplate(spec leafSpec, serial *big.Int, pub crypto.PublicKey) (*x509.Certificate, error) {
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	// Certificates store times in whole seconds, and so does the index.
	now := a.now().UTC().Truncate(time.Second)
	notAfter := now.AddDate(0, 0, spec.days)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		SubjectKeyId:          ski,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	switch spec.kind {
	case KindServer:
		// RSA key exchange (TLS 1.2 without ECDHE) encrypts with the
		// server key, which needs keyEncipherment.
		if spec.keyType.isRSA() {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = spec.dnsNames
		tmpl.IPAddresses = spec.ips
		tmpl.Subject = pkix.Name{CommonName: serverCN(spec)}
	case KindClient:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.Subject = pkix.Name{CommonName: spec.name, OrganizationalUnit: spec.groups}
	}
	return tmpl, nil
}

// serverCN returns the subject CN of a server certificate: its first DNS
// name, else its name. Clients match only the SANs; the CN is for people.
func serverCN(spec leafSpec) string {
	if len(spec.dnsNames) > 0 && len(spec.dnsNames[0]) <= maxNameLen {
		return spec.dnsNames[0]
	}
	return spec.name
}

// subjectKeyID returns the SHA-1 hash of the subject public key, method 1
// of RFC 5280 section 4.2.1.2.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// newSerial returns a random 128-bit serial number that idx does not
// contain yet. Its DER form takes at most 17 bytes, within the 20 that RFC
// 5280 section 4.1.2.2 allows, and zero is skipped.
func newSerial(idx *indexData) (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 100 {
		serial, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if serial.Sign() == 0 {
			continue
		}
		if idx == nil || idx.bySerial(fmt.Sprintf("%x", serial)) < 0 {
			return serial, nil
		}
	}
	return nil, errors.New("failed to find an unused serial number after 100 random draws")
}

// writeBundle writes ca.pem, the certificate and the key of kind and name.
// The key is written before the certificate, so once the new certificate is
// in place its key is too. A reader that reads the key before a concurrent
// renewal and the certificate after it sees a mismatched pair and must retry.
func (a *Authority) writeBundle(kind Kind, name string, certPEM, keyPEM []byte) error {
	paths := BundlePaths(a.dir, kind, name)
	if err := mkdirPrivate(filepath.Dir(paths.Cert)); err != nil {
		return err
	}
	if err := WriteFileAtomic(paths.CA, a.certPEM, 0o644); err != nil {
		return err
	}
	if err := WriteFileAtomic(paths.Key, keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(paths.Cert, certPEM, 0o644)
}
