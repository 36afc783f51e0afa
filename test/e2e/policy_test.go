package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// policySuite is one private dockerd behind one gateway that serves a
// policy file, with clients of the admin, ci, readonly and owned groups.
type policySuite struct {
	daemon *dockertest.Daemon
	direct *dockertest.CLI
	gw     *gatewayProcess
	policy string
	image  string

	admin, ci, readonly, teamA, teamB string
	ciCLI, readonlyCLI                *dockertest.CLI
}

// testPolicy is the policy file the suite serves: the default presets and
// a group whose containers are owned by their creator.
const testPolicy = `rules:
  - name: admin
    groups: [admin]
    presets: [admin]
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: readonly
    groups: [readonly]
    presets: [readonly]
  - name: team
    groups: [team]
    presets: [ci]
    ownership: true
`

// TestPolicy drives a ci client through ordinary work and every container
// escape, a readonly client, container ownership and live policy reload,
// through one gateway in front of one private dockerd.
func TestPolicy(t *testing.T) {
	s := newPolicySuite(t)
	t.Cleanup(func() { s.checkNoEscapedContainers(t) })

	t.Run("ci builds and runs", s.testCIWorks)
	t.Run("ci escapes through CLI", s.testCIEscapesCLI)
	t.Run("ci moby client", s.testCIMobyClient)
	t.Run("ci privileged exec", s.testCIPrivilegedExec)
	t.Run("ci escapes through raw requests", s.testCIEscapesRaw)
	t.Run("ci chunked body forwarded", s.testChunkedAllowed)
	t.Run("ci build query", s.testBuildQuery)
	t.Run("readonly lists only", s.testReadonly)
	t.Run("ownership", s.testOwnership)
	t.Run("audit names rule", s.testAuditRule)
	t.Run("live reload", s.testReload)
}

