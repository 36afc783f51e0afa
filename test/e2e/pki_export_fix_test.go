package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// TestP12KeytoolRunsUnattended runs the keytool command that pki export
// --format p12 prints, with stdin closed, as a script would.
func TestP12KeytoolRunsUnattended(t *testing.T) {
	dockertest.Require(t, "keytool")
	state := t.TempDir()
	work := t.TempDir()
	passFile := filepath.Join(work, "p12.pass")
	if err := os.WriteFile(passFile, []byte("export pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustDockmoat(t, "pki", "init", "--dir", state)
	mustDockmoat(t, "pki", "issue", "client", "alice", "--dir", state)
	out := mustDockmoat(t, "pki", "export", "alice", "--dir", state, "--format", "p12",
		"--password-file", passFile, "--out", filepath.Join(work, "alice.p12")).stdout

	var command string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "keytool ") {
			command = strings.TrimSpace(line)
		}
	}
	if command == "" {
		t.Fatalf("export output has no keytool command:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = work
	cmd.Stdin = nil // the null device, so a password prompt reads EOF
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, output)
	}

	list := exec.CommandContext(ctx, "keytool", "-list", "-keystore", filepath.Join(work, "truststore.p12"),
		"-storetype", "PKCS12", "-storepass", "export pass")
	output, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, output)
	}
	if !strings.Contains(string(output), "dockmoat-ca, ") || !strings.Contains(string(output), "trustedCertEntry") {
		t.Errorf("keytool -list output = %q, want a trustedCertEntry dockmoat-ca", output)
	}
}
