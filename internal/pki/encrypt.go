package pki

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// The CA key is encrypted as a PKCS#8 EncryptedPrivateKeyInfo with PBES2
// (RFC 8018): PBKDF2 with HMAC-SHA256 and AES-256-CBC. This is the form
// `openssl pkey -in ca-key.pem` (OpenSSL 1.1 and 3.x) decrypts after asking
// for the passphrase, and the form OpenSSL 3 writes by default.

const encryptedKeyPEMType = "ENCRYPTED PRIVATE KEY"

// pbkdf2Iterations is the PBKDF2-HMAC-SHA256 work factor, the value OWASP's
// Password Storage Cheat Sheet recommends (2023).
const pbkdf2Iterations = 600_000

var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES128CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// encryptKeyPEM returns key as an "ENCRYPTED PRIVATE KEY" PEM block
// encrypted with passphrase.
func encryptKeyPEM(key any, passphrase []byte) ([]byte, error) {
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	aesKey, err := pbkdf2.Key(sha256.New, string(passphrase), salt, pbkdf2Iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, err
	}
	padded := pkcs7Pad(plain, aes.BlockSize)
	sealed := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(sealed, padded)

	der, err := marshalPBES2(salt, iv, sealed)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: encryptedKeyPEMType, Bytes: der}), nil
}

// marshalPBES2 encodes sealed as a DER EncryptedPrivateKeyInfo (RFC 5958)
// whose PBES2 parameters (RFC 8018) name PBKDF2 with HMAC-SHA256, salt and
// pbkdf2Iterations, and AES-256-CBC with iv.
func marshalPBES2(salt, iv, sealed []byte) ([]byte, error) {
	kdf, err := asn1.Marshal(pbkdf2Params{
		Salt:       salt,
		Iterations: pbkdf2Iterations,
		KeyLength:  32,
		PRF:        pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue},
	})
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: sealed,
	})
}

// decryptPKCS8 decrypts a DER EncryptedPrivateKeyInfo that uses PBES2 with
// PBKDF2 (HMAC-SHA1 or HMAC-SHA256) and AES-CBC, the forms OpenSSL 1.1 and
// 3.x write. A passphrase that does not decrypt it yields ErrWrongPassphrase.
func decryptPKCS8(der, passphrase []byte) (any, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errors.New("invalid encrypted private key structure")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("unsupported key encryption %v, want PBES2", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, errors.New("invalid PBES2 parameters")
	}
	aesKey, err := deriveKey(params, passphrase)
	if err != nil {
		return nil, err
	}

	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 {
		return nil, errors.New("invalid AES-CBC parameters")
	}
	if len(iv) != aes.BlockSize || len(info.EncryptedData) == 0 || len(info.EncryptedData)%aes.BlockSize != 0 {
		return nil, errors.New("invalid AES-CBC IV or data length")
	}

	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(info.EncryptedData))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.EncryptedData)
	plain, ok := pkcs7Unpad(plain, aes.BlockSize)
	if !ok {
		return nil, ErrWrongPassphrase
	}
	key, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		// Valid padding with a wrong key happens about once in 256 tries.
		return nil, ErrWrongPassphrase
	}
	return key, nil
}

// deriveKey runs PBKDF2 as params describe and returns the AES key.
func deriveKey(params pbes2Params, passphrase []byte) ([]byte, error) {
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("unsupported key derivation %v, want PBKDF2", params.KeyDerivationFunc.Algorithm)
	}
	var kdf pbkdf2Params
	if rest, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil || len(rest) != 0 {
		return nil, errors.New("invalid PBKDF2 parameters")
	}
	// The upper bound keeps a crafted file from pinning the CPU for hours.
	if kdf.Iterations < 1 || kdf.Iterations > 10_000_000 {
		return nil, fmt.Errorf("invalid PBKDF2 iteration count %d", kdf.Iterations)
	}

	var prf func() hash.Hash
	switch {
	case len(kdf.PRF.Algorithm) == 0, kdf.PRF.Algorithm.Equal(oidHMACWithSHA1):
		prf = sha1.New
	case kdf.PRF.Algorithm.Equal(oidHMACWithSHA256):
		prf = sha256.New
	default:
		return nil, fmt.Errorf("unsupported PBKDF2 PRF %v", kdf.PRF.Algorithm)
	}

	var keyLen int
	switch alg := params.EncryptionScheme.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen = 16
	case alg.Equal(oidAES192CBC):
		keyLen = 24
	case alg.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("unsupported cipher %v, want AES-CBC", alg)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, fmt.Errorf("PBKDF2 key length %d does not match the cipher", kdf.KeyLength)
	}
	return pbkdf2.Key(prf, string(passphrase), kdf.Salt, kdf.Iterations, keyLen)
}

func pkcs7Pad(data []byte, size int) []byte {
	n := size - len(data)%size
	return append(append([]byte(nil), data...), bytes.Repeat([]byte{byte(n)}, n)...)
}

func pkcs7Unpad(data []byte, size int) ([]byte, bool) {
	if len(data) == 0 || len(data)%size != 0 {
		return nil, false
	}
	n := int(data[len(data)-1])
	if n == 0 || n > size {
		return nil, false
	}
	for _, b := range data[len(data)-n:] {
		if int(b) != n {
			return nil, false
		}
	}
	return data[:len(data)-n], true
}
