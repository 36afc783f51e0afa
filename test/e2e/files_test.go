package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"testing"
)

// copyFile writes a copy of the file from to the path to, created with mode
// 0600.
func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// readPEMBlock returns the only PEM block in path.
func readPEMBlock(t testing.TB, path string) *pem.Block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: want exactly one PEM block", path)
	}
	return block
}

// readPEMCert parses the one certificate in path.
func readPEMCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	block := readPEMBlock(t, path)
	if block.Type != "CERTIFICATE" {
		t.Fatalf("%s: got a %s block, want CERTIFICATE", path, block.Type)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// certificateSerial returns the serial of the one certificate in path in
// lowercase hexadecimal, as the index and the audit log write it.
func certificateSerial(t testing.TB, path string) string {
	t.Helper()
	return fmt.Sprintf("%x", readPEMCert(t, path).SerialNumber)
}

// readKey parses the one unencrypted PEM private key in path, in PKCS#1,
// SEC 1 or PKCS#8 form.
func readKey(t testing.TB, path string) any {
	t.Helper()
	block := readPEMBlock(t, path)
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k
	}
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: unsupported key: %v", path, err)
	}
	return k
}
