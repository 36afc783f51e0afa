package policy

import (
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/identity"
)

const driversPolicy = `
rules:
  - name: admin
    groups: [admin]
    presets: [admin]
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: logs
    clients: [logger]
    presets: [ci]
    lift:
      log_drivers: [syslog]
`

var (
	adminClient  = identity.Identity{Name: "root", Groups: []string{"admin"}}
	loggerClient = identity.Identity{Name: "logger"}
)

func TestLogConfig(t *testing.T) {
	p := mustParse(t, driversPolicy)
	tests := []struct {
		name  string
		who   identity.Identity
		body  string
		allow bool
		field string
	}{
		{"no log config", ciClient, `{"Image":"x"}`, true, ""},
		{"CLI default", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"","Config":{}}}}`, true, ""},
		{"json-file with options", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m","max-file":"3"}}}}`, true, ""},
		{"local", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"local"}}}`, true, ""},
		{"journald", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"journald","Config":{"tag":"app"}}}}`, true, ""},
		{"none", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"none"}}}`, true, ""},
		{"default driver with local options", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Config":{"max-size":"1m","mode":"non-blocking"}}}}`, true, ""},

		{"syslog", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}`, false, "HostConfig.LogConfig.Type"},
		{"syslog on unix socket", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"unix:///run/x.sock"}}}}`, false, "HostConfig.LogConfig.Type"},
		{"gelf", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"gelf","Config":{"gelf-address":"udp://127.0.0.1:1"}}}}`, false, "HostConfig.LogConfig.Type"},
		{"fluentd", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"fluentd"}}}`, false, "HostConfig.LogConfig.Type"},
		{"splunk", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"splunk"}}}`, false, "HostConfig.LogConfig.Type"},
		{"awslogs", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"awslogs"}}}`, false, "HostConfig.LogConfig.Type"},
		{"plugin", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"example/log-plugin:latest"}}}`, false, "HostConfig.LogConfig.Type"},
		{"upper case json-file", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"JSON-FILE"}}}`, false, "HostConfig.LogConfig.Type"},
		{"lower case keys", ciClient, `{"Image":"x","hostconfig":{"logconfig":{"type":"syslog"}}}`, false, "HostConfig.LogConfig.Type"},
		{"at top level", ciClient, `{"Image":"x","LogConfig":{"Type":"syslog"}}`, false, "LogConfig.Type"},
		{"default driver with address", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}`, false, "HostConfig.LogConfig.Config"},
		{"duplicate type", ciClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"none","type":"syslog"}}}`, false, "body"},

		{"lifted syslog", loggerClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}`, true, ""},
		{"lifted syslog only", loggerClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"gelf"}}}`, false, "HostConfig.LogConfig.Type"},
		{"admin", adminClient, `{"Image":"x","HostConfig":{"LogConfig":{"Type":"gelf","Config":{"gelf-address":"udp://127.0.0.1:1"}}}}`, true, ""},
	}
	req := classify(t, "POST", "/v1.41/containers/create")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.who, req, []byte(tt.body))
			if d.Allow != tt.allow {
				t.Errorf("allow: got %v, want %v (%s)", d.Allow, tt.allow, d.Message)
			}
			if d.Field != tt.field {
				t.Errorf("field: got %q, want %q", d.Field, tt.field)
			}
		})
	}
}

func TestLogConfigMessage(t *testing.T) {
	p := mustParse(t, driversPolicy)
	body := `{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}`
	d := p.Decide(ciClient, classify(t, "POST", "/v1.41/containers/create"), []byte(body))
	want := `dockmoat: client "ci-1" may not call container.create: HostConfig.LogConfig.Type is "syslog", ` +
		`a log driver other than json-file, local, journald and none, which rule "ci" does not allow`
	if d.Message != want {
		t.Errorf("message: got %q, want %q", d.Message, want)
	}
}

func TestLogDriversParse(t *testing.T) {
	p := mustParse(t, driversPolicy)
	for _, r := range p.Rules {
		if r.Name != "logs" {
			continue
		}
		if got := strings.Join(r.Lift.LogDrivers, ","); got != "syslog" {
			t.Errorf("log_drivers: got %q, want syslog", got)
		}
		return
	}
	t.Fatal("rule logs not found")
}
