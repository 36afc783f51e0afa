package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/pki"
)

// setUpWithFlags runs up's set-up steps, without the gateway, with args.
func setUpWithFlags(t *testing.T, args ...string) error {
	t.Helper()
	var stdout, stderr strings.Builder
	root := newRootCommand(strings.NewReader(""), &stdout, &stderr)
	up, _, err := root.Find([]string{"up"})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	opts, err := readServeOptions(up)
	if err != nil {
		t.Fatalf("read options %v: %v", args, err)
	}
	return setUp(up, opts, nil, nil)
}

func TestUpPassphraseFile(t *testing.T) {
	passFile := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("wrong horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newEncryptedCA := func(t *testing.T) string {
		dir := t.TempDir()
		if _, err := pki.Init(dir, pki.InitOptions{Passphrase: []byte("correct horse")}); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("missing flag", func(t *testing.T) {
		err := setUpWithFlags(t, "--dir", newEncryptedCA(t))
		if !errors.Is(err, pki.ErrPassphraseRequired) {
			t.Fatalf("setUp error = %v, want ErrPassphraseRequired", err)
		}
		var exit *exitError
		if !errors.As(err, &exit) || !strings.Contains(exit.hint, "--passphrase-file") {
			t.Errorf("setUp error = %#v, want a hint naming --passphrase-file", err)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		err := setUpWithFlags(t, "--dir", newEncryptedCA(t), "--passphrase-file", wrongFile)
		if !errors.Is(err, pki.ErrWrongPassphrase) {
			t.Errorf("setUp error = %v, want ErrWrongPassphrase", err)
		}
	})
	t.Run("correct passphrase", func(t *testing.T) {
		dir := newEncryptedCA(t)
		if err := setUpWithFlags(t, "--dir", dir, "--passphrase-file", passFile); err != nil {
			t.Fatalf("setUp error = %v, want nil", err)
		}
		ca, err := pki.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{gatewayServerName, adminClientName} {
			if _, found, err := ca.Find(name); err != nil || !found {
				t.Errorf("certificate %q: found %v, err %v; want it issued", name, found, err)
			}
		}
		// Nothing is left to sign, so a second run needs no passphrase.
		if err := setUpWithFlags(t, "--dir", dir); err != nil {
			t.Errorf("second setUp without --passphrase-file: error = %v, want nil", err)
		}
	})
}
