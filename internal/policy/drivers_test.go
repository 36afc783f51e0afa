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
  - name: lan
    clients: [lan]
    presets: [ci]
    lift:
      network_drivers: [macvlan]
      network_options: [com.docker.network.bridge.name]
`

var (
	adminClient  = identity.Identity{Name: "root", Groups: []string{"admin"}}
	loggerClient = identity.Identity{Name: "logger"}
	lanClient    = identity.Identity{Name: "lan"}
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

func TestNetworkCreate(t *testing.T) {
	p := mustParse(t, driversPolicy)
	tests := []struct {
		name  string
		who   identity.Identity
		body  string
		allow bool
		field string
	}{
		{"CLI default", ciClient, `{"Name":"x","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{}}`, true, ""},
		{"empty driver", ciClient, `{"Name":"x"}`, true, ""},
		{"empty body", ciClient, ``, true, ""},
		{"overlay", ciClient, `{"Name":"x","Driver":"overlay","Attachable":true}`, true, ""},
		{"null", ciClient, `{"Name":"x","Driver":"null"}`, true, ""},
		{"bridge options", ciClient, `{"Name":"x","Driver":"bridge","Options":{"com.docker.network.driver.mtu":"1400","com.docker.network.bridge.enable_icc":"false"}}`, true, ""},
		{"bridge name as label", ciClient, `{"Name":"x","Labels":{"com.docker.network.bridge.name":"eth0"}}`, true, ""},

		{"macvlan", ciClient, `{"Name":"x","Driver":"macvlan","Options":{"parent":"lo"}}`, false, "Driver"},
		{"ipvlan", ciClient, `{"Name":"x","Driver":"ipvlan","Options":{"parent":"eth0"}}`, false, "Driver"},
		{"host", ciClient, `{"Name":"x","Driver":"host"}`, false, "Driver"},
		{"plugin", ciClient, `{"Name":"x","Driver":"example/net-plugin"}`, false, "Driver"},
		{"upper case bridge", ciClient, `{"Name":"x","Driver":"BRIDGE"}`, false, "Driver"},
		{"lower case key", ciClient, `{"Name":"x","driver":"macvlan"}`, false, "Driver"},
		{"bridge name", ciClient, `{"Name":"x","Driver":"bridge","Options":{"com.docker.network.bridge.name":"eth0"}}`, false, "Options"},
		{"bridge name upper case", ciClient, `{"Name":"x","Options":{"COM.DOCKER.NETWORK.BRIDGE.NAME":"br0"}}`, false, "Options"},
		{"config-only bridge name", ciClient, `{"Name":"x","ConfigOnly":true,"Options":{"com.docker.network.bridge.name":"br0"}}`, false, "Options"},
		{"config-only macvlan", ciClient, `{"Name":"x","Driver":"macvlan","ConfigOnly":true,"Options":{"parent":"eth0"}}`, false, "Driver"},
		{"duplicate driver", ciClient, `{"Name":"x","Driver":"bridge","driver":"macvlan"}`, false, "body"},
		{"wrong type", ciClient, `{"Name":"x","Driver":1}`, false, "body"},

		{"lifted macvlan", lanClient, `{"Name":"x","Driver":"macvlan","Options":{"parent":"eth0"}}`, true, ""},
		{"lifted bridge name", lanClient, `{"Name":"x","Options":{"com.docker.network.bridge.name":"br0"}}`, true, ""},
		{"lifted macvlan only", lanClient, `{"Name":"x","Driver":"ipvlan"}`, false, "Driver"},
		{"admin", adminClient, `{"Name":"x","Driver":"ipvlan","Options":{"parent":"eth0","com.docker.network.bridge.name":"br0"}}`, true, ""},
	}
	req := classify(t, "POST", "/v1.41/networks/create")
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

func TestDriverLiftParse(t *testing.T) {
	p := mustParse(t, driversPolicy)
	var logs, lan *Rule
	for _, r := range p.Rules {
		switch r.Name {
		case "logs":
			logs = r
		case "lan":
			lan = r
		}
	}
	if got := strings.Join(logs.Lift.LogDrivers, ","); got != "syslog" {
		t.Errorf("log_drivers: got %q, want syslog", got)
	}
	if got := strings.Join(lan.Lift.NetworkDrivers, ","); got != "macvlan" {
		t.Errorf("network_drivers: got %q, want macvlan", got)
	}
	if got := strings.Join(lan.Lift.NetworkOptions, ","); got != bridgeNameOption {
		t.Errorf("network_options: got %q, want %s", got, bridgeNameOption)
	}
}
