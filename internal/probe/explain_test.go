package probe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		message string
		want    string
	}{
		// docker CLI and other Go clients.
		{"error during connect: Get \"https://10.0.0.5:2376/v1.41/version\": x509: certificate relies on legacy Common Name field, use SANs instead", "legacy-common-name"},
		{"x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs", "hostname-mismatch"},
		{"x509: certificate is valid for 10.10.10.20, not 10.0.0.5", "hostname-mismatch"},
		{"x509: certificate has expired or is not yet valid: current time 2026-01-01T00:00:00Z is after 2025-01-01T00:00:00Z", "expired"},
		{"unable to configure TLS: tls: failed to parse private key", "encrypted-key"},
		{"Cannot connect to the Docker daemon at tcp://docker:2375. Is the docker daemon running?", "cannot-connect"},
		{"Error response from daemon: Client sent an HTTP request to an HTTPS server.", "http-to-https"},
		{"malformed HTTP response \"\\x15\\x03\\x01\\x00\\x02\\x02\"", "http-to-https"},
		{"tls: oversized record received with length 20527", "https-to-http"},
		{"http: server gave HTTP response to HTTPS client", "https-to-http"},
		{"remote error: tls: bad certificate", "no-client-certificate"},
		{"remote error: tls: certificate required", "no-client-certificate"},
		{"x509: certificate signed by unknown authority", "unknown-authority"},
		{"tls: private key does not match public key", "key-mismatch"},
		{"x509: certificate specifies an incompatible key usage", "key-usage"},
		{"could not read CA certificate \"/root/.docker/ca.pem\": open /root/.docker/ca.pem: no such file or directory", "missing-file"},
		// dockerd's log.
		{"unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [fd://], from file: [tcp://0.0.0.0:2376])", "hosts-twice"},
		{"failed to load listeners: no sockets found via socket activation: make sure the service was started by systemd", "socket-activation"},
		{"http: TLS handshake error from 10.0.0.9:51234: tls: client didn't provide a certificate", "no-client-certificate"},
		// Java.
		{"javax.net.ssl.SSLHandshakeException: PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path to requested target", "unknown-authority"},
		{"javax.net.ssl.SSLPeerUnverifiedException: Hostname docker-test not verified", "hostname-mismatch"},
		{"java.security.cert.CertificateException: No subject alternative names matching IP address 10.0.0.5 found", "hostname-mismatch"},
		{"java.security.spec.InvalidKeySpecException: Invalid RSA private key", "rsa-only-client"},
		{"javax.net.ssl.SSLException: Unrecognized SSL message, plaintext connection?", "https-to-http"},
		{"javax.net.ssl.SSLHandshakeException: Received fatal alert: bad_certificate", "no-client-certificate"},
		{"java.security.cert.CertificateExpiredException: NotAfter: Mon Jan 01 00:00:00 UTC 2024", "expired"},
		// Python.
		{"ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, certificate is not valid for '10.0.0.5'. (_ssl.c:1006)", "hostname-mismatch"},
		{"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)", "unknown-authority"},
		{"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: CA cert does not include key usage extension (_ssl.c:1000)", "ca-key-usage"},
		{"[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", "https-to-http"},
		{"[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)", "no-client-certificate"},
		{"[SSL] PEM lib (_ssl.c:3900)", "encrypted-key"},
		// Node.
		{"Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list: 10.10.10.20", "hostname-mismatch"},
		{"Error: self-signed certificate in certificate chain code: 'SELF_SIGNED_CERT_IN_CHAIN'", "unknown-authority"},
		{"Error: certificate has expired code: 'CERT_HAS_EXPIRED'", "expired"},
		{"connect ECONNREFUSED 127.0.0.1:2376", "cannot-connect"},
	}
	for _, tt := range tests {
		exps := Explain(tt.message)
		if len(exps) == 0 {
			t.Errorf("Explain(%q) matched nothing, want %s", tt.message, tt.want)
			continue
		}
		if exps[0].ID != tt.want {
			var ids []string
			for _, e := range exps {
				ids = append(ids, e.ID)
			}
			t.Errorf("Explain(%q) first match = %s (all %v), want %s", tt.message, exps[0].ID, ids, tt.want)
		}
		if len(exps[0].Causes) == 0 || len(exps[0].Checks) == 0 {
			t.Errorf("Explain(%q): explanation %s has no causes or checks", tt.message, exps[0].ID)
		}
	}
}

func TestExplainNoMatch(t *testing.T) {
	if exps := Explain("everything is fine"); len(exps) != 0 {
		t.Errorf("Explain of an unrelated message = %+v, want nothing", exps)
	}
}

func TestExplainRulesHaveText(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range explainRules {
		if seen[r.id] {
			t.Errorf("rule id %q is used twice", r.id)
		}
		seen[r.id] = true
		if r.summary == "" || len(r.causes) == 0 || len(r.checks) == 0 || len(r.patterns) == 0 {
			t.Errorf("rule %q lacks a summary, cause, check or pattern", r.id)
		}
	}
}

// FuzzExplain feeds pasted text to the matcher, which must not panic and
// must return only text that occurs in the bounded input.
func FuzzExplain(f *testing.F) {
	f.Add("x509: certificate relies on legacy Common Name field, use SANs instead")
	f.Add("PKIX path building failed")
	f.Add("malformed HTTP response \"\\x15\\x03\\x01\"")
	f.Add(strings.Repeat("Hostname ", 1000) + "not verified")
	f.Add("\xff\xfe invalid utf-8 certificate required")
	f.Fuzz(func(t *testing.T, message string) {
		bounded := message
		if len(bounded) > maxExplainInput {
			bounded = bounded[:maxExplainInput]
		}
		for _, e := range Explain(message) {
			if e.Matched == "" || !strings.Contains(bounded, e.Matched) {
				t.Fatalf("match %q of rule %s does not occur in the input", e.Matched, e.ID)
			}
			if utf8.ValidString(bounded) && !utf8.ValidString(e.Matched) {
				t.Fatalf("match %q of valid UTF-8 input is not valid UTF-8", e.Matched)
			}
		}
	})
}

// The dockmoat gateway rejects a revoked client certificate in
// VerifyConnection, for which crypto/tls sends alert 42, so a revoked
// client sees "bad certificate". The explanation must name revocation.
func TestExplainBadCertificateNamesRevocation(t *testing.T) {
	exps := Explain(`error during connect: Get "https://gw.example.test:2376/v1.41/version": remote error: tls: bad certificate`)
	if len(exps) == 0 {
		t.Fatal("Explain matched nothing")
	}
	text := strings.Join(append(exps[0].Causes, exps[0].Checks...), "\n")
	for _, want := range []string{"revoked", "dockmoat pki list"} {
		if !strings.Contains(text, want) {
			t.Errorf("causes and checks of %q = %q, want them to contain %q", exps[0].ID, text, want)
		}
	}
}
