package pki

import (
	"errors"
	"testing"
)

func FuzzParseKeyPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"), []byte("pw"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"), []byte(""))
	f.Fuzz(func(t *testing.T, data, passphrase []byte) {
		key, err := parseKeyPEM(data, passphrase)
		if err == nil && key == nil {
			t.Fatal("nil key without an error")
		}
	})
}

func FuzzDecryptPKCS8(f *testing.F) {
	f.Add([]byte{0x30, 0x00}, []byte("pw"))
	f.Fuzz(func(t *testing.T, der, passphrase []byte) {
		key, err := decryptPKCS8(der, passphrase)
		if err == nil && key == nil {
			t.Fatal("nil key without an error")
		}
		if err != nil && !errors.Is(err, ErrWrongPassphrase) && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"alice", "../x", "a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		for _, r := range name {
			if r == '/' || r == 0 || r == ' ' {
				t.Fatalf("ValidateName accepted %q", name)
			}
		}
		if name == "." || name == ".." || name[0] == '.' || name[0] == '-' {
			t.Fatalf("ValidateName accepted %q", name)
		}
	})
}

func FuzzNormalizeSerial(f *testing.F) {
	for _, s := range []string{"0a:1b", "0xff", "alice", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, serial string) {
		got, ok := NormalizeSerial(serial)
		if !ok {
			return
		}
		again, ok := NormalizeSerial(got)
		if !ok || again != got {
			t.Fatalf("NormalizeSerial(%q) = %q, which normalizes to %q, %v", serial, got, again, ok)
		}
	})
}
