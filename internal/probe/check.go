package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"time"
)

// Verdict is the classification of an endpoint by what it accepts.
type Verdict string

// Verdicts, from worst to best.
const (
	// VerdictPlainAPI is the Docker API over plain HTTP: anyone who reaches
	// the port controls the daemon, which is root on its host.
	VerdictPlainAPI Verdict = "plain-http-api"
	// VerdictTLSNoClientAuth is the Docker API over TLS that serves a
	// client without a certificate, as dockerd with --tlsverify=false
	// does. It is as open as VerdictPlainAPI.
	VerdictTLSNoClientAuth Verdict = "tls-without-client-auth"
	// VerdictMutualTLS means the server rejected a client without a
	// certificate.
	VerdictMutualTLS Verdict = "mutual-tls-required"
	// VerdictNotDocker means the port accepted a connection but did not
	// respond as a Docker API.
	VerdictNotDocker Verdict = "not-docker-api"
	// VerdictClosed means the connection was refused.
	VerdictClosed Verdict = "closed"
	// VerdictFiltered means the connection timed out or the host was
	// unreachable, as behind a firewall that drops packets. A network
	// that this host has no route to is VerdictError instead.
	VerdictFiltered Verdict = "filtered"
	// VerdictError means checking failed, for example because the host
	// name did not resolve.
	VerdictError Verdict = "error"
)

// Exposed reports whether anyone who reaches the endpoint controls Docker.
func (v Verdict) Exposed() bool {
	return v == VerdictPlainAPI || v == VerdictTLSNoClientAuth
}

// Describe returns a one-line explanation of v for people.
func (v Verdict) Describe() string {
	switch v {
	case VerdictPlainAPI:
		return "plain HTTP Docker API: anyone who reaches this port is root on the host"
	case VerdictTLSNoClientAuth:
		return "TLS without client authentication: any client is accepted, so anyone who reaches this port is root on the host"
	case VerdictMutualTLS:
		return "mutual TLS required: a client without a certificate is rejected"
	case VerdictNotDocker:
		return "not a Docker API"
	case VerdictClosed:
		return "closed: the connection was refused"
	case VerdictFiltered:
		return "filtered: no answer to the connection attempt"
	default:
		return "checking failed"
	}
}

// Result is the outcome of checking one endpoint.
type Result struct {
	Endpoint
	Address string  `json:"address"`
	Verdict Verdict `json:"verdict"`
	Exposed bool    `json:"exposed"`
	// Reason is the evidence for the verdict, such as the alert the server
	// sent.
	Reason string      `json:"reason,omitempty"`
	Docker *DockerInfo `json:"docker,omitempty"`
	TLS    *TLSInfo    `json:"tls,omitempty"`
	// HTTP is the status line and Server header of a non-Docker response.
	HTTP string `json:"http,omitempty"`
}

// DockerInfo is the daemon description from GET /_ping and GET /version.
type DockerInfo struct {
	Version       string `json:"version,omitempty"`
	APIVersion    string `json:"apiVersion,omitempty"`
	MinAPIVersion string `json:"minApiVersion,omitempty"`
	OS            string `json:"os,omitempty"`
	Arch          string `json:"arch,omitempty"`
	KernelVersion string `json:"kernelVersion,omitempty"`
}

// TLSInfo is the outcome of the TLS handshake.
type TLSInfo struct {
	// Version and CipherSuite are empty when the handshake did not finish.
	Version     string `json:"version,omitempty"`
	CipherSuite string `json:"cipherSuite,omitempty"`
	// ClientCertRequested is true when the server sent a
	// CertificateRequest. A server may request a certificate and still
	// accept a client without one.
	ClientCertRequested bool `json:"clientCertRequested"`
	// AcceptableCAs are the subjects of the CAs the server named in its
	// CertificateRequest.
	AcceptableCAs []string `json:"acceptableCAs,omitempty"`
	// Certificates is the chain the server sent, leaf first.
	Certificates []CertInfo `json:"certificates,omitempty"`
	// WeakVersions lists protocol versions older than TLS 1.2 that the
	// server accepted.
	WeakVersions []string `json:"weakVersions,omitempty"`

	peer []*x509.Certificate
}

// PeerCertificates returns the parsed chain the server sent, leaf first.
func (t *TLSInfo) PeerCertificates() []*x509.Certificate { return t.peer }

// Options tune Check.
type Options struct {
	// Timeout bounds each connection, including the handshake and the
	// response. The default is 5 seconds.
	Timeout time.Duration
	// Now is the time certificate expiry is judged against. The default
	// is the current time.
	Now time.Time
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 5 * time.Second
	}
	return o.Timeout
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// userAgent is sent with every request, so a daemon's log shows who asked.
const userAgent = "dockmoat-check"

// maxBody bounds how much of a response body Check reads, and
// maxResponse the whole response with its headers, so a hostile server
// cannot make Check buffer without limit.
const (
	maxBody     = 64 << 10
	maxResponse = 256 << 10
)

