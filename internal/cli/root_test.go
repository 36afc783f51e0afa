package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestMainExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"help", nil, ExitOK, ""},
		{"version flag", []string{"--version"}, ExitOK, ""},
		{"group without subcommand", []string{"pki"}, ExitOK, ""},
		{"unknown command", []string{"version"}, ExitUsage, `unknown command "version"`},
		{"unknown subcommand", []string{"pki", "bogus"}, ExitUsage, `unknown command "bogus" for "dockmoat pki"`},
		{"unknown nested subcommand", []string{"pki", "issue", "bogus"}, ExitUsage, `unknown command "bogus"`},
		{"missing argument", []string{"check"}, ExitUsage, "requires at least 1 arg"},
		{"too few arguments", []string{"policy", "explain"}, ExitUsage, "accepts between 2 and 3 arg"},
		{"unknown flag", []string{"check", "--bogus"}, ExitUsage, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode == ExitUsage && !strings.Contains(stderr.String(), "hint: run 'dockmoat") {
				t.Errorf("stderr = %q, want a hint that names --help", stderr.String())
			}
		})
	}
}
