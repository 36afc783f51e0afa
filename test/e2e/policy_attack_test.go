package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/moby/moby/client"
)

// TestPolicyAttacks tries container escapes that the checks of single
// request fields missed, as a ci client through one gateway in front of one
// private dockerd, and checks that each is denied and that ordinary work
// still passes.
func TestPolicyAttacks(t *testing.T) {
	s := newPolicySuite(t)
	t.Cleanup(func() { s.checkNoEscapedContainers(t) })

	t.Run("local volume types", s.testLocalVolumeTypes)
	t.Run("exec into admin container", s.testExecConfined)
	t.Run("owned events", s.testOwnedEvents)
}

// testOwnedEvents checks that a client under ownership sees the events of
// its own containers and not those of another client, which would show
// their names, IDs and exec commands.
func (s *policySuite) testOwnedEvents(t *testing.T) {
	a := dockertest.NewCLI(t, s.gw.Host, s.teamA)
	b := dockertest.NewCLI(t, s.gw.Host, s.teamB)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	s.removeLater(t, "team-a-events")
	s.removeLater(t, "team-b-events")
	a.Must(t, "run", "--name", "team-a-events", s.image, "true")
	b.Must(t, "run", "--name", "team-b-events", s.image, "true")
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)

	events := b.Must(t, "events", "--since", since, "--until", until, "--format", "{{.Actor.Attributes.name}}")
	if strings.Contains(events, "team-a-events") {
		t.Errorf("docker events as team-b: got %q, want no event of team-a's container", events)
	}
	if !strings.Contains(events, "team-b-events") {
		t.Errorf("docker events as team-b: got %q, want the events of team-b-events", events)
	}
}

// testLocalVolumeTypes creates local volumes whose file system type reaches
// the host without a bind option: dockerd 20.10 mounts an overlay of host
// folders, or the host's proc, in the host's mount namespace.
func (s *policySuite) testLocalVolumeTypes(t *testing.T) {
	denied := []struct {
		name  string
		args  []string
		field string
	}{
		{"host proc", []string{"volume", "create", "-o", "type=proc", "-o", "device=proc", "ci-hostproc"}, "DriverOpts"},
		{"host sysfs", []string{"volume", "create", "-o", "type=sysfs", "-o", "device=sysfs", "ci-hostsys"}, "DriverOpts"},
		{"overlay of host folders", []string{"volume", "create", "-o", "type=overlay", "-o", "device=overlay",
			"-o", "o=lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w", "ci-hostetc"}, "DriverOpts"},
		{"relative bind", []string{"volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=etc", "ci-etc"}, "DriverOpts"},
		{"proc volume mount", []string{"run", "--mount",
			"type=volume,src=ci-proc2,dst=/p,volume-opt=type=proc,volume-opt=device=proc", s.image, "true"},
			"HostConfig.Mounts[0].VolumeOptions.DriverConfig"},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			r := s.ciCLI.Run(nil, tc.args...)
			if r.Err == nil {
				s.direct.Run(nil, "volume", "rm", "-f", tc.args[len(tc.args)-1])
				t.Fatalf("docker %s succeeded for a ci client", strings.Join(tc.args, " "))
			}
			for _, want := range []string{"Error response from daemon: dockmoat:", tc.field, `rule "ci"`} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("docker %s printed %q, want it to contain %q", strings.Join(tc.args, " "), r.Stderr, want)
				}
			}
		})
	}

	t.Run("existing proc volume", func(t *testing.T) {
		s.direct.Must(t, "volume", "create", "-o", "type=proc", "-o", "device=proc", "admin-hostproc")
		t.Cleanup(func() { s.direct.Run(nil, "volume", "rm", "-f", "admin-hostproc") })
		r := s.ciCLI.Run(nil, "run", "-v", "admin-hostproc:/p", s.image, "cat", "/p/1/cmdline")
		if r.Err == nil {
			t.Fatalf("docker run with the admin's proc volume succeeded for a ci client: %q", r.Stdout)
		}
		if !strings.Contains(r.Stderr, `names volume "admin-hostproc"`) {
			t.Errorf("docker run printed %q, want a denial naming volume admin-hostproc", r.Stderr)
		}
	})

	t.Run("tmpfs volume allowed", func(t *testing.T) {
		s.ciCLI.Must(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "ci-tmpfs")
		s.ciCLI.Must(t, "volume", "rm", "ci-tmpfs")
	})
}

