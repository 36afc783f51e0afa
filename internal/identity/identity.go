// Package identity defines who a gateway client is, as read from its
// verified TLS client certificate.
package identity

import (
	"crypto/x509"
	"fmt"
	"slices"
)

// Identity is a client authenticated by its certificate. Name is the subject
// common name, the same value Docker's own authorization plugins receive as
// the user. Groups are the subject's organizational unit (OU) values.
type Identity struct {
	Name   string
	Groups []string
	// Serial is the certificate serial number in lowercase hexadecimal
	// without separators, the form pki list and the audit log print.
	Serial string
}

// FromCertificate returns the identity of a verified client certificate.
// The caller must have verified the chain and revocation status.
func FromCertificate(cert *x509.Certificate) Identity {
	groups := append([]string(nil), cert.Subject.OrganizationalUnit...)
	return Identity{
		Name:   cert.Subject.CommonName,
		Groups: groups,
		Serial: fmt.Sprintf("%x", cert.SerialNumber),
	}
}

// InGroup reports whether the identity carries group.
func (id Identity) InGroup(group string) bool {
	return slices.Contains(id.Groups, group)
}
