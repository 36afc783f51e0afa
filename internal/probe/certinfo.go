package probe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"time"
)

// CertInfo summarizes one certificate for a report.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dnsNames,omitempty"`
	IPAddresses []string  `json:"ipAddresses,omitempty"`
	KeyType     string    `json:"keyType"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	Expired     bool      `json:"expired"`
	IsCA        bool      `json:"isCA"`
}

func describeChain(chain []*x509.Certificate, now time.Time) []CertInfo {
	infos := make([]CertInfo, 0, len(chain))
	for _, c := range chain {
		infos = append(infos, describeCert(c, now))
	}
	return infos
}

func describeCert(c *x509.Certificate, now time.Time) CertInfo {
	info := CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		DNSNames:  c.DNSNames,
		KeyType:   KeyType(c.PublicKey),
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
		Expired:   now.After(c.NotAfter) || now.Before(c.NotBefore),
		IsCA:      c.IsCA,
	}
	for _, ip := range c.IPAddresses {
		info.IPAddresses = append(info.IPAddresses, ip.String())
	}
	return info
}

// KeyType names a public or private key's algorithm and size, such as
// "ECDSA P-256" or "RSA 2048".
func KeyType(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", key)
	}
}

// distinguishedNames decodes the DER subjects of a CertificateRequest.
func distinguishedNames(ders [][]byte) []string {
	var names []string
	for _, der := range ders {
		var seq pkix.RDNSequence
		if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
			continue
		}
		var name pkix.Name
		name.FillFromRDNSequence(&seq)
		names = append(names, name.String())
	}
	return names
}

// sanList returns a certificate's SANs for a message, or "none".
func sanList(c *x509.Certificate) string {
	var b bytes.Buffer
	for _, d := range c.DNSNames {
		fmt.Fprintf(&b, "DNS:%s, ", d)
	}
	for _, ip := range c.IPAddresses {
		fmt.Fprintf(&b, "IP:%s, ", ip)
	}
	if b.Len() == 0 {
		return "none"
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte(", ")))
}