func newPolicySuite(t *testing.T) *policySuite {
	d := dockertest.Start(t, dockertest.Options{})
	s := &policySuite{daemon: d, direct: d.CLI(t), image: "e2e-busybox"}
	dockertest.BusyboxImage(t, s.direct, s.image)

	s.policy = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(s.policy, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	s.gw, s.admin = startUp(t, d, stateDir, "--policy", s.policy)

	s.ci = issueClient(t, stateDir, "ci-runner", "ci")
	s.readonly = issueClient(t, stateDir, "viewer", "readonly")
	s.teamA = issueClient(t, stateDir, "team-a", "team")
	s.teamB = issueClient(t, stateDir, "team-b", "team")
	s.ciCLI = dockertest.NewCLI(t, s.gw.Host, s.ci)
	s.readonlyCLI = dockertest.NewCLI(t, s.gw.Host, s.readonly)
	return s
}

// removeLater removes a container through the socket when the test ends.
func (s *policySuite) removeLater(t *testing.T, name string) {
	t.Cleanup(func() { s.direct.Run(nil, "rm", "-f", name) })
}

func (s *policySuite) testCIWorks(t *testing.T) {
	dir := t.TempDir()
	dockerfile := "FROM " + s.image + "\nRUN echo built > /built.txt\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ciCLI.Must(t, "build", "-q", "-t", "e2e-ci-app", dir)

	if got := s.ciCLI.Must(t, "run", "--rm", "e2e-ci-app", "cat", "/built.txt"); got != "built" {
		t.Errorf("docker run output: got %q, want %q", got, "built")
	}

	s.removeLater(t, "ci-sleeper")
	s.ciCLI.Must(t, "run", "-d", "--name", "ci-sleeper", "-v", "ci-data:/data",
		"--cap-add", "CHOWN", "--security-opt", "no-new-privileges", s.image, "sleep", "3600")
	if got := s.ciCLI.Must(t, "exec", "ci-sleeper", "echo", "in"); got != "in" {
		t.Errorf("docker exec output: got %q, want %q", got, "in")
	}
	s.ciCLI.Must(t, "logs", "ci-sleeper")
	s.ciCLI.Must(t, "stop", "-t", "1", "ci-sleeper")
	s.ciCLI.Must(t, "rm", "ci-sleeper")
	s.ciCLI.Must(t, "volume", "rm", "ci-data")
}

// escapeCases are docker CLI commands that a ci client must not run, with
// the request field that the denial must name. They run without --rm, so a
// container that got through stays for checkNoEscapedContainers.
var escapeCases = []struct {
	name  string
	args  []string
	field string
}{
	{"privileged", []string{"run", "--privileged", "IMAGE", "true"}, "HostConfig.Privileged"},
	{"host bind", []string{"run", "-v", "/:/host", "IMAGE", "true"}, "HostConfig.Binds[0]"},
	{"host bind mount", []string{"run", "--mount", "type=bind,src=/etc,dst=/h", "IMAGE", "true"}, "HostConfig.Mounts[0]"},
	{"host pid", []string{"run", "--pid", "host", "IMAGE", "true"}, "HostConfig.PidMode"},
	{"host network", []string{"run", "--network", "host", "IMAGE", "true"}, "HostConfig.NetworkMode"},
	{"host ipc", []string{"run", "--ipc", "host", "IMAGE", "true"}, "HostConfig.IpcMode"},
	{"host uts", []string{"run", "--uts", "host", "IMAGE", "true"}, "HostConfig.UTSMode"},
	{"host userns", []string{"run", "--userns", "host", "IMAGE", "true"}, "HostConfig.UsernsMode"},
	{"added capability", []string{"run", "--cap-add", "SYS_ADMIN", "IMAGE", "true"}, "HostConfig.CapAdd[0]"},
	{"all capabilities", []string{"run", "--cap-add", "ALL", "IMAGE", "true"}, "HostConfig.CapAdd[0]"},
	{"device", []string{"run", "--device", "/dev/null:/dev/x", "IMAGE", "true"}, "HostConfig.Devices"},
	{"device cgroup rule", []string{"run", "--device-cgroup-rule", "a *:* rwm", "IMAGE", "true"}, "HostConfig.DeviceCgroupRules"},
	{"unconfined seccomp", []string{"run", "--security-opt", "seccomp=unconfined", "IMAGE", "true"}, "HostConfig.SecurityOpt[0]"},
	{"unconfined apparmor", []string{"run", "--security-opt", "apparmor=unconfined", "IMAGE", "true"}, "HostConfig.SecurityOpt[0]"},
	{"unmasked system paths", []string{"run", "--security-opt", "systempaths=unconfined", "IMAGE", "true"}, "HostConfig.MaskedPaths"},
	{"sysctl", []string{"run", "--sysctl", "kernel.shm_rmid_forced=1", "IMAGE", "true"}, "HostConfig.Sysctls"},
	{"volumes from", []string{"run", "--volumes-from", "admin-box", "IMAGE", "true"}, "HostConfig.VolumesFrom[0]"},
	{"existing host path volume", []string{"run", "-v", "admin-hostetc:/h", "IMAGE", "true"}, "HostConfig.Binds[0]"},
	{"existing host path volume mount", []string{"run", "--mount", "src=admin-hostetc,dst=/h", "IMAGE", "true"}, "HostConfig.Mounts[0]"},
	{"volume bound to host path", []string{"volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/", "hostroot"}, "DriverOpts"},
	{"volume on block device", []string{"volume", "create", "-o", "type=ext4", "-o", "device=/dev/sda1", "disk"}, "DriverOpts"},
}

func (s *policySuite) testCIEscapesCLI(t *testing.T) {
	s.removeLater(t, "admin-box")
	s.direct.Must(t, "create", "--name", "admin-box", "-v", "/etc:/hostetc", s.image, "true")
	s.direct.Must(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/etc", "admin-hostetc")
	t.Cleanup(func() { s.direct.Run(nil, "volume", "rm", "-f", "admin-hostetc") })

	for _, tc := range escapeCases {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "IMAGE", s.image)
			}
			r := s.ciCLI.Run(nil, args...)
			if r.Err == nil {
				t.Fatalf("docker %s succeeded for a ci client: %q", strings.Join(args, " "), r.Stdout)
			}
			for _, want := range []string{"Error response from daemon: dockmoat:", `client "ci-runner"`, tc.field, `rule "ci"`} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("docker %s printed %q, want it to contain %q", strings.Join(args, " "), r.Stderr, want)
				}
			}
		})
	}
}

// testCIMobyClient creates containers with the moby Go client, which sends
// every HostConfig field with falsy values, and a privileged one.
func (s *policySuite) testCIMobyClient(t *testing.T) {
	ctx := commandContext(t, time.Minute)
	c := mobyClient(t, s.gw.Host, s.ci)

	s.removeLater(t, "ci-moby")
	_, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "ci-moby",
		Config:     &container.Config{Image: s.image, Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{Privileged: false, CapAdd: nil, NetworkMode: "none"},
	})
	if err != nil {
		t.Fatalf("ContainerCreate with falsy values: %v", err)
	}

	_, err = c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: s.image, Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{Privileged: true},
	})
	if err == nil || !strings.Contains(err.Error(), "dockmoat:") {
		t.Errorf("privileged ContainerCreate: got error %v, want a dockmoat denial", err)
	}
}

