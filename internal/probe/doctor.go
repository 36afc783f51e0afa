package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of Diagnose.
type Report struct {
	Client ClientConfig `json:"client"`
	// Endpoint is the Check result for the client's host, nil for hosts
	// that are not TCP.
	Endpoint *Result   `json:"endpoint,omitempty"`
	Findings []Finding `json:"findings"`
	// ClientFails is true when any finding has SeverityError.
	ClientFails bool `json:"clientFails"`
	// Unchecked is true for ssh://, npipe:// and fd:// hosts, which
	// Diagnose cannot connect to the way the client does, so a false
	// ClientFails does not show that the client connects.
	Unchecked bool `json:"unchecked,omitempty"`
}

// Diagnose checks what cfg would do: its files, the endpoint, the client's
// own handshake and GET /_ping, and the server certificate's names against
// the host the client dials. For a unix socket host it connects and sends
// GET /_ping only. envFindings come from ResolveClient.
func Diagnose(ctx context.Context, cfg ClientConfig, envFindings []Finding, opts Options) (rep Report) {
	rep.Client = cfg
	var fs findings
	fs.add(envFindings...)
	defer func() {
		rep.Findings = fs.list
		for _, f := range fs.list {
			if f.Severity == SeverityError {
				rep.ClientFails = true
			}
		}
	}()

	ep, err := tcpEndpoint(cfg)
	if err != nil {
		fs.errorf("host", "set DOCKER_HOST=tcp://HOST:2376", "%v", err)
		return rep
	}
	if ep == nil {
		if path, ok := unixSocketPath(cfg.Host); ok {
			fs.add(unixAttempt(ctx, cfg.Host, path, opts))
			return rep
		}
		fs.note(SeverityInfo, "host", "", "%s is not a TCP endpoint, so there is no TLS to check", cfg.Host)
		rep.Unchecked = true
		return rep
	}

	schemeOK := true
	if f, bad := checkURLScheme(cfg, *ep); bad {
		fs.add(f)
		schemeOK = false
	}
	if cfg.TLS {
		if f, missing := checkCAExists(cfg); missing {
			// The client stops before it dials. A handshake here would fail
			// for lack of a CA, which is not the client's failure, so only
			// the endpoint is checked.
			fs.add(f)
			res := Check(ctx, *ep, opts)
			rep.Endpoint = &res
			fs.add(endpointOnly(endpointFindings(res, cfg, nil))...)
			return rep
		}
	}

	var m *clientMaterial
	if cfg.TLS {
		var fileFindings []Finding
		fileFindings, m = checkClientFiles(cfg.Files, opts.now())
		fs.add(fileFindings...)
	}
	res := Check(ctx, *ep, opts)
	rep.Endpoint = &res
	fs.add(endpointFindings(res, cfg, m)...)
	if res.TLS != nil && len(res.TLS.peer) > 0 {
		fs.add(serverCertFindings(res, cfg, m, opts.now())...)
	}
	if reachable(res.Verdict) && schemeOK {
		fs.add(clientAttempt(ctx, *ep, cfg, m, opts))
	}
	return rep
}

// checkURLScheme reports an http:// or https:// host. docker CLI 28.2.2
// accepts only tcp://, unix://, ssh://, npipe:// and fd:// and stops with
// "invalid bind address format" on any other scheme, although
// docker-maven-plugin's <dockerHost> takes https://.
func checkURLScheme(cfg ClientConfig, ep Endpoint) (Finding, bool) {
	u, err := url.Parse(cfg.Host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return Finding{}, false
	}
	fixed := "tcp://" + ep.Address()
	fix := "use " + fixed + " in " + cfg.Source
	if cfg.Source == "DOCKER_HOST" {
		fix = "export DOCKER_HOST=" + fixed
	}
	return Finding{Severity: SeverityError, Subject: "host", Fix: fix,
		Message: fmt.Sprintf("%s from %s uses %s://, which the docker CLI rejects with "+
			"\"invalid bind address format: %s\"; it accepts tcp://, unix://, ssh://, npipe:// and fd://",
			cfg.Host, cfg.Source, u.Scheme, cfg.Host)}, true
}

// checkCAExists reports a missing ca.pem. The docker CLI 28.2.2 stops
// before it connects when ca.pem is missing, but goes on without a client
// certificate when only cert.pem or key.pem is missing.
func checkCAExists(cfg ClientConfig) (Finding, bool) {
	_, err := os.Stat(cfg.Files.CA)
	if !errors.Is(err, os.ErrNotExist) {
		return Finding{}, false
	}
	dir := filepath.Dir(cfg.Files.CA)
	problem := cfg.Files.CA + " does not exist"
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		problem = "the folder " + dir + " does not exist"
	}
	return Finding{Severity: SeverityError, Subject: "ca.pem",
		Fix: "point DOCKER_CERT_PATH at the folder with ca.pem, cert.pem and key.pem, " +
			"or write one: dockmoat pki export NAME --format dir --out " + dir,
		Message: fmt.Sprintf("%s, so the docker CLI stops with \"open %s: no such file or directory\" "+
			"before it connects", problem, cfg.Files.CA)}, true
}