// Check classifies one endpoint. It opens a few TCP connections and sends
// nothing but TLS handshakes, GET /_ping and GET /version, so it changes
// nothing on the target.
func Check(ctx context.Context, ep Endpoint, opts Options) Result {
	r := Result{Endpoint: ep, Address: ep.Address()}

	conn, err := dial(ctx, r.Address, opts)
	if err != nil {
		r.Verdict, r.Reason = classifyDialError(err)
		return r
	}
	conn.Close()

	hs := handshake(ctx, ep, opts, 0)
	switch {
	case hs.notTLS:
		checkPlain(ctx, &r, opts)
	case hs.info.Version == "" && !hs.info.ClientCertRequested:
		// The server closed or failed before sending a TLS record. It may
		// be a plain HTTP server that drops malformed requests.
		checkPlain(ctx, &r, opts)
		if r.Verdict == VerdictNotDocker && hs.err != nil {
			r.Reason = fmt.Sprintf("neither TLS (%v) nor HTTP (%s)", hs.err, r.Reason)
		}
	default:
		r.TLS = hs.info
		checkTLS(ctx, &r, hs, opts)
		r.TLS.WeakVersions = weakVersions(ctx, ep, opts)
	}
	r.Exposed = r.Verdict.Exposed()
	return r
}

func dial(ctx context.Context, address string, opts Options) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.timeout()}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(opts.timeout()))
	return conn, nil
}

func classifyDialError(err error) (Verdict, string) {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return VerdictClosed, "connection refused"
	case errors.As(err, &dnsErr):
		return VerdictError, err.Error()
	case errors.As(err, &netErr) && netErr.Timeout():
		return VerdictFiltered, "connection timed out"
	case errors.Is(err, syscall.ENETUNREACH):
		// No packet left this host, so nothing is known about the port.
		return VerdictError, err.Error() + ": this host has no route to the target, so check it from a host that can reach it"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return VerdictFiltered, err.Error()
	default:
		return VerdictError, err.Error()
	}
}

// handshakeResult is the outcome of one TLS handshake without a client
// certificate.
type handshakeResult struct {
	conn   *tls.Conn
	info   *TLSInfo
	err    error
	notTLS bool
	alert  int
}

// handshake performs a TLS handshake that sends an empty certificate when
// asked for one. version, when not 0, pins the protocol version. The
// caller closes hs.conn when it is set.
func handshake(ctx context.Context, ep Endpoint, opts Options, version uint16) handshakeResult {
	hs := handshakeResult{info: &TLSInfo{}}
	raw, err := dial(ctx, ep.Address(), opts)
	if err != nil {
		hs.err = err
		return hs
	}
	cfg := &tls.Config{
		// Check reports on the server's certificate rather than trusting
		// it, and sends no secrets over this connection.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
		GetClientCertificate: func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			hs.info.ClientCertRequested = true
			hs.info.AcceptableCAs = distinguishedNames(req.AcceptableCAs)
			return &tls.Certificate{}, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			hs.info.Version = tls.VersionName(cs.Version)
			hs.info.peer = cs.PeerCertificates
			hs.info.Certificates = describeChain(cs.PeerCertificates, opts.now())
			return nil
		},
	}
	if net.ParseIP(ep.Host) == nil {
		cfg.ServerName = ep.Host
	}
	if version != 0 {
		cfg.MinVersion, cfg.MaxVersion = version, version
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		hs.err = err
		var rh tls.RecordHeaderError
		hs.notTLS = errors.As(err, &rh)
		hs.alert = remoteAlert(err)
		return hs
	}
	hs.info.CipherSuite = tls.CipherSuiteName(conn.ConnectionState().CipherSuite)
	hs.conn = conn
	return hs
}

// remoteAlert returns the TLS alert number the peer sent, or 0. crypto/tls
// returns a received alert as a *net.OpError with Op "remote error" whose
// Err is an unexported uint8 type, so the number is read by reflection.
func remoteAlert(err error) int {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0
	}
	return int(v.Uint())
}

// TLS alerts (RFC 8446 section 6.2) that a server sends when it rejects
// the client's certificate or its absence.
const (
	alertHandshakeFailure    = 40
	alertBadCertificate      = 42
	alertCertificateUnknown  = 46
	alertUnknownCA           = 48
	alertCertificateRequired = 116
)

func rejectsClient(alert int) bool {
	switch alert {
	case alertHandshakeFailure, alertBadCertificate, alertCertificateUnknown,
		alertUnknownCA, alertCertificateRequired:
		return true
	}
	return false
}

func alertReason(alert int) string {
	names := map[int]string{
		alertHandshakeFailure:    "handshake failure",
		alertBadCertificate:      "bad certificate",
		alertCertificateUnknown:  "certificate unknown",
		alertUnknownCA:           "unknown CA",
		alertCertificateRequired: "certificate required",
	}
	return fmt.Sprintf("the server sent TLS alert %d (%s) to a client without a certificate", alert, names[alert])
}

