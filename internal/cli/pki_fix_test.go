package cli

import (
	"strings"
	"testing"
)

// runMain runs the command line args and returns the exit code, stdout
// and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := Main(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPKIRenewOutput(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"pki", "init", "--dir", dir},
		{"pki", "issue", "client", "alice", "--dir", dir},
	} {
		if code, _, stderr := runMain(t, args...); code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, stdout, stderr := runMain(t, "pki", "renew", "alice", "--dir", dir)
	if code != ExitOK {
		t.Fatalf("pki renew: exit %d, stderr %q", code, stderr)
	}
	if want := "renewed client certificate \"alice\"\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("pki renew stdout = %q, want it to start with %q", stdout, want)
	}
	if strings.Contains(stdout, "issued") {
		t.Errorf("pki renew stdout = %q, want no \"issued\"", stdout)
	}
}