// endpointOnly keeps the findings about the endpoint itself and drops the
// ones about the client's files.
func endpointOnly(list []Finding) []Finding {
	var endpoint []Finding
	for _, f := range list {
		if f.Subject == "endpoint" {
			endpoint = append(endpoint, f)
		}
	}
	return endpoint
}

func reachable(v Verdict) bool {
	return v == VerdictPlainAPI || v == VerdictTLSNoClientAuth || v == VerdictMutualTLS
}

// tcpEndpoint returns the endpoint of a tcp:// host, or nil for other
// schemes. A missing port is 2376 with TLS and 2375 without, as in the
// docker CLI.
func tcpEndpoint(cfg ClientConfig) (*Endpoint, error) {
	if cfg.Host == "" {
		return nil, fmt.Errorf("no Docker host is set (source: %s)", cfg.Source)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("invalid Docker host %q from %s: %v", cfg.Host, cfg.Source, err)
	}
	switch u.Scheme {
	case "tcp", "http", "https":
	case "unix", "npipe", "ssh", "fd":
		return nil, nil
	default:
		return nil, fmt.Errorf("invalid Docker host %q from %s: unknown scheme %q", cfg.Host, cfg.Source, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("invalid Docker host %q from %s: no host name", cfg.Host, cfg.Source)
	}
	port := 2375
	if cfg.TLS {
		port = 2376
	}
	if u.Port() != "" {
		if port, err = strconv.Atoi(u.Port()); err != nil {
			return nil, fmt.Errorf("invalid port in Docker host %q from %s", cfg.Host, cfg.Source)
		}
	}
	return &Endpoint{Target: cfg.Host, Host: u.Hostname(), Port: port}, nil
}

func endpointFindings(res Result, cfg ClientConfig, m *clientMaterial) []Finding {
	var fs findings
	addr := res.Address
	daemonConfig := "configure dockerd for mutual TLS: dockmoat daemon-config --listen tcp://0.0.0.0:2376"
	switch res.Verdict {
	case VerdictClosed, VerdictFiltered, VerdictError:
		fix := "check DOCKER_HOST, and that dockerd listens there: dockmoat check " + addr
		if res.Port == 2375 {
			// docker:dind 19.03 and later serves TLS on 2376 and writes the
			// client bundle to /certs/client.
			fix += fmt.Sprintf("; for docker:dind use TLS on 2376: export DOCKER_HOST=tcp://%s "+
				"DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/certs/client", net.JoinHostPort(res.Host, "2376"))
		}
		fs.errorf("endpoint", fix,
			"cannot connect to %s: %s; clients print \"Cannot connect to the Docker daemon at %s\"",
			addr, res.Reason, cfg.Host)
	case VerdictNotDocker:
		fs.errorf("endpoint", "check the port in DOCKER_HOST", "%s answers, but not as the Docker API: %s %s",
			addr, res.Reason, res.HTTP)
	case VerdictPlainAPI:
		if cfg.TLS {
			fs.errorf("endpoint", "point DOCKER_HOST at the daemon's TLS port, or "+daemonConfig,
				"%s serves plain HTTP while the client speaks TLS, so the docker CLI fails with "+
					"\"http: server gave HTTP response to HTTPS client\"", addr)
		}
		fs.warnf("endpoint", daemonConfig, "%s serves the Docker API over plain HTTP: anyone who reaches it is root on the host", addr)
	case VerdictTLSNoClientAuth:
		fs.warnf("endpoint", "start dockerd with --tlsverify (\"tlsverify\": true in daemon.json), or "+daemonConfig,
			"%s accepts TLS clients without a certificate, as dockerd with --tlsverify=false does: "+
				"anyone who reaches it is root on the host", addr)
	case VerdictMutualTLS:
		fs.okf("endpoint", "%s requires a client certificate (%s)", addr, res.Reason)
		if cfg.TLS && (m == nil || m.keyPair == nil) {
			fs.errorf("cert.pem", "issue one: dockmoat pki issue client NAME --out DIR, then export DOCKER_CERT_PATH=DIR",
				"%s requires a client certificate but the client has no usable one in %s, so dockerd "+
					"logs \"tls: client didn't provide a certificate\" and the client sees \"bad certificate\" "+
					"or \"certificate required\" (TLS alert 42 or 116)", addr, filepath.Dir(cfg.Files.Cert))
		}
	}
	if res.TLS != nil && len(res.TLS.WeakVersions) > 0 {
		fs.warnf("endpoint", "", "%s accepts %s, which are deprecated (RFC 8996)", addr, strings.Join(res.TLS.WeakVersions, " and "))
	}
	if m != nil && m.leaf != nil && res.TLS != nil && len(res.TLS.AcceptableCAs) > 0 &&
		!slices.Contains(res.TLS.AcceptableCAs, m.leaf.Issuer.String()) {
		fs.errorf("cert.pem", "use a client certificate from a CA the server trusts",
			"%s accepts client certificates issued by %s, but %s is issued by %s",
			addr, strings.Join(res.TLS.AcceptableCAs, "; "), cfg.Files.Cert, m.leaf.Issuer)
	}
	return fs.list
}

// serverCertFindings compares the server's certificate with the name the
// client dials and with the client's ca.pem.
func serverCertFindings(res Result, cfg ClientConfig, m *clientMaterial, now time.Time) []Finding {
	var fs findings
	leaf := res.TLS.peer[0]
	fs.add(checkSAN(leaf, res.Host, res.Port, cfg)...)
	for i, c := range res.TLS.peer {
		subject := "server certificate"
		if i > 0 {
			subject = "server chain"
		}
		for _, f := range checkValidity(subject, "the server's certificate", c, now,
			"renew the server certificate: dockmoat pki renew NAME, then restart dockerd") {
			if f.Severity != SeverityOK {
				fs.add(f)
			}
		}
	}
	if m == nil || m.roots == nil || !cfg.TLSVerify {
		return fs.list
	}
	inter := x509.NewCertPool()
	for _, c := range res.TLS.peer[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: m.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
		fs.okf("server certificate", "the server's certificate chains to %s", cfg.Files.CA)
	case errors.As(err, &unknown):
		fs.errorf("ca.pem", "use the CA that issued the server's certificate as "+cfg.Files.CA,
			"the server's certificate is issued by %s, which is not in %s; clients fail with "+
				"\"x509: certificate signed by unknown authority\" (Java: \"PKIX path building failed\")",
			leaf.Issuer, cfg.Files.CA)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		// checkValidity has named the expired certificate.
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		fs.errorf("server certificate", "replace it with one that has serverAuth: for dockerd's own TLS, "+
			"dockmoat daemon-config --san NAME --reissue (then restart dockerd); for the dockmoat gateway, "+
			"dockmoat up, which issues its certificate \"gateway\" with serverAuth",
			"the server's certificate has no serverAuth extended key usage: %v", err)
	default:
		fs.errorf("server certificate", "", "the server's certificate does not verify against %s: %v", cfg.Files.CA, err)
	}
	return fs.list
}

// checkSAN compares host, the name the client dials, with the SANs of the
// server certificate.
func checkSAN(leaf *x509.Certificate, host string, port int, cfg ClientConfig) []Finding {
	var fs findings
	sev := SeverityError
	if !cfg.TLSVerify {
		sev = SeverityWarning
	}
	err := leaf.VerifyHostname(host)
	if err == nil {
		fs.okf("server certificate", "the server's certificate is valid for %s (%s)", host, sanList(leaf))
		return fs.list
	}
	fix := reissueFix(leaf, host, port)
	hasSAN := len(leaf.DNSNames) > 0 || len(leaf.IPAddresses) > 0 || len(leaf.URIs) > 0 || len(leaf.EmailAddresses) > 0
	if !hasSAN {
		fs.note(sev, "server certificate", fix,
			"the server's certificate (%s) has no subjectAltName, only a subject CN; the docker CLI and "+
				"other Go clients reject it with \"x509: certificate relies on legacy Common Name field, "+
				"use SANs instead\", and the client dials %s", leaf.Subject, host)
		return fs.list
	}
	if name := firstSAN(leaf); name != "" {
		fix += "; or dial a name it has: DOCKER_HOST=tcp://" + net.JoinHostPort(name, strconv.Itoa(port))
	}
	fs.note(sev, "server certificate", fix,
		"the client dials %s, but the server's certificate is valid only for %s: %v "+
			"(Java: \"Hostname %s not verified\")", host, sanList(leaf), err, host)
	return fs.list
}

// reissueFix returns the commands that add host to the server certificate.
// Doctor cannot tell the gateway from dockerd, so it names both: dockmoat up
// reissues the certificate "gateway" with the old names plus --dns and --ip.
// daemon-config --reissue issues "dockerd" with only the --san names given,
// so the fix repeats every name the certificate has.
func reissueFix(leaf *x509.Certificate, host string, port int) string {
	upFlag := "--dns " + host
	if net.ParseIP(host) != nil {
		upFlag = "--ip " + host
	}
	var sans []string
	for _, name := range leaf.DNSNames {
		sans = append(sans, "--san "+name)
	}
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, "--san "+ip.String())
	}
	sans = append(sans, "--san "+host)
	return fmt.Sprintf("add %s to the server certificate on port %d; for the dockmoat gateway, restart it with "+
		"dockmoat up %s (reissues certificate \"gateway\"); for dockerd's own TLS, run dockmoat daemon-config %s "+
		"--reissue with its other flags as before, then restart dockerd", host, port, upFlag, strings.Join(sans, " "))
}