func (s *policySuite) testCIPrivilegedExec(t *testing.T) {
	s.removeLater(t, "ci-exec")
	s.ciCLI.Must(t, "run", "-d", "--name", "ci-exec", s.image, "sleep", "3600")
	r := s.ciCLI.Run(nil, "exec", "--privileged", "ci-exec", "true")
	if r.Err == nil {
		t.Fatal("docker exec --privileged succeeded for a ci client")
	}
	if !strings.Contains(r.Stderr, "dockmoat:") || !strings.Contains(r.Stderr, "Privileged") {
		t.Errorf("docker exec --privileged printed %q, want a dockmoat denial naming Privileged", r.Stderr)
	}
	if got := s.ciCLI.Must(t, "exec", "ci-exec", "echo", "ok"); got != "ok" {
		t.Errorf("plain exec after the denial: got %q, want %q", got, "ok")
	}
}

// rawResult is the status and Docker-style message of one raw request.
type rawResult struct {
	status  int
	message string
}

// rawRequest writes one HTTP/1.1 request through the gateway exactly as
// given, so the test controls the target, framing and body bytes.
func (s *policySuite) rawRequest(t *testing.T, bundle, request string) rawResult {
	t.Helper()
	conn, err := tls.Dial("tcp", s.gw.Addr, bundleTLSConfig(t, bundle))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// The gateway may respond and close before it has read a rejected
	// body, so the write runs on its own and its error is ignored.
	go io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	var body struct{ Message string }
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	return rawResult{status: resp.StatusCode, message: body.Message}
}

// postRequest returns the bytes of an HTTP/1.1 POST of body to target with
// a Content-Length, for rawRequest.
func postRequest(target, contentType, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		target, contentType, len(body), body)
}

// chunkedPostRequest returns the bytes of an HTTP/1.1 POST of a JSON body
// to target, sent with chunked transfer encoding in chunks of at most 7
// bytes, for rawRequest.
func chunkedPostRequest(target, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", target)
	for len(body) > 0 {
		n := min(7, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func (s *policySuite) testCIEscapesRaw(t *testing.T) {
	image := s.image
	privileged := `{"Image":"` + image + `","HostConfig":{"Privileged":true}}`
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"mixed-case keys", postRequest("/v1.41/containers/create", "application/json",
			`{"image":"`+image+`","hostconfig":{"pRiViLeGeD":true}}`), 403},
		{"duplicate keys", postRequest("/v1.41/containers/create", "application/json",
			`{"Image":"`+image+`","HostConfig":{"Privileged":false,"privileged":true}}`), 403},
		{"duplicate HostConfig", postRequest("/v1.41/containers/create", "application/json",
			`{"Image":"`+image+`","HostConfig":{},"hostConfig":{"Binds":["/:/h"]}}`), 403},
		{"kelvin sign key", postRequest("/v1.41/containers/create", "application/json",
			`{"Image":"`+image+`","HostConfig":{"Binds":null,"Bind\u017f":["/:/h"]}}`), 403},
		{"top-level HostConfig fields", postRequest("/v1.41/containers/create", "application/json",
			`{"Image":"`+image+`","Privileged":true,"Binds":["/:/h"]}`), 403},
		{"chunked", chunkedPostRequest("/v1.41/containers/create", privileged), 403},
		{"unversioned path", postRequest("/containers/create", "application/json", privileged), 403},
		{"encoded path", postRequest("/v1.41/containers%2Fcreate", "application/json", privileged), 400},
		{"encoded letters", postRequest("/v1.41/%63ontainers/create", "application/json", privileged), 403},
		{"dot segment", postRequest("/v1.41/images/../containers/create", "application/json", privileged), 400},
		{"double slash", postRequest("/v1.41//containers/create", "application/json", privileged), 400},
		{"loose version", postRequest("/v1.41.0/containers/create", "application/json", privileged), 400},
		{"old version start body", postRequest("/v1.23/containers/ci-x/start", "application/json", `{"Privileged":true}`), 400},
		{"absolute form", postRequest("http://docker/v1.41/containers/create", "application/json", privileged), 400},
		{"trailing JSON", postRequest("/v1.41/containers/create", "application/json",
			`{"Image":"`+image+`"} {"HostConfig":{"Privileged":true}}`), 403},
		{"oversized body", postRequest("/v1.41/containers/create", "application/json",
			`{"Image":"`+image+`","Env":["X=`+strings.Repeat("a", 2<<20)+`"]}`), 413},
		{"volume bound to host", postRequest("/v1.41/volumes/create", "application/json",
			`{"Name":"raw-hostroot","DriverOpts":{"type":"none","o":"bind","device":"/"}}`), 403},
		{"form body", postRequest("/v1.41/build?t=x", "application/x-www-form-urlencoded", "networkmode=host"), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.rawRequest(t, s.ci, tt.request)
			if got.status != tt.status {
				t.Errorf("status: got %d (%s), want %d", got.status, got.message, tt.status)
			}
			if !strings.HasPrefix(got.message, "dockmoat: ") {
				t.Errorf("message: got %q, want the dockmoat: prefix", got.message)
			}
		})
	}
}