func checkTLS(ctx context.Context, r *Result, hs handshakeResult, opts Options) {
	if hs.conn == nil {
		switch {
		case rejectsClient(hs.alert):
			r.Verdict, r.Reason = VerdictMutualTLS, alertReason(hs.alert)
		case hs.info.ClientCertRequested && isClosed(hs.err):
			r.Verdict = VerdictMutualTLS
			r.Reason = "the server requested a client certificate and closed the connection without one"
		default:
			r.Verdict, r.Reason = VerdictError, fmt.Sprintf("TLS handshake failed: %v", hs.err)
		}
		return
	}
	defer hs.conn.Close()

	resp, body, err := get(hs.conn, r.Host, "/_ping")
	if err != nil {
		// In TLS 1.3 the client finishes its handshake before the server
		// has checked the client's certificate, so a rejection arrives as
		// an alert on the first read.
		alert := remoteAlert(err)
		switch {
		case rejectsClient(alert):
			r.Verdict, r.Reason = VerdictMutualTLS, alertReason(alert)
		case hs.info.ClientCertRequested && isClosed(err):
			r.Verdict = VerdictMutualTLS
			r.Reason = "the server requested a client certificate and closed the connection after the handshake"
		default:
			r.Verdict, r.Reason = VerdictNotDocker, fmt.Sprintf("no HTTP answer over TLS: %v", err)
		}
		return
	}
	if !isDocker(resp, body) {
		r.Verdict, r.HTTP = VerdictNotDocker, describeHTTP(resp)
		r.Reason = "GET /_ping over TLS did not answer like Docker"
		return
	}
	r.Verdict = VerdictTLSNoClientAuth
	r.Reason = "GET /_ping over TLS without a client certificate answered " + resp.Status
	if hs.info.ClientCertRequested {
		r.Reason += ", although the server requested a certificate"
	}
	r.Docker = dockerInfo(resp)
	if again := handshake(ctx, r.Endpoint, opts, 0); again.conn != nil {
		defer again.conn.Close()
		readVersion(again.conn, r)
	}
}

func checkPlain(ctx context.Context, r *Result, opts Options) {
	conn, err := dial(ctx, r.Address, opts)
	if err != nil {
		r.Verdict, r.Reason = classifyDialError(err)
		return
	}
	defer conn.Close()
	resp, body, err := get(conn, r.Host, "/_ping")
	if err != nil {
		r.Verdict, r.Reason = VerdictNotDocker, fmt.Sprintf("no HTTP answer: %v", err)
		return
	}
	if !isDocker(resp, body) {
		r.Verdict, r.HTTP = VerdictNotDocker, describeHTTP(resp)
		r.Reason = "GET /_ping did not answer like Docker"
		return
	}
	r.Verdict = VerdictPlainAPI
	r.Reason = "GET /_ping over plain HTTP answered " + resp.Status
	r.Docker = dockerInfo(resp)
	if c, err := dial(ctx, r.Address, opts); err == nil {
		defer c.Close()
		readVersion(c, r)
	}
}

// get sends GET path over conn and reads the response, with at most
// maxBody bytes of body.
func get(conn net.Conn, host, path string) (*http.Response, []byte, error) {
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		path, host, userAgent)
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, maxResponse)), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp, body, nil
}

// isDocker reports whether a /_ping response came from the Docker Engine
// API, which sets an Api-Version header on every response.
func isDocker(resp *http.Response, body []byte) bool {
	if resp.Header.Get("Api-Version") != "" {
		return true
	}
	return strings.HasPrefix(resp.Header.Get("Server"), "Docker/") &&
		strings.TrimSpace(string(body)) == "OK"
}

func dockerInfo(resp *http.Response) *DockerInfo {
	info := &DockerInfo{APIVersion: resp.Header.Get("Api-Version"), OS: resp.Header.Get("Ostype")}
	if server, ok := strings.CutPrefix(resp.Header.Get("Server"), "Docker/"); ok {
		info.Version, _, _ = strings.Cut(server, " ")
	}
	return info
}

func readVersion(conn net.Conn, r *Result) {
	resp, body, err := get(conn, r.Host, "/version")
	if err != nil || resp.StatusCode != http.StatusOK {
		return
	}
	var v struct {
		Version, APIVersion, MinAPIVersion, Os, Arch, KernelVersion string
	}
	if json.Unmarshal(body, &v) != nil {
		return
	}
	r.Docker = &DockerInfo{
		Version: v.Version, APIVersion: v.APIVersion, MinAPIVersion: v.MinAPIVersion,
		OS: v.Os, Arch: v.Arch, KernelVersion: v.KernelVersion,
	}
}

func describeHTTP(resp *http.Response) string {
	s := resp.Proto + " " + resp.Status
	if server := resp.Header.Get("Server"); server != "" {
		s += ", Server: " + server
	}
	return s
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// weakVersions returns the protocol versions before TLS 1.2 that the
// server completes a ServerHello with. A server that requests a client
// certificate rejects the empty one later in the handshake, so a version
// counts as accepted once the server's certificate has arrived.
func weakVersions(ctx context.Context, ep Endpoint, opts Options) []string {
	var weak []string
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		hs := handshake(ctx, ep, opts, v)
		if hs.conn != nil {
			hs.conn.Close()
		}
		if hs.info.Version == tls.VersionName(v) {
			weak = append(weak, hs.info.Version)
		}
	}
	return weak
}
