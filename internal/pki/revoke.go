package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// crlValidity is the time from a CRL's thisUpdate to its nextUpdate.
// Verifiers that check freshness (openssl verify -crl_check) reject a CRL
// after nextUpdate, so `dockmoat pki crl --update` re-signs it.
const crlValidity = 365 * 24 * time.Hour

// reasonCodes maps the CRLReason names of RFC 5280 section 5.3.1 to their
// codes. Names are matched without regard to case.
var reasonCodes = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"certificateHold":      6,
	"privilegeWithdrawn":   9,
	"aACompromise":         10,
}

// ParseReason returns the canonical RFC 5280 name and code of a
// revocation reason. An empty reason is "unspecified".
func ParseReason(reason string) (string, int, error) {
	if reason == "" {
		return "unspecified", 0, nil
	}
	for name, code := range reasonCodes {
		if strings.EqualFold(name, reason) {
			return name, code, nil
		}
	}
	return "", 0, invalidInput(fmt.Errorf("unknown revocation reason %q: use one of keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, unspecified", reason))
}

// NormalizeSerial returns serial in the form the index uses: lowercase
// hexadecimal without separators or leading zeros. It accepts the colon
// form openssl prints and an optional "0x" prefix.
func NormalizeSerial(serial string) (string, bool) {
	s := strings.ToLower(strings.ReplaceAll(serial, ":", ""))
	s = strings.TrimPrefix(s, "0x")
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return "", false
	}
	return fmt.Sprintf("%x", n), true
}

// Revoke revokes certificates and rewrites the CRL, and returns the
// records it revoked. nameOrSerial is a serial number in hexadecimal, which
// revokes that one certificate even when it is superseded, or a name. A name
// revokes its current certificate and every superseded certificate of that
// name that has not expired, because Renew leaves those valid and a client
// could otherwise keep authenticating with an older key. reason is an RFC
// 5280 CRLReason name (see ParseReason). The CRL is written before the
// index.
func (a *Authority) Revoke(nameOrSerial, reason string) ([]Record, error) {
	reasonName, _, err := ParseReason(reason)
	if err != nil {
		return nil, err
	}
	var revoked []Record
	_, err = a.withLock(func(idx *indexData) (Record, error) {
		targets, err := a.revocationTargets(idx, nameOrSerial)
		if err != nil {
			return Record{}, err
		}
		now := a.now().UTC().Truncate(time.Second)
		for _, i := range targets {
			r := &idx.Records[i]
			r.Status = StatusRevoked
			r.RevokedAt = now
			r.Reason = reasonName
			revoked = append(revoked, *r)
		}
		if err := a.writeCRL(idx); err != nil {
			return Record{}, err
		}
		return revoked[0], nil
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}

// revocationTargets returns the positions in idx of the records that
// Revoke(nameOrSerial) revokes: one record for a serial, and for a name its
// current record followed by its unexpired, unrevoked superseded ones.
func (a *Authority) revocationTargets(idx *indexData, nameOrSerial string) ([]int, error) {
	if serial, ok := NormalizeSerial(nameOrSerial); ok {
		if i := idx.bySerial(serial); i >= 0 {
			if err := checkNotRevoked(idx.Records[i]); err != nil {
				return nil, err
			}
			return []int{i}, nil
		}
	}
	if err := a.adoptBundle(idx, nameOrSerial); err != nil {
		return nil, err
	}
	current := idx.current(nameOrSerial)
	if current < 0 {
		return nil, fmt.Errorf("%w: no certificate with name or serial %q: see 'dockmoat pki list'", ErrNotFound, nameOrSerial)
	}
	var targets []int
	if idx.Records[current].Status != StatusRevoked {
		targets = append(targets, current)
	}
	now := a.now()
	for i, r := range idx.Records {
		if r.Name == nameOrSerial && r.Status == StatusSuperseded && now.Before(r.NotAfter) {
			targets = append(targets, i)
		}
	}
	if len(targets) == 0 {
		return nil, checkNotRevoked(idx.Records[current])
	}
	return targets, nil
}

// checkNotRevoked returns an error when r is already revoked.
func checkNotRevoked(r Record) error {
	if r.Status == StatusRevoked {
		return fmt.Errorf("certificate %q (serial %s) was already revoked on %s", r.Name, r.Serial, r.RevokedAt.Format(time.RFC3339))
	}
	return nil
}

// UpdateCRL re-signs the CRL with a new number and a new nextUpdate. It
// needs the CA key.
func (a *Authority) UpdateCRL() error {
	_, err := a.withLock(func(idx *indexData) (Record, error) {
		return Record{}, a.writeCRL(idx)
	})
	return err
}

// CRL returns the current CRL as stored in crl.pem.
func (a *Authority) CRL() (*x509.RevocationList, []byte, error) {
	data, err := os.ReadFile(CRLPath(a.dir))
	if err != nil {
		return nil, nil, fmt.Errorf("read CRL: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "X509 CRL" {
		return nil, nil, fmt.Errorf("invalid CRL %s: no X509 CRL PEM block: run 'dockmoat pki crl --update'", CRLPath(a.dir))
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid CRL %s: %w", CRLPath(a.dir), err)
	}
	if err := crl.CheckSignatureFrom(a.cert); err != nil {
		return nil, nil, fmt.Errorf("CRL %s is not signed by this CA: %w", CRLPath(a.dir), err)
	}
	return crl, data, nil
}

// writeCRL signs a CRL of every revoked record in idx, numbered one above
// the stored CRL, and writes crl.pem. The caller holds the lock and key.
func (a *Authority) writeCRL(idx *indexData) error {
	number := big.NewInt(1)
	if old, _, err := a.CRL(); err == nil && old.Number != nil {
		number.Add(old.Number, big.NewInt(1))
	}
	data, err := a.signCRL(idx.Records, number)
	if err != nil {
		return err
	}
	return WriteFileAtomic(CRLPath(a.dir), data, 0o644)
}

// signCRL returns a PEM CRL with number that lists the revoked records.
func (a *Authority) signCRL(records []Record, number *big.Int) ([]byte, error) {
	now := a.now().UTC()
	var entries []x509.RevocationListEntry
	for _, r := range records {
		if r.Status != StatusRevoked {
			continue
		}
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("index contains an invalid serial %q for %q", r.Serial, r.Name)
		}
		_, code, err := ParseReason(r.Reason)
		if err != nil {
			code = 0
		}
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   serial,
			RevocationTime: r.RevokedAt,
			ReasonCode:     code,
		})
	}
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now,
		NextUpdate:                now.Add(crlValidity),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, a.cert, a.key)
	if err != nil {
		return nil, fmt.Errorf("sign CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
