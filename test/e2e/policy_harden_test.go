package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// TestPolicyHarden checks that a ci client can neither make dockerd send
// container logs to an address nor attach a network to a host interface.
// Plain runs and networks must still work. The tests share one gateway in
// front of one private dockerd.
func TestPolicyHarden(t *testing.T) {
	s := newPolicySuite(t)
	t.Cleanup(func() { s.checkNoEscapedContainers(t) })

	t.Run("log drivers", s.testLogDrivers)
	t.Run("lifted log driver", s.testLiftedLogDriver)
	t.Run("network drivers", s.testNetworkDrivers)
}

// syslogListener accepts TCP connections on a loopback port and reports
// each one on the returned channel, so a test can tell whether dockerd
// connected to a log address.
func syslogListener(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	return "tcp://" + ln.Addr().String(), accepted
}

func (s *policySuite) testLogDrivers(t *testing.T) {
	address, accepted := syslogListener(t)
	denied := []struct {
		name  string
		args  []string
		field string
	}{
		{"syslog to port 1", []string{"run", "--log-driver", "syslog", "--log-opt", "syslog-address=tcp://127.0.0.1:1",
			s.image, "true"}, "HostConfig.LogConfig.Type"},
		{"syslog to listener", []string{"run", "--log-driver", "syslog", "--log-opt", "syslog-address=" + address,
			s.image, "true"}, "HostConfig.LogConfig.Type"},
		{"syslog to unix socket", []string{"run", "--log-driver", "syslog", "--log-opt", "syslog-address=unix:///run/e2e.sock",
			s.image, "true"}, "HostConfig.LogConfig.Type"},
		{"gelf", []string{"run", "--log-driver", "gelf", "--log-opt", "gelf-address=udp://127.0.0.1:1",
			s.image, "true"}, "HostConfig.LogConfig.Type"},
		{"fluentd", []string{"run", "--log-driver", "fluentd", "--log-opt", "fluentd-address=127.0.0.1:1",
			s.image, "true"}, "HostConfig.LogConfig.Type"},
		{"address for the default driver", []string{"run", "--log-opt", "syslog-address=" + address,
			s.image, "true"}, "HostConfig.LogConfig.Config"},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			r := s.ciCLI.Run(nil, tc.args...)
			if r.Err == nil {
				t.Fatalf("docker %s succeeded for a ci client", strings.Join(tc.args, " "))
			}
			for _, want := range []string{"Error response from daemon: dockmoat:", `client "ci-runner"`, tc.field, `rule "ci"`} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("docker %s printed %q, want it to contain %q", strings.Join(tc.args, " "), r.Stderr, want)
				}
			}
		})
	}
	select {
	case <-accepted:
		t.Error("dockerd connected to the syslog listener after the ci client's requests were denied")
	default:
	}

	t.Run("plain run", func(t *testing.T) {
		if got := s.ciCLI.Must(t, "run", "--rm", s.image, "echo", "ok"); got != "ok" {
			t.Errorf("docker run output: got %q, want %q", got, "ok")
		}
	})
	t.Run("json-file with options", func(t *testing.T) {
		got := s.ciCLI.Must(t, "run", "--rm", "--log-driver", "json-file", "--log-opt", "max-size=1m", s.image, "echo", "ok")
		if got != "ok" {
			t.Errorf("docker run output: got %q, want %q", got, "ok")
		}
	})
	t.Run("admin reaches the listener", func(t *testing.T) {
		admin := dockertest.NewCLI(t, s.gw.Host, s.admin)
		s.removeLater(t, "admin-syslog")
		admin.Must(t, "run", "--name", "admin-syslog", "--log-driver", "syslog", "--log-opt", "syslog-address="+address,
			s.image, "true")
		select {
		case <-accepted:
		case <-time.After(10 * time.Second):
			t.Error("dockerd did not connect to the syslog listener for the admin's container")
		}
	})
}

// testLiftedLogDriver adds a rule that lifts the syslog driver for a new
// client and checks that it may use syslog but not gelf.
func (s *policySuite) testLiftedLogDriver(t *testing.T) {
	address, accepted := syslogListener(t)
	lifted := testPolicy + `  - name: logs
    groups: [logs]
    presets: [ci]
    lift:
      log_drivers: [syslog]
`
	writeFileAtomic(t, s.policy, lifted)
	t.Cleanup(func() { writeFileAtomic(t, s.policy, testPolicy) })
	logger := dockertest.NewCLI(t, s.gw.Host, issueClient(t, s.gw.StateDir, "logger", "logs"))
	s.removeLater(t, "logger-syslog")
	waitUntil(t, "the logs rule allows syslog after the reload", func() bool {
		return logger.Run(nil, "create", "--name", "logger-syslog", "--log-driver", "syslog",
			"--log-opt", "syslog-address="+address, s.image, "true").Err == nil
	})
	logger.Must(t, "start", "logger-syslog")
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Error("dockerd did not connect to the syslog listener for the lifted rule's container")
	}

	r := logger.Run(nil, "run", "--log-driver", "gelf", "--log-opt", "gelf-address=udp://127.0.0.1:1", s.image, "true")
	if r.Err == nil {
		t.Fatal("docker run --log-driver gelf succeeded for a rule that lifts only syslog")
	}
	for _, want := range []string{"dockmoat:", "HostConfig.LogConfig.Type", `rule "logs"`} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("docker run --log-driver gelf printed %q, want it to contain %q", r.Stderr, want)
		}
	}
}

