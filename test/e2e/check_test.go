package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/dockmoat/dockmoat/internal/probe"
)

// checkSuite holds the private dockerds that TestCheck probes: one on plain
// TCP, one with --tlsverify=false and one with --tlsverify, all on
// 127.0.0.1.
type checkSuite struct {
	plain, tlsOnly, mutual *dockertest.Daemon
	stateDir               string
	closed                 string
}

func TestCheck(t *testing.T) {
	s := newCheckSuite(t)
	t.Run("plain TCP is exposed", s.testPlain)
	t.Run("tlsverify false is exposed", s.testTLSOnly)
	t.Run("tlsverify is protected", s.testMutual)
	t.Run("closed port", s.testClosed)
	t.Run("exit code of several targets", s.testSeveralTargets)
	t.Run("json output", s.testJSON)
	t.Run("sends only ping and version", s.testRequestsSent)
	t.Run("invalid target", s.testInvalidTarget)
	t.Run("dockmoat gateway is protected", s.testGateway)
}

func newCheckSuite(t *testing.T) *checkSuite {
	s := &checkSuite{stateDir: initTestCA(t)}
	server := issueDockerdCert(t, s.stateDir, "localhost")

	// --debug makes dockerd log every request it serves, which
	// testRequestsSent reads.
	s.plain = dockertest.Start(t, dockertest.Options{TCPAddr: "127.0.0.1:0", ExtraArgs: []string{"--debug"}})
	// dockerd 20.10.24 still requires client certificates with --tls
	// alone when it has a CA (it refuses to start without one), so only an
	// explicit --tlsverify=false makes it accept any client.
	s.tlsOnly = dockertest.Start(t, dockertest.Options{
		TCPAddr: "127.0.0.1:0", TLSCACert: server.CA, TLSCert: server.Cert, TLSKey: server.Key,
		ExtraArgs: []string{"--tlsverify=false"},
	})
	s.mutual = dockertest.Start(t, dockertest.Options{
		TCPAddr: "127.0.0.1:0", TLSCACert: server.CA, TLSCert: server.Cert, TLSKey: server.Key, TLSVerify: true,
	})
	s.closed = freeLoopbackPort(t)
	return s
}

func (s *checkSuite) testPlain(t *testing.T) {
	r := runDockmoat(t, "", "check", s.plain.TCPAddr)
	if r.code != 1 {
		t.Errorf("exit code = %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"EXPOSED", "plain HTTP Docker API", "anyone who reaches this port is root", "docker: version 20.10"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout = %q, want it to contain %q", r.stdout, want)
		}
	}
}

func (s *checkSuite) testTLSOnly(t *testing.T) {
	r := runDockmoat(t, "", "check", s.tlsOnly.TCPAddr)
	if r.code != 1 {
		t.Errorf("exit code = %d, want 1\nstdout: %s", r.code, r.stdout)
	}
	for _, want := range []string{"EXPOSED", "TLS without client authentication", "IP:127.0.0.1", "DNS:localhost",
		"ECDSA P-256", "issuer CN=dockmoat test CA", "client certificate requested: false"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout = %q, want it to contain %q", r.stdout, want)
		}
	}
}

func (s *checkSuite) testMutual(t *testing.T) {
	r := runDockmoat(t, "", "check", s.mutual.TCPAddr)
	if r.code != 0 {
		t.Errorf("exit code = %d, want 0\nstdout: %s", r.code, r.stdout)
	}
	for _, want := range []string{"protected", "mutual TLS required", "accepts client certificates from: CN=dockmoat test CA"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout = %q, want it to contain %q", r.stdout, want)
		}
	}
	if strings.Contains(r.stdout, "WEAK") {
		t.Errorf("stdout = %q, want no weak protocol versions from dockerd", r.stdout)
	}
}

