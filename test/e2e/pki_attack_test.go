package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// An --out path inside the state directory would let an export or a CRL
// replace ca-key.pem or ca.pem, or one client's bundle overwrite another's.
// Every command that takes --out rejects such a path and writes nothing.
func TestPKIOutInsideStateDir(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "client", "alice", "--key-type", "ecdsa-p256")
	p.must("pki", "issue", "client", "bob", "--key-type", "ecdsa-p256")
	passFile := filepath.Join(t.TempDir(), "p12.pass")
	if err := os.WriteFile(passFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "state-link")
	if err := os.Symlink(p.dir, link); err != nil {
		t.Fatal(err)
	}
	host := "tcp://127.0.0.1:2376"

	tests := []struct {
		name string
		args []string
	}{
		{"p12 over CA key", []string{"pki", "export", "alice", "--format", "p12", "--password-file", passFile, "--host", host, "--out", p.path("ca-key.pem")}},
		{"context over CA cert", []string{"pki", "export", "alice", "--format", "context", "--host", host, "--out", p.path("ca.pem")}},
		{"env over index", []string{"pki", "export", "alice", "--format", "env", "--host", host, "--out", p.path("index.json")}},
		{"dir over other client", []string{"pki", "export", "alice", "--format", "dir", "--host", host, "--out", p.path("clients", "bob")}},
		{"dir through symlink", []string{"pki", "export", "alice", "--format", "dir", "--host", host, "--out", filepath.Join(link, "clients", "bob")}},
		{"crl over CA cert", []string{"pki", "crl", "--out", p.path("ca.pem")}},
		{"issue into other client", []string{"pki", "issue", "client", "carol", "--key-type", "ecdsa-p256", "--out", p.path("clients", "bob")}},
		{"renew into state dir", []string{"pki", "renew", "alice", "--out", p.dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, p.dir)
			r := p.run(tt.args...)
			if r.code != 2 {
				t.Errorf("exit code %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "inside the state directory") {
				t.Errorf("stderr = %q, want it to name the state directory", r.stderr)
			}
			after := snapshot(t, p.dir)
			for path, entry := range before {
				if after[path] != entry {
					t.Errorf("%s changed: got %q, want %q", path, after[path], entry)
				}
			}
			if len(after) != len(before) {
				t.Errorf("state directory has %d entries after the command, want %d", len(after), len(before))
			}
		})
	}
}