func (s *policySuite) testNetworkDrivers(t *testing.T) {
	denied := []struct {
		name  string
		args  []string
		field string
	}{
		{"macvlan", []string{"network", "create", "-d", "macvlan", "-o", "parent=lo", "e2e-macvlan"}, "Driver"},
		{"ipvlan", []string{"network", "create", "-d", "ipvlan", "-o", "parent=lo", "e2e-ipvlan"}, "Driver"},
		{"bridge on a named interface", []string{"network", "create", "-o", "com.docker.network.bridge.name=e2e-hostbr",
			"e2e-named"}, "Options"},
		{"config-only with a bridge name", []string{"network", "create", "--config-only",
			"-o", "com.docker.network.bridge.name=e2e-cfgbr", "e2e-config"}, "Options"},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.args[len(tc.args)-1]
			r := s.ciCLI.Run(nil, tc.args...)
			if r.Err == nil {
				s.direct.Run(nil, "network", "rm", name)
				t.Fatalf("docker %s succeeded for a ci client", strings.Join(tc.args, " "))
			}
			for _, want := range []string{"Error response from daemon: dockmoat:", `client "ci-runner"`, tc.field, `rule "ci"`} {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("docker %s printed %q, want it to contain %q", strings.Join(tc.args, " "), r.Stderr, want)
				}
			}
			if out := s.direct.Run(nil, "network", "inspect", name); out.Err == nil {
				t.Errorf("network %s exists on the daemon after the denial", name)
			}
		})
	}

	// The plain network adds a Linux bridge to the host until it is
	// removed. No container joins it and dockerd runs without iptables
	// rules, so it carries no traffic.
	t.Run("plain network", func(t *testing.T) {
		t.Cleanup(func() { s.direct.Run(nil, "network", "rm", "e2e-plain") })
		id := s.ciCLI.Must(t, "network", "create", "e2e-plain")
		if len(id) != 64 {
			t.Errorf("docker network create printed %q, want a 64-digit network ID", id)
		}
		if driver := s.direct.Must(t, "network", "inspect", "--format", "{{.Driver}}", "e2e-plain"); driver != "bridge" {
			t.Errorf("driver of e2e-plain: got %q, want bridge", driver)
		}
		s.ciCLI.Must(t, "network", "rm", "e2e-plain")
	})
}

// TestPolicyExplainDrivers checks that policy explain names the log driver
// and network driver fields and the rule of a denial, and that the admin
// preset and rules that lift a driver allow it.
func TestPolicyExplainDrivers(t *testing.T) {
	tests := []struct {
		name, group, target, body string
		code                      int
		want                      []string
	}{
		{"syslog as ci", "ci", "/v1.41/containers/create",
			`{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}`, 1,
			[]string{"decision:  deny", "field:     HostConfig.LogConfig.Type", `is "syslog"`, `rule "ci" does not allow`}},
		{"syslog as admin", "admin", "/v1.41/containers/create",
			`{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog"}}}`, 0,
			[]string{"decision:  allow", "rule:      admin"}},
		{"macvlan as ci", "ci", "/v1.41/networks/create",
			`{"Name":"x","Driver":"macvlan","Options":{"parent":"lo"}}`, 1,
			[]string{"decision:  deny", "field:     Driver", `is "macvlan"`, `rule "ci" does not allow`}},
		{"bridge name as ci", "ci", "/v1.41/networks/create",
			`{"Name":"x","Options":{"com.docker.network.bridge.name":"eth0"}}`, 1,
			[]string{"decision:  deny", "field:     Options", "com.docker.network.bridge.name"}},
		{"bridge as ci", "ci", "/v1.41/networks/create", `{"Name":"x","Driver":"bridge"}`, 0,
			[]string{"decision:  allow", "rule:      ci"}},
		{"syslog lifted", "logs", "/v1.41/containers/create",
			`{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog"}}}`, 0,
			[]string{"decision:  allow", "rule:      logs"}},
		{"macvlan lifted", "lan", "/v1.41/networks/create",
			`{"Name":"x","Driver":"macvlan","Options":{"parent":"eth0"}}`, 0,
			[]string{"decision:  allow", "rule:      lan"}},
		{"ipvlan not lifted", "lan", "/v1.41/networks/create", `{"Name":"x","Driver":"ipvlan"}`, 1,
			[]string{"decision:  deny", "field:     Driver", `rule "lan" does not allow`}},
	}
	lifted := testPolicy + `  - name: logs
    groups: [logs]
    presets: [ci]
    lift:
      log_drivers: [syslog]
  - name: lan
    groups: [lan]
    presets: [ci]
    lift:
      network_drivers: [macvlan]
`
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(lifted), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDockmoat(t, tt.body, "policy", "explain", "--policy", policyFile,
				"--client", "c1", "--group", tt.group, "POST", tt.target, "-")
			if r.code != tt.code {
				t.Errorf("exit code: got %d, want %d (%s)", r.code, tt.code, r.stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout: got %q, want it to contain %q", r.stdout, want)
				}
			}
		})
	}
}