// testChunkedAllowed sends an ordinary create body chunked and checks that
// the daemon received exactly those bytes.
func (s *policySuite) testChunkedAllowed(t *testing.T) {
	s.removeLater(t, "ci-chunked")
	body := `{"Image":"` + s.image + `","Cmd":["true"],"Labels":{"e2e":"chunked"},"HostConfig":{"Privileged":false,"CapAdd":null}}`
	got := s.rawRequest(t, s.ci, chunkedPostRequest("/v1.41/containers/create?name=ci-chunked", body))
	if got.status != http.StatusCreated {
		t.Fatalf("status: got %d (%s), want 201", got.status, got.message)
	}
	if label := s.direct.Must(t, "inspect", "--format", `{{index .Config.Labels "e2e"}}`, "ci-chunked"); label != "chunked" {
		t.Errorf("label on the daemon: got %q, want %q", label, "chunked")
	}
}

func (s *policySuite) testBuildQuery(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+s.image+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "--network", "host", "-t", "e2e-hostnet", dir}
	r := s.ciCLI.Run(nil, args...)
	if r.Err == nil {
		t.Errorf("docker %s succeeded for a ci client", strings.Join(args, " "))
	}
	if !strings.Contains(r.Stderr, "dockmoat:") || !strings.Contains(r.Stderr, "networkmode") {
		t.Errorf("docker %s printed %q, want a dockmoat denial naming networkmode", strings.Join(args, " "), r.Stderr)
	}

	// The docker CLI downloads remote contexts itself, so the remote
	// parameter is sent directly.
	remote := postRequest("/v1.41/build?remote=https%3A%2F%2Fexample.invalid%2Fctx.tar&t=e2e-remote", "application/x-tar", "")
	if got := s.rawRequest(t, s.ci, remote); got.status != 403 || !strings.Contains(got.message, "remote") {
		t.Errorf("build with a remote context: got %d %q, want 403 naming remote", got.status, got.message)
	}
}

