package bundle

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// keyPair is a parsed client certificate and its key.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.PrivateKey
}

// tlsPair parses the certificate and key of f and checks that they match
// and that the key is one unencrypted PEM block, the form Docker loads.
func tlsPair(f Files) (keyPair, error) {
	block, _ := pem.Decode(f.Key)
	if block == nil {
		return keyPair{}, errors.New("key.pem contains no PEM block")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return keyPair{}, errors.New("key.pem is encrypted, and Docker clients cannot load encrypted keys: reissue the certificate with dockmoat")
	}
	if _, err := parseCert(f.Cert); err != nil {
		return keyPair{}, fmt.Errorf("cert.pem: %w", err)
	}
	pair, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		return keyPair{}, fmt.Errorf("cert.pem and key.pem: %w", err)
	}
	return keyPair{cert: pair.Leaf, key: pair.PrivateKey}, nil
}
