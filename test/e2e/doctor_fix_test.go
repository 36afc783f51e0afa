package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// closedLoopbackAddr returns a loopback address with no listener.
func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDoctorMatchesCLIStartupErrors checks that doctor reports the errors
// with which the docker CLI stops before it connects, as the CLI words them.
func TestDoctorMatchesCLIStartupErrors(t *testing.T) {
	addr := closedLoopbackAddr(t)
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	tests := []struct {
		name    string
		env     []string
		cliErr  string
		fix     string
		notWant []string
	}{
		{"https host",
			[]string{"DOCKER_HOST=https://" + addr},
			"invalid bind address format: https://" + addr,
			"export DOCKER_HOST=tcp://" + addr,
			[]string{"the client would connect"}},
		{"missing cert folder",
			tlsEnv(addr, missing),
			"open " + filepath.Join(missing, "ca.pem") + ": no such file or directory",
			"point DOCKER_CERT_PATH at the folder with ca.pem",
			[]string{"unknown authority", "handshake", "pki issue client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := dockerCLI(t, tt.env...).Run(nil, "version", "--format", "{{.Server.Version}}")
			if res.Err == nil || !strings.Contains(res.Stderr, tt.cliErr) {
				t.Errorf("docker version: err %v, stderr %q; want a failure containing %q", res.Err, res.Stderr, tt.cliErr)
			}
			r := runDoctor(t, tt.env, "doctor")
			wantDoctor(t, r, 1, tt.cliErr, tt.fix)
			for _, bad := range tt.notWant {
				if strings.Contains(r.stdout, bad) {
					t.Errorf("doctor stdout contains %q, want it absent:\n%s", bad, r.stdout)
				}
			}
		})
	}
}