// A renewal killed after it wrote the new bundle and before it wrote the
// index leaves a certificate on disk that the index does not list, so
// revoking the name would not revoke it. Export rejects such a bundle
// instead of handing out a certificate that revocation by name would miss.
func TestPKIExportRejectsUnlistedCertificate(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "client", "alice", "--key-type", "ecdsa-p256")
	p.must("pki", "issue", "client", "spare", "--key-type", "ecdsa-p256")

	// spare's certificate and key stand in for the new pair of an
	// interrupted renewal: signed by the CA, matching, and not alice's
	// serial in the index.
	for _, name := range []string{"cert.pem", "key.pem"} {
		data, err := os.ReadFile(p.path("clients", "spare", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.path("clients", "alice", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "alice")
	r := p.run("pki", "export", "alice", "--format", "dir", "--host", "tcp://127.0.0.1:2376", "--out", out)
	if r.code != 1 {
		t.Errorf("exit code %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "serial") {
		t.Errorf("stderr = %q, want it to name the serial mismatch", r.stderr)
	}
	if !strings.Contains(r.stderr, "dockmoat pki renew alice") {
		t.Errorf("stderr = %q, want the renew hint", r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}

// dockerContextName is the pattern the docker CLI (20.10 to 28) checks
// context names against in `docker context create` and `import`.
var dockerContextName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`)

// Client names may contain '@' or be one character long, which docker
// rejects as context names. The printed commands use a name it accepts,
// and `docker context import` succeeds with it.
func TestPKIExportContextName(t *testing.T) {
	p := initPKI(t)
	for _, name := range []string{"alice@example.test", "a"} {
		t.Run(name, func(t *testing.T) {
			p.must("pki", "issue", "client", name, "--key-type", "ecdsa-p256")
			file := filepath.Join(t.TempDir(), "ctx")
			r := p.must("pki", "export", name, "--format", "context", "--host", "tcp://127.0.0.1:2376", "--out", file)
			m := regexp.MustCompile(`docker context import (\S+) `).FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("stdout has no 'docker context import' line:\n%s", r.stdout)
			}
			if !dockerContextName.MatchString(m[1]) {
				t.Errorf("printed context name %q does not match %s", m[1], dockerContextName)
			}
			if !strings.Contains(r.stdout, "docker context create "+m[1]+" ") {
				t.Errorf("stdout uses another name than %q for 'docker context create':\n%s", m[1], r.stdout)
			}
			dockertest.Require(t, "docker")
			cmd := exec.Command("docker", "context", "import", m[1], file)
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("docker context import %s: %v\n%s", m[1], err, out)
			}
		})
	}
}

// dockerd's own TLS listener, as daemon-config sets it up, reads no CRL
// (dockerd 20.10 has no option for one), so a revoked client certificate
// still connects to it. revoke prints a warning when the state directory
// has a dockerd certificate, so the operator does not believe the client
// is locked out. The docker CLI run below shows that the warning is true.
func TestPKIRevokeWarnsDockerdIgnoresCRL(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "server", "--name", "dockerd", "--dns", "localhost", "--ip", "127.0.0.1")
	p.must("pki", "issue", "client", "mallory", "--key-type", "ecdsa-p256")
	p.must("pki", "issue", "client", "trent", "--key-type", "ecdsa-p256")
	d := startTLSDockerd(t, p, "dockerd")

	expiry := readPEMCert(t, p.path("clients", "mallory", "cert.pem")).NotAfter.UTC().Format(time.DateOnly)
	r := p.must("pki", "revoke", "mallory", "--reason", "keyCompromise")
	for _, want := range []string{"dockerd does not check the CRL", expiry, "dockmoat pki init --force"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("revoke stderr = %q, want it to contain %q", r.stderr, want)
		}
	}
	cli := dockertest.NewCLI(t, dockerHosts(t, d)[0], p.path("clients", "mallory"))
	if res := cli.Run(nil, "version", "--format", "{{.Server.Version}}"); res.Err != nil {
		t.Errorf("revoked client rejected by dockerd, so the warning is wrong: %v\n%s", res.Err, res.Stderr)
	}

	// Without a dockerd certificate, revocation needs no such warning.
	p.must("pki", "revoke", "dockerd")
	r = p.must("pki", "revoke", "trent")
	if strings.Contains(r.stderr, "dockerd") {
		t.Errorf("revoke stderr = %q, want no dockerd warning once the dockerd certificate is revoked", r.stderr)
	}
}

// A state directory path that names a file gets an error that names the
// file, not the advice to restore a backup or replace the CA.
func TestPKIStateDirIsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"pki", "init"}, {"pki", "list"}, {"pki", "issue", "client", "alice"}} {
		r := runDockmoat(t, "", append([]string{"--dir", file}, args...)...)
		if r.code != 2 {
			t.Errorf("%s: exit code %d, want 2\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		if want := "is a file, not a folder"; !strings.Contains(r.stderr, want) {
			t.Errorf("%s: stderr = %q, want %q", strings.Join(args, " "), r.stderr, want)
		}
		if strings.Contains(r.stderr, "init --force") {
			t.Errorf("%s: stderr = %q, want no advice to replace the CA", strings.Join(args, " "), r.stderr)
		}
	}
}

// A folder passed to --out may already hold another client's key, such as
// ~/.docker with the key for another Docker host. Writing a bundle there
// would destroy that key, so it is rejected unless the folder holds an
// earlier certificate of the same name from this CA, which is how a
// renewed bundle replaces its predecessor.
func TestPKIOutKeepsOtherKeys(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "client", "alice", "--key-type", "ecdsa-p256")
	p.must("pki", "issue", "client", "bob", "--key-type", "ecdsa-p256")
	host := "tcp://127.0.0.1:2376"
	aliceDir := filepath.Join(t.TempDir(), "alice")
	p.must("pki", "export", "alice", "--format", "dir", "--host", host, "--out", aliceDir)

	other := initPKI(t)
	other.must("pki", "issue", "client", "alice", "--key-type", "ecdsa-p256")
	foreignDir := filepath.Join(t.TempDir(), "foreign")
	other.must("pki", "export", "alice", "--format", "dir", "--host", host, "--out", foreignDir)

	// A key without a certificate next to it is kept as well.
	loneDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(loneDir, "key.pem"), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}

	rejected := []struct {
		name string
		dir  string
		args []string
	}{
		{"export other client", aliceDir, []string{"pki", "export", "bob", "--format", "dir", "--host", host, "--out", aliceDir}},
		{"export over other CA", foreignDir, []string{"pki", "export", "alice", "--format", "dir", "--host", host, "--out", foreignDir}},
		{"export over lone key", loneDir, []string{"pki", "export", "alice", "--format", "dir", "--host", host, "--out", loneDir}},
		{"issue over other client", aliceDir, []string{"pki", "issue", "client", "carol", "--key-type", "ecdsa-p256", "--out", aliceDir}},
		{"renew over other CA", foreignDir, []string{"pki", "renew", "alice", "--out", foreignDir}},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, tt.dir)
			stateBefore := snapshot(t, p.dir)
			r := p.run(tt.args...)
			if r.code != 2 {
				t.Errorf("exit code %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "already contains key.pem") {
				t.Errorf("stderr = %q, want it to name the existing key", r.stderr)
			}
			after := snapshot(t, tt.dir)
			for path, entry := range before {
				if after[path] != entry {
					t.Errorf("%s changed: got %q, want %q", path, after[path], entry)
				}
			}
			stateAfter := snapshot(t, p.dir)
			for path, entry := range stateAfter {
				if stateBefore[path] != entry {
					t.Errorf("state file %s changed or appeared", path)
				}
			}
		})
	}

	// The same client's folder may be written again.
	p.must("pki", "export", "alice", "--format", "dir", "--host", host, "--out", aliceDir)
	p.must("pki", "renew", "alice", "--out", aliceDir)
	renewed := p.list()
	if got, want := certificateSerial(t, filepath.Join(aliceDir, "cert.pem")), renewed[len(renewed)-1].Serial; got != want {
		t.Errorf("cert.pem in --out after renew has serial %s, want %s", got, want)
	}
}

// Keeping the CA key offline is common practice. Commands that only read
// the CA certificate, the index or the CRL keep working without
// ca-key.pem, and commands that sign name the missing key.
func TestPKIWithoutCAKey(t *testing.T) {
	p := initPKI(t)
	p.must("pki", "issue", "client", "alice", "--key-type", "ecdsa-p256")
	offline := filepath.Join(t.TempDir(), "ca-key.pem")
	if err := os.Rename(p.path("ca-key.pem"), offline); err != nil {
		t.Fatal(err)
	}

	if got := p.list(); len(got) != 1 || got[0].Name != "alice" {
		t.Errorf("pki list without the CA key = %+v, want alice", got)
	}
	if r := p.must("pki", "crl"); !strings.Contains(r.stdout, "BEGIN X509 CRL") {
		t.Errorf("pki crl stdout = %q, want a PEM CRL", r.stdout)
	}
	p.must("pki", "export", "alice", "--format", "env", "--host", "tcp://127.0.0.1:2376")

	r := p.run("pki", "issue", "client", "bob", "--key-type", "ecdsa-p256")
	if r.code != 1 {
		t.Errorf("issue without the CA key: exit code %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, p.path("ca-key.pem")) {
		t.Errorf("issue without the CA key: stderr = %q, want it to name %s", r.stderr, p.path("ca-key.pem"))
	}
	if strings.Contains(r.stderr, "init --force") {
		t.Errorf("issue without the CA key: stderr = %q, want no advice to replace the CA", r.stderr)
	}
}

// A corrupt index.json leaves the CA itself intact, so the hint points at
// the index and does not advise replacing the CA, which would invalidate
// every issued certificate.
func TestPKICorruptIndexHint(t *testing.T) {
	p := initPKI(t)
	if err := os.WriteFile(p.path("index.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := p.run("pki", "list")
	if r.code != 1 {
		t.Errorf("exit code %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "hint: restore "+p.path("index.json")) {
		t.Errorf("stderr = %q, want a hint to restore the index", r.stderr)
	}
	if strings.Contains(r.stderr, "init --force") {
		t.Errorf("stderr = %q, want no advice to replace the CA", r.stderr)
	}
}
