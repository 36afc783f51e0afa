package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// daemon-config replaces the live dockerd TLS files in --tls-dir, so input
// it rejects must leave --tls-dir and the state directory as they were:
// otherwise the next dockerd restart picks up a certificate and CA that the
// unchanged daemon.json and its clients were never set up for.
func TestDaemonConfigRejectsBeforeWriting(t *testing.T) {
	work := t.TempDir()
	unit := filepath.Join(work, "docker.service")
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/usr/bin/dockerd -H fd://\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badJSON := filepath.Join(work, "bad-daemon.json")
	if err := os.WriteFile(badJSON, []byte(`{"log-level": `), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
	}{
		{"corrupt daemon.json", []string{"--daemon-json", badJSON, "--unit", unit, "--socket-unit", os.DevNull}},
		{"missing socket unit", []string{"--daemon-json", filepath.Join(work, "none.json"), "--unit", unit, "--socket-unit", filepath.Join(work, "missing.socket")}},
		{"missing service unit", []string{"--daemon-json", filepath.Join(work, "none.json"), "--unit", filepath.Join(work, "missing.service"), "--socket-unit", os.DevNull}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := initTestCA(t)
			tlsDir := filepath.Join(t.TempDir(), "tls")
			before := snapshot(t, dir)
			args := append([]string{"daemon-config", "--dir", dir, "--tls-dir", tlsDir,
				"--listen", "tcp://127.0.0.1:2376"}, tt.args...)
			r := runDockmoat(t, "", args...)
			if r.code != 2 {
				t.Errorf("exit code %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if _, err := os.Stat(tlsDir); err == nil {
				t.Errorf("--tls-dir %s was created", tlsDir)
			}
			after := snapshot(t, dir)
			for path, entry := range after {
				if before[path] != entry {
					t.Errorf("state file %s changed or appeared: got %q, want %q", path, entry, before[path])
				}
			}
		})
	}
}