func (s *policySuite) testReadonly(t *testing.T) {
	s.removeLater(t, "ro-target")
	s.direct.Must(t, "run", "-d", "--name", "ro-target", s.image, "sleep", "3600")

	if out := s.readonlyCLI.Must(t, "ps", "--format", "{{.Names}}"); !strings.Contains(out, "ro-target") {
		t.Errorf("docker ps as readonly: got %q, want it to list ro-target", out)
	}
	s.readonlyCLI.Must(t, "images")
	s.readonlyCLI.Must(t, "inspect", "ro-target")
	s.readonlyCLI.Must(t, "volume", "ls")
	s.readonlyCLI.Must(t, "network", "ls")

	cp := filepath.Join(t.TempDir(), "passwd")
	denied := [][]string{
		{"run", "--rm", s.image, "true"},
		{"create", s.image},
		{"exec", "ro-target", "true"},
		{"logs", "ro-target"},
		{"cp", "ro-target:/etc/passwd", cp},
		{"cp", cp, "ro-target:/tmp/x"},
		{"export", "ro-target"},
		{"stop", "ro-target"},
		{"rm", "-f", "ro-target"},
		{"rmi", s.image},
		{"volume", "create", "ro-vol"},
	}
	if err := os.WriteFile(cp, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range denied {
		r := s.readonlyCLI.Run(nil, args...)
		if r.Err == nil {
			t.Errorf("docker %s succeeded for a readonly client", strings.Join(args, " "))
			continue
		}
		if !strings.Contains(r.Stderr, "dockmoat:") {
			t.Errorf("docker %s printed %q, want a dockmoat denial", strings.Join(args, " "), r.Stderr)
		}
	}
	if state := s.direct.Must(t, "inspect", "--format", "{{.State.Running}}", "ro-target"); state != "true" {
		t.Errorf("ro-target running after readonly attempts: got %q, want true", state)
	}
}

func (s *policySuite) testOwnership(t *testing.T) {
	a := dockertest.NewCLI(t, s.gw.Host, s.teamA)
	b := dockertest.NewCLI(t, s.gw.Host, s.teamB)
	s.removeLater(t, "team-a-box")
	id := a.Must(t, "run", "-d", "--name", "team-a-box", s.image, "sleep", "3600")

	if owner := s.direct.Must(t, "inspect", "--format", `{{index .Config.Labels "dockmoat.owner"}}`, id); owner != "team-a" {
		t.Errorf("owner label: got %q, want team-a", owner)
	}
	if out := a.Must(t, "ps", "-a", "--format", "{{.Names}}"); out != "team-a-box" {
		t.Errorf("docker ps as team-a: got %q, want only team-a-box", out)
	}
	if out := b.Must(t, "ps", "-a", "--format", "{{.Names}}"); out != "" {
		t.Errorf("docker ps as team-b: got %q, want nothing", out)
	}
	if got := a.Must(t, "exec", "team-a-box", "echo", "mine"); got != "mine" {
		t.Errorf("exec as owner: got %q, want mine", got)
	}
	for _, args := range [][]string{
		{"container", "inspect", "team-a-box"},
		{"exec", "team-a-box", "true"},
		{"stop", "team-a-box"},
		{"logs", id},
	} {
		r := b.Run(nil, args...)
		if r.Err == nil {
			t.Errorf("docker %s as team-b succeeded on team-a's container", strings.Join(args, " "))
			continue
		}
		if !strings.Contains(r.Stderr, "No such container") {
			t.Errorf("docker %s as team-b printed %q, want No such container", strings.Join(args, " "), r.Stderr)
		}
	}
	// docker run reacts to a 404 on create by pulling the image, so the
	// create request is sent directly.
	volumesFrom := postRequest("/v1.41/containers/create", "application/json",
		`{"Image":"`+s.image+`","HostConfig":{"VolumesFrom":["team-a-box"]}}`)
	if got := s.rawRequest(t, s.teamB, volumesFrom); got.status != 404 || got.message != "No such container: team-a-box" {
		t.Errorf("VolumesFrom of team-a's container as team-b: got %d %q, want 404 No such container: team-a-box",
			got.status, got.message)
	}
	// The owner may share its own container.
	a.Must(t, "run", "--rm", "--volumes-from", "team-a-box", s.image, "true")
}

func (s *policySuite) testAuditRule(t *testing.T) {
	r := s.ciCLI.Run(nil, "run", "--rm", "--privileged", s.image, "true")
	if r.Err == nil {
		t.Fatal("docker run --privileged succeeded for a ci client")
	}
	rec := waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
		return r.str("client") == "ci-runner" && r.str("operation") == "container.create" && r.str("decision") == "deny"
	})
	if rec.str("rule") != "ci" {
		t.Errorf("audit rule: got %q, want ci", rec.str("rule"))
	}
	if rec.num("status") != 403 {
		t.Errorf("audit status: got %v, want 403", rec.num("status"))
	}
	allowed := waitAudit(t, s.gw.AuditLog, func(r auditRecord) bool {
		return r.str("client") == "ci-runner" && r.str("operation") == "system.ping"
	})
	if allowed.str("decision") != "allow" || allowed.str("rule") != "builtin" {
		t.Errorf("audit record of _ping: got decision %q rule %q, want allow by builtin", allowed.str("decision"), allowed.str("rule"))
	}
}

// testReload grants readonly the logs operation by rewriting the policy
// file, then breaks the file and checks that the grant stays.
func (s *policySuite) testReload(t *testing.T) {
	s.removeLater(t, "reload-target")
	s.direct.Must(t, "run", "-d", "--name", "reload-target", s.image, "echo", "line")
	if r := s.readonlyCLI.Run(nil, "logs", "reload-target"); r.Err == nil {
		t.Fatal("docker logs as readonly succeeded before the reload")
	}

	granted := strings.Replace(testPolicy, "presets: [readonly]", "presets: [readonly]\n    operations: [container.logs]", 1)
	writeFileAtomic(t, s.policy, granted)
	waitUntil(t, "readonly may read logs after the reload", func() bool {
		return s.readonlyCLI.Run(nil, "logs", "reload-target").Err == nil
	})

	writeFileAtomic(t, s.policy, "rules:\n  - name: [broken\n")
	s.gw.waitLog(t, 10*time.Second, "policy reload failed", "keeping the previous policy")
	if r := s.readonlyCLI.Run(nil, "logs", "reload-target"); r.Err != nil {
		t.Errorf("docker logs after a broken policy file: %v %s, want the previous policy kept", r.Err, r.Stderr)
	}
	writeFileAtomic(t, s.policy, testPolicy)
}