// firstSAN returns the certificate's first DNS name, else its first IP
// address, else "".
func firstSAN(leaf *x509.Certificate) string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	if len(leaf.IPAddresses) > 0 {
		return leaf.IPAddresses[0].String()
	}
	return ""
}

// unixSocketPath returns the socket path of a unix:// Docker host.
func unixSocketPath(host string) (string, bool) {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return "", false
	}
	return u.Path, true
}

// unixAttempt connects to the unix socket at path, as the client would for
// host, and sends GET /_ping.
func unixAttempt(ctx context.Context, host, path string, opts Options) Finding {
	d := net.Dialer{Timeout: opts.timeout()}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Finding{Severity: SeverityError, Subject: "client",
			Fix: "start dockerd, or set DOCKER_HOST to the socket it serves",
			Message: fmt.Sprintf("cannot connect to %s: %v; clients print \"Cannot connect to the Docker daemon at %s. "+
				"Is the docker daemon running?\"", path, err, host)}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(opts.timeout()))
	resp, body, err := get(conn, "docker", "/_ping")
	if err != nil {
		return Finding{Severity: SeverityError, Subject: "client",
			Message: fmt.Sprintf("GET /_ping on %s failed: %v", path, err)}
	}
	if !isDocker(resp, body) {
		return Finding{Severity: SeverityError, Subject: "client",
			Message: fmt.Sprintf("GET /_ping on %s returned %s, not a Docker answer", path, resp.Status)}
	}
	return Finding{Severity: SeverityOK, Subject: "client",
		Message: fmt.Sprintf("the client's connection to %s and GET /_ping succeeded (%s, API %s)",
			path, resp.Status, resp.Header.Get("Api-Version"))}
}

