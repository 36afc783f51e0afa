package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// KeyType is a key algorithm and size for a CA, server or client key.
type KeyType string

// Supported key types. ECDSA P-256 is the default for the CA and servers
// because handshakes are cheap; RSA 2048 is the default for clients because
// several Java Docker clients (the Spotify docker-client behind older
// docker-maven-plugin versions, older docker-java) load only RSA keys.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
)

// Default key types.
const (
	DefaultCAKeyType     = ECDSAP256
	DefaultServerKeyType = ECDSAP256
	DefaultClientKeyType = RSA2048
)

// KeyTypes lists every supported key type.
var KeyTypes = []KeyType{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096}

// ParseKeyType returns the KeyType named s, such as "rsa-2048".
func ParseKeyType(s string) (KeyType, error) {
	for _, k := range KeyTypes {
		if string(k) == s {
			return k, nil
		}
	}
	return "", invalidInput(fmt.Errorf("unknown key type %q: use one of %s", s, keyTypeList()))
}

func keyTypeList() string {
	names := make([]string, len(KeyTypes))
	for i, k := range KeyTypes {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// orDefault returns k, or def when k is empty, and rejects unknown types.
func (k KeyType) orDefault(def KeyType) (KeyType, error) {
	if k == "" {
		return def, nil
	}
	return ParseKeyType(string(k))
}

// isRSA reports whether k is an RSA key type.
func (k KeyType) isRSA() bool { return strings.HasPrefix(string(k), "rsa-") }

// generateKey creates a new private key of type k.
func generateKey(k KeyType) (crypto.Signer, error) {
	switch k {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q: use one of %s", k, keyTypeList())
}

// encodeKeyPEM returns key as unencrypted PEM in the traditional form every
// Docker client reads: PKCS#1 "RSA PRIVATE KEY" for RSA and SEC 1
// "EC PRIVATE KEY" for ECDSA.
func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", key)
}

// parseKeyPEM parses one PEM private key. An "ENCRYPTED PRIVATE KEY" block
// needs passphrase; without one it returns ErrPassphraseRequired.
func parseKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block found")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("unexpected data after the %q PEM block", block.Type)
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case encryptedKeyPEMType:
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		key, err = decryptPKCS8(block.Bytes, passphrase)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q, want a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

// keyTypeOf returns the KeyType of a public key, or "" for others.
func keyTypeOf(pub crypto.PublicKey) KeyType {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256
		case elliptic.P384():
			return ECDSAP384
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048
		case 3072:
			return RSA3072
		case 4096:
			return RSA4096
		}
	}
	return ""
}