func writeFileAtomic(t *testing.T, name, text string) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkNoEscapedContainers fails when any container on the daemon, created
// by any client, is privileged, shares a host namespace or mounts a host
// path other than the admin's own fixture.
func (s *policySuite) checkNoEscapedContainers(t *testing.T) {
	out := s.direct.Must(t, "ps", "-aq")
	if out == "" {
		return
	}
	format := `{{.Name}} {{.HostConfig.Privileged}} {{.HostConfig.PidMode}} {{.HostConfig.NetworkMode}} ` +
		`{{range .Mounts}}{{.Type}}:{{.Source}} {{end}}`
	for _, id := range strings.Fields(out) {
		line := s.direct.Must(t, "inspect", "--format", format, id)
		fields := strings.Fields(line)
		if len(fields) >= 4 && (fields[1] == "true" || fields[2] == "host" || fields[3] == "host") {
			t.Errorf("container %s escaped the policy: %s", id, line)
		}
		if strings.Contains(line, "bind:") && fields[0] != "/admin-box" {
			t.Errorf("container %s mounts a host path: %s", id, line)
		}
	}
	var volumes bytes.Buffer
	volumes.WriteString(s.direct.Must(t, "volume", "ls", "-q"))
	for _, name := range strings.Fields(volumes.String()) {
		opts := s.direct.Must(t, "volume", "inspect", "--format", "{{json .Options}}", name)
		if strings.Contains(opts, "bind") || strings.Contains(opts, `"device":"/`) {
			t.Errorf("volume %s binds a host path: %s", name, opts)
		}
	}
}

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("rules:\n  - name: x\n    groups: [ci]\n    operations: [contaner.create]\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := mustDockmoat(t, "policy", "check", good)
	if !strings.Contains(r.stdout, "valid, rules: 4") {
		t.Errorf("policy check stdout: got %q, want it to report 4 valid rules", r.stdout)
	}

	// The example in the help text is itself a valid policy.
	help := mustDockmoat(t, "policy", "--help").stdout
	start := strings.Index(help, "  rules:")
	end := strings.Index(help, "build_remote: false")
	if start < 0 || end < start {
		t.Fatalf("policy --help has no example policy: %q", help)
	}
	example := filepath.Join(dir, "example.yaml")
	if err := os.WriteFile(example, []byte(help[start:end+len("build_remote: false")]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustDockmoat(t, "policy", "check", example)

	r = runDockmoat(t, "", "policy", "check", bad)
	if r.code != 2 {
		t.Errorf("policy check of a bad file: exit %d, want 2", r.code)
	}
	if want := bad + `:4: rules[0].operations[0]: unknown operation "contaner.create"`; !strings.Contains(r.stderr, want) {
		t.Errorf("policy check stderr: got %q, want it to contain %q", r.stderr, want)
	}

	body := `{"Image":"alpine","HostConfig":{"Binds":["/:/host"],"Privileged":true,"PidMode":"host"}}`
	r = runDockmoat(t, body, "policy", "explain", "--policy", good, "--client", "ci-1", "--group", "ci",
		"POST", "/v1.41/containers/create", "-")
	if r.code != 1 {
		t.Errorf("explain of a denied request: exit %d, want 1", r.code)
	}
	for _, want := range []string{"operation: container.create", "decision:  deny", "rule:      ci", "field:     HostConfig.Privileged"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("explain stdout: got %q, want it to contain %q", r.stdout, want)
		}
	}

	r = mustDockmoat(t, "policy", "explain", "--client", "v", "--group", "readonly", "GET", "/v1.41/containers/json")
	if !strings.Contains(r.stdout, "decision:  allow") || !strings.Contains(r.stdout, "rule:      readonly") {
		t.Errorf("explain of an allowed request: got %q, want allow by readonly", r.stdout)
	}

	r = mustDockmoat(t, "policy", "default")
	if !strings.Contains(r.stdout, "presets: [ci]") {
		t.Errorf("policy default: got %q, want the ci preset rule", r.stdout)
	}
}
