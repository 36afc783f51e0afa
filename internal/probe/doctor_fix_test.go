package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func hasFix(fs []Finding, part string) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return strings.Contains(f.Fix, part) })
}

func TestDiagnoseSANMismatchFix(t *testing.T) {
	ca := newTestCA(t)
	dir := ca.bundle(t, leafSpec{cn: "client", rsaKey: true})
	cert, key := ca.issue(t, leafSpec{cn: "s", dns: []string{"docker.example.test"},
		ips: []net.IP{net.IPv4(10, 10, 10, 20)}, ext: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	addr := startTLS(t, fakeDocker, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(),
	})
	_, port, _ := net.SplitHostPort(addr)
	rep := Diagnose(context.Background(), endpointConfig(t, addr, dir, true), nil, Options{})
	for _, want := range []string{
		"dockmoat up --ip 127.0.0.1",
		"dockmoat daemon-config --san docker.example.test --san 10.10.10.20 --san 127.0.0.1 --reissue",
		"DOCKER_HOST=tcp://docker.example.test:" + port,
	} {
		if !hasFix(rep.Findings, want) {
			t.Errorf("findings = %+v\nwant a fix containing %q", rep.Findings, want)
		}
	}
	for _, bad := range []string{"pki issue server", ":PORT"} {
		if hasFix(rep.Findings, bad) {
			t.Errorf("findings = %+v\nwant no fix containing %q", rep.Findings, bad)
		}
	}
}

func TestDiagnoseURLSchemeHost(t *testing.T) {
	ca := newTestCA(t)
	dir := ca.bundle(t, leafSpec{cn: "client", rsaKey: true})
	addr := startTLS(t, fakeDocker, &tls.Config{
		Certificates: []tls.Certificate{ca.serverTLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(),
	})
	for _, scheme := range []string{"https", "http"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := endpointConfig(t, addr, dir, true)
			cfg.Host, cfg.Source = scheme+"://"+addr, "DOCKER_HOST"
			rep := Diagnose(context.Background(), cfg, nil, Options{Timeout: 3 * time.Second})
			if !rep.ClientFails {
				t.Errorf("client fails = false, want true\nfindings: %+v", rep.Findings)
			}
			if !hasFinding(rep.Findings, SeverityError, "invalid bind address format: "+cfg.Host) {
				t.Errorf("findings = %+v\nwant an error quoting the docker CLI's message", rep.Findings)
			}
			if want := "DOCKER_HOST=tcp://" + addr; !hasFix(rep.Findings, want) {
				t.Errorf("findings = %+v\nwant a fix containing %q", rep.Findings, want)
			}
			if hasFinding(rep.Findings, SeverityOK, "GET /_ping succeeded") {
				t.Errorf("findings = %+v\nwant no successful client attempt", rep.Findings)
			}
		})
	}
}

func TestDiagnoseMissingCertFiles(t *testing.T) {
	ca := newTestCA(t)
	addr := startTLS(t, fakeDocker, &tls.Config{
		Certificates: []tls.Certificate{ca.serverTLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(),
	})
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		missing string
	}{
		{"missing folder", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "nope")
		}, "ca.pem"},
		{"missing ca.pem", func(t *testing.T) string {
			dir := ca.bundle(t, leafSpec{cn: "client", rsaKey: true})
			if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			rep := Diagnose(context.Background(), endpointConfig(t, addr, dir, true), nil, Options{Timeout: 3 * time.Second})
			if !rep.ClientFails {
				t.Errorf("client fails = false, want true\nfindings: %+v", rep.Findings)
			}
			want := "open " + filepath.Join(dir, tt.missing) + ": no such file or directory"
			if len(rep.Findings) == 0 || rep.Findings[0].Severity != SeverityError ||
				!strings.Contains(rep.Findings[0].Message, want) {
				t.Errorf("findings = %+v\nwant the first to be an error containing %q", rep.Findings, want)
			}
			if !hasFix(rep.Findings, "DOCKER_CERT_PATH") {
				t.Errorf("findings = %+v\nwant a fix naming DOCKER_CERT_PATH", rep.Findings)
			}
			for _, bad := range []string{"unknown authority", "handshake", "GET /_ping"} {
				if slices.ContainsFunc(rep.Findings, func(f Finding) bool { return strings.Contains(f.Message, bad) }) {
					t.Errorf("findings = %+v\nwant none containing %q", rep.Findings, bad)
				}
			}
			if hasFix(rep.Findings, "pki issue client") {
				t.Errorf("findings = %+v\nwant no fix that issues a new certificate", rep.Findings)
			}
		})
	}
}

func TestExplainNamesReissueCommands(t *testing.T) {
	for _, message := range []string{
		"x509: certificate relies on legacy Common Name field, use SANs instead",
		"x509: certificate is valid for docker.example.test, not localhost",
	} {
		matches := Explain(message)
		if len(matches) == 0 {
			t.Fatalf("Explain(%q) matched nothing", message)
		}
		checks := strings.Join(matches[0].Checks, "\n")
		for _, want := range []string{"dockmoat up --dns", "dockmoat daemon-config --san", "--reissue"} {
			if !strings.Contains(checks, want) {
				t.Errorf("Explain(%q) checks = %q, want %q", message, checks, want)
			}
		}
		if strings.Contains(checks, "pki issue server") {
			t.Errorf("Explain(%q) checks = %q, want no pki issue server", message, checks)
		}
	}
}