// testExecConfined runs exec, exec start and attach as a ci client on
// containers that the admin started with settings the ci rule does not
// allow. Without the check, exec in a container on the host's PID namespace
// lists the host's processes, and exec in a container with a host bind
// reads host files.
func (s *policySuite) testExecConfined(t *testing.T) {
	s.removeLater(t, "admin-hostpid")
	s.removeLater(t, "admin-etc")
	s.removeLater(t, "ci-plain")
	s.direct.Must(t, "run", "-d", "--name", "admin-hostpid", "--pid", "host", s.image, "sleep", "3600")
	s.direct.Must(t, "run", "-d", "--name", "admin-etc", "-v", "/etc:/hostetc:ro", s.image, "sleep", "3600")
	s.ciCLI.Must(t, "run", "-d", "--name", "ci-plain", "-v", "ci-plain-data:/data", s.image, "sleep", "3600")
	t.Cleanup(func() { s.direct.Run(nil, "volume", "rm", "-f", "ci-plain-data") })

	denied := []struct {
		name  string
		args  []string
		field string
	}{
		{"exec host pid", []string{"exec", "admin-hostpid", "cat", "/proc/1/cmdline"}, "HostConfig.PidMode"},
		{"exec host bind", []string{"exec", "admin-etc", "cat", "/hostetc/hostname"}, "Mounts[0]"},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			r := s.ciCLI.Run(nil, tc.args...)
			if r.Err == nil {
				t.Fatalf("docker %s succeeded for a ci client: %q", strings.Join(tc.args, " "), r.Stdout)
			}
			for _, want := range []string{"Error response from daemon: dockmoat:", tc.field, `rule "ci"`} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("docker %s printed %q, want it to contain %q", strings.Join(tc.args, " "), r.Stderr, want)
				}
			}
		})
	}

	// The docker CLI prints only the status of a failed attach upgrade, so
	// the attach request is sent directly.
	t.Run("attach host pid", func(t *testing.T) {
		attach := postRequest("/v1.41/containers/admin-hostpid/attach?stream=1&stdout=1", "application/json", "")
		got := s.rawRequest(t, s.ci, attach)
		if got.status != 403 {
			t.Errorf("status: got %d (%s), want 403", got.status, got.message)
		}
		if !strings.Contains(got.message, "HostConfig.PidMode") {
			t.Errorf("message: got %q, want it to name HostConfig.PidMode", got.message)
		}
	})

	// Container inspect lists the IDs of exec instances, so a ci client
	// can learn the ID of an exec instance that the admin created and try
	// to start it.
	t.Run("start admin exec instance", func(t *testing.T) {
		admin := mobyClient(t, s.gw.Host, s.admin)
		created, err := admin.ExecCreate(commandContext(t, time.Minute), "admin-hostpid",
			client.ExecCreateOptions{Cmd: []string{"cat", "/proc/1/cmdline"}, AttachStdout: true})
		if err != nil {
			t.Fatalf("ExecCreate as admin: %v", err)
		}
		start := postRequest("/v1.41/exec/"+created.ID+"/start", "application/json", `{"Detach":false,"Tty":false}`)
		got := s.rawRequest(t, s.ci, start)
		if got.status != 403 {
			t.Errorf("status: got %d (%s), want 403", got.status, got.message)
		}
		if !strings.Contains(got.message, "HostConfig.PidMode") {
			t.Errorf("message: got %q, want it to name HostConfig.PidMode", got.message)
		}
	})

	t.Run("exec own container", func(t *testing.T) {
		if got := s.ciCLI.Must(t, "exec", "ci-plain", "echo", "ok"); got != "ok" {
			t.Errorf("docker exec output: got %q, want %q", got, "ok")
		}
	})
	t.Run("exec owned container", func(t *testing.T) {
		a := dockertest.NewCLI(t, s.gw.Host, s.teamA)
		s.removeLater(t, "team-a-exec")
		a.Must(t, "run", "-d", "--name", "team-a-exec", s.image, "sleep", "3600")
		if got := a.Must(t, "exec", "team-a-exec", "echo", "mine"); got != "mine" {
			t.Errorf("docker exec output: got %q, want %q", got, "mine")
		}
	})
	t.Run("admin exec", func(t *testing.T) {
		admin := dockertest.NewCLI(t, s.gw.Host, s.admin)
		if got := admin.Must(t, "exec", "admin-hostpid", "echo", "ok"); got != "ok" {
			t.Errorf("docker exec as admin output: got %q, want %q", got, "ok")
		}
	})
}

// TestPolicyExplainChecks checks that policy explain names the checks that
// the gateway makes on the daemon after the policy allowed a request.
func TestPolicyExplainChecks(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		want                       string
	}{
		{"exec create", "POST", "/v1.41/containers/web/exec", `{"Cmd":["sh"]}`,
			`confined:  the gateway inspects container "web" and denies unless rule ci could create it`},
		{"exec start", "POST", "/v1.41/exec/e1/start", "",
			`confined:  the gateway inspects the container of exec instance "e1" and denies unless rule ci could create it`},
		{"named volume", "POST", "/v1.41/containers/create", `{"Image":"x","HostConfig":{"Binds":["data:/d"]}}`,
			`volume:    HostConfig.Binds[0] names volume "data", whose driver options the gateway checks if it exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDockmoat(t, tt.body, "policy", "explain", "--client", "ci-1", "--group", "ci", tt.method, tt.target, "-")
			if r.code != 0 {
				t.Fatalf("exit code: got %d, want 0 (%s)", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.want) {
				t.Errorf("stdout: got %q, want it to contain %q", r.stdout, tt.want)
			}
		})
	}
}