// clientAttempt connects as the client would and sends GET /_ping.
func clientAttempt(ctx context.Context, ep Endpoint, cfg ClientConfig, m *clientMaterial, opts Options) Finding {
	raw, err := dial(ctx, ep.Address(), opts)
	if err != nil {
		return Finding{Severity: SeverityError, Subject: "client", Message: fmt.Sprintf("the client cannot connect: %v", err)}
	}
	defer raw.Close()
	conn := raw
	if cfg.TLS {
		tc := tls.Client(raw, clientTLSConfig(ep, cfg, m))
		if err := tc.HandshakeContext(ctx); err != nil {
			return Finding{Severity: SeverityError, Subject: "client",
				Message: fmt.Sprintf("the client's TLS handshake with %s failed: %v", ep.Address(), err)}
		}
		conn = tc
	}
	resp, body, err := get(conn, ep.Host, "/_ping")
	if err != nil {
		return Finding{Severity: SeverityError, Subject: "client",
			Message: fmt.Sprintf("GET /_ping as the client failed: %v", err)}
	}
	if strings.Contains(string(body), "Client sent an HTTP request to an HTTPS server") {
		return Finding{Severity: SeverityError, Subject: "client",
			Fix: fmt.Sprintf("export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=%s", filepath.Dir(cfg.Files.CA)),
			Message: fmt.Sprintf("%s speaks TLS, but the client sends plain HTTP, so the daemon answers "+
				"\"%s %s\"", ep.Address(), resp.Status, strings.TrimSpace(string(body)))}
	}
	if !isDocker(resp, body) {
		return Finding{Severity: SeverityError, Subject: "client",
			Message: fmt.Sprintf("GET /_ping as the client returned %s, not a Docker answer", resp.Status)}
	}
	return Finding{Severity: SeverityOK, Subject: "client",
		Message: fmt.Sprintf("the client's connection and GET /_ping succeeded (%s, API %s)",
			resp.Status, resp.Header.Get("Api-Version"))}
}

func clientTLSConfig(ep Endpoint, cfg ClientConfig, m *clientMaterial) *tls.Config {
	c := &tls.Config{ServerName: ep.Host, MinVersion: tls.VersionTLS12}
	if m != nil {
		c.RootCAs = m.roots
		if m.keyPair != nil {
			c.Certificates = []tls.Certificate{*m.keyPair}
		}
	}
	if !cfg.TLSVerify {
		// The docker CLI with DOCKER_TLS and without DOCKER_TLS_VERIFY
		// encrypts without checking the server, and so does this attempt.
		c.InsecureSkipVerify = true
	}
	return c
}
