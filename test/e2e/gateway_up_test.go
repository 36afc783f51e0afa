package e2e

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// TestUpAddsNamesToGatewayCert runs up twice on one state directory, the
// second time with a new --dns and --ip, and checks that the gateway's
// certificate then covers them and the old one is revoked.
func TestUpAddsNamesToGatewayCert(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	stateDir := t.TempDir()

	first, admin := startUp(t, d, stateDir)
	first.stop(t)
	oldCert := readPEMCert(t, filepath.Join(stateDir, "servers", "gateway", "server-cert.pem"))

	second := startGatewayProcess(t, "up", d, stateDir, "--dns", "docker.example.test", "--ip", "127.0.0.2")
	second.waitReady(t, admin)
	second.waitLog(t, 10*time.Second, "reissuing it")
	newCert := readPEMCert(t, filepath.Join(stateDir, "servers", "gateway", "server-cert.pem"))

	if newCert.SerialNumber.Cmp(oldCert.SerialNumber) == 0 {
		t.Fatalf("server certificate serial unchanged (%x), want a new certificate", newCert.SerialNumber)
	}
	if !slices.Contains(newCert.DNSNames, "docker.example.test") {
		t.Errorf("DNS SANs = %v, want docker.example.test among them", newCert.DNSNames)
	}
	if !slices.ContainsFunc(newCert.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.2")) }) {
		t.Errorf("IP SANs = %v, want 127.0.0.2 among them", newCert.IPAddresses)
	}
	for _, name := range oldCert.DNSNames {
		if !slices.Contains(newCert.DNSNames, name) {
			t.Errorf("reissued certificate lost DNS name %q of the old one", name)
		}
	}

	list := mustDockmoat(t, "pki", "list", "--dir", stateDir)
	oldSerial := strings.ToLower(oldCert.SerialNumber.Text(16))
	var oldLine string
	for _, line := range strings.Split(list.stdout, "\n") {
		if strings.Contains(line, oldSerial) {
			oldLine = line
		}
	}
	if !strings.Contains(oldLine, "revoked") {
		t.Errorf("pki list line for old serial %s = %q, want it revoked\n%s", oldSerial, oldLine, list.stdout)
	}
}
