package pki

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// indexVersion is the format version of index.json.
const indexVersion = 1

// indexData is the content of index.json: every certificate the CA issued,
// in issuance order.
type indexData struct {
	Version int      `json:"version"`
	Records []Record `json:"records"`
}

func encodeIndex(idx *indexData) ([]byte, error) {
	if idx.Records == nil {
		idx.Records = []Record{}
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// loadIndex reads index.json. A missing index is an empty one, so a CA
// copied in by hand (ca.pem and ca-key.pem only) can be opened.
func (a *Authority) loadIndex() (*indexData, error) {
	path := IndexPath(a.dir)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &indexData{Version: indexVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var idx indexData
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrInvalidIndex, path, err)
	}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("%w %s: format version %d, this dockmoat reads version %d", ErrInvalidIndex, path, idx.Version, indexVersion)
	}
	return &idx, nil
}

// saveIndex replaces index.json atomically. The caller holds the lock.
func (a *Authority) saveIndex(idx *indexData) error {
	data, err := encodeIndex(idx)
	if err != nil {
		return err
	}
	return WriteFileAtomic(IndexPath(a.dir), data, 0o644)
}

// List returns every issued certificate in issuance order, with the status
// it has now. It reads the index from disk, so it includes certificates
// that other processes issued after Open.
func (a *Authority) List() ([]Record, error) {
	idx, err := a.loadIndex()
	if err != nil {
		return nil, err
	}
	now := a.now()
	out := make([]Record, len(idx.Records))
	for i, r := range idx.Records {
		out[i] = r.withStatus(now)
	}
	return out, nil
}

// Find returns the current certificate named name: the newest one that was
// not superseded by a renewal. Its status may be revoked or expired. The
// boolean is false when no certificate has that name.
func (a *Authority) Find(name string) (Record, bool, error) {
	idx, err := a.loadIndex()
	if err != nil {
		return Record{}, false, err
	}
	i := idx.current(name)
	if i < 0 {
		return Record{}, false, nil
	}
	return idx.Records[i].withStatus(a.now()), true, nil
}

// current returns the index of the newest non-superseded record named
// name, or -1.
func (idx *indexData) current(name string) int {
	for i := len(idx.Records) - 1; i >= 0; i-- {
		r := idx.Records[i]
		if r.Name == name && r.Status != StatusSuperseded {
			return i
		}
	}
	return -1
}

// bySerial returns the index of the record with serial, or -1.
func (idx *indexData) bySerial(serial string) int {
	for i, r := range idx.Records {
		if r.Serial == serial {
			return i
		}
	}
	return -1
}

// adoptBundle lists in idx the certificate in the bundle folder of name
// when it was signed by this CA and idx does not list it yet. Issuance
// writes the bundle before the index, so a process killed in between
// leaves such a certificate, and clients that read the state directory's
// files can use it. Listing it makes it revocable by name. The adopted
// record becomes the current one and supersedes the valid record it
// replaces, which finishes the interrupted renewal. The caller holds the
// lock.
func (a *Authority) adoptBundle(idx *indexData, name string) error {
	if ValidateName(name) != nil {
		return nil
	}
	kinds := []Kind{KindClient, KindServer}
	current := idx.current(name)
	if current >= 0 {
		kinds = []Kind{idx.Records[current].Kind}
	}
	for _, kind := range kinds {
		path := BundlePaths(a.dir, kind, name).Cert
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		cert, err := parseCertPEM(data)
		// Bundles of a CA that init --force replaced stay on disk, and
		// they are not this CA's to list.
		if err != nil || cert.CheckSignatureFrom(a.cert) != nil {
			continue
		}
		rec := recordFromCert(kind, name, cert)
		if idx.bySerial(rec.Serial) >= 0 {
			continue
		}
		if current >= 0 && idx.Records[current].Status == StatusValid {
			idx.Records[current].Status = StatusSuperseded
		}
		idx.Records = append(idx.Records, rec)
		return nil
	}
	return nil
}

// recordFromCert returns the index record of an issued certificate.
func recordFromCert(kind Kind, name string, cert *x509.Certificate) Record {
	rec := Record{
		Name:      name,
		Kind:      kind,
		Serial:    fmt.Sprintf("%x", cert.SerialNumber),
		KeyType:   keyTypeOf(cert.PublicKey),
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		Status:    StatusValid,
	}
	if kind == KindClient {
		rec.Groups = cert.Subject.OrganizationalUnit
	} else {
		rec.DNSNames = cert.DNSNames
		for _, ip := range cert.IPAddresses {
			rec.IPs = append(rec.IPs, ip.String())
		}
	}
	return rec
}