func (s *checkSuite) testClosed(t *testing.T) {
	r := runDockmoat(t, "", "check", s.closed)
	if r.code != 0 {
		t.Errorf("exit code = %d, want 0\nstdout: %s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "closed: the connection was refused") {
		t.Errorf("stdout = %q, want the port reported closed", r.stdout)
	}
}

func (s *checkSuite) testSeveralTargets(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		want    int
	}{
		{"protected and closed", []string{s.mutual.TCPAddr, s.closed}, 0},
		{"one exposed among protected", []string{s.mutual.TCPAddr, s.tlsOnly.TCPAddr, s.closed}, 1},
		{"url form", []string{"tcp://" + s.plain.TCPAddr}, 1},
	}
	for _, tt := range tests {
		r := runDockmoat(t, "", append([]string{"check"}, tt.targets...)...)
		if r.code != tt.want {
			t.Errorf("%s: exit code = %d, want %d\nstdout: %s", tt.name, r.code, tt.want, r.stdout)
		}
	}
}

func (s *checkSuite) testJSON(t *testing.T) {
	r := runDockmoat(t, "", "check", "--json", s.plain.TCPAddr, s.tlsOnly.TCPAddr, s.mutual.TCPAddr, s.closed)
	var results []probe.Result
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("stdout is not a JSON array of results: %v\n%s", err, r.stdout)
	}
	want := []probe.Verdict{probe.VerdictPlainAPI, probe.VerdictTLSNoClientAuth, probe.VerdictMutualTLS, probe.VerdictClosed}
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		if results[i].Verdict != w {
			t.Errorf("result %d (%s) verdict = %q, want %q", i, results[i].Address, results[i].Verdict, w)
		}
		if results[i].Exposed != w.Exposed() {
			t.Errorf("result %d exposed = %v, want %v", i, results[i].Exposed, w.Exposed())
		}
	}
	if results[0].Docker == nil || results[0].Docker.APIVersion == "" {
		t.Errorf("plain result has no Docker API version: %+v", results[0].Docker)
	}
}

// testRequestsSent reads the plain daemon's debug log, which names every
// API call, and checks that check sent nothing but GET /_ping and GET
// /version. The test harness itself only pings the daemon.
func (s *checkSuite) testRequestsSent(t *testing.T) {
	runDockmoat(t, "", "check", s.plain.TCPAddr)
	calls := regexp.MustCompile(`Calling (\S+) ([^\s"]+)`).FindAllStringSubmatch(s.plain.Logs(), -1)
	if len(calls) == 0 {
		t.Fatalf("dockerd debug log has no API calls:\n%s", s.plain.Logs())
	}
	sawVersion := false
	for _, c := range calls {
		call := c[1] + " " + c[2]
		switch call {
		case "GET /_ping", "HEAD /_ping":
		case "GET /version":
			sawVersion = true
		default:
			t.Errorf("dockerd served %q, want only GET /_ping and GET /version", call)
		}
	}
	if !sawVersion {
		t.Errorf("dockerd log shows no GET /version from check")
	}
	if got := s.plain.CLI(t).Must(t, "ps", "-aq"); got != "" {
		t.Errorf("containers after check = %q, want none", got)
	}
}

func (s *checkSuite) testInvalidTarget(t *testing.T) {
	for _, target := range []string{"unix:///var/run/docker.sock", "127.0.0.1:99999"} {
		r := runDockmoat(t, "", "check", target)
		if r.code != 2 {
			t.Errorf("check %s: exit code = %d, want 2", target, r.code)
		}
		if !strings.Contains(r.stderr, "invalid") {
			t.Errorf("check %s: stderr = %q, want it to say the target is invalid", target, r.stderr)
		}
	}
}

// testGateway puts dockmoat up in front of the mutual daemon's socket and
// checks the gateway's port.
func (s *checkSuite) testGateway(t *testing.T) {
	gw, _ := startUp(t, s.mutual, t.TempDir())

	r := runDockmoat(t, "", "check", gw.Addr)
	if r.code != 0 {
		t.Errorf("exit code = %d, want 0\nstdout: %s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "mutual TLS required") {
		t.Errorf("stdout = %q, want the gateway reported as mutual TLS required", r.stdout)
	}
}
