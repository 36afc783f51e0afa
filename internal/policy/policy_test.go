package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/identity"
)

func mustParse(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func classify(t testing.TB, method, target string) *dockerapi.Request {
	t.Helper()
	req, err := dockerapi.ClassifyTarget(method, target)
	if err != nil {
		t.Fatalf("ClassifyTarget(%s %s): %v", method, target, err)
	}
	return req
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       string
	}{
		{"empty", "", "test.yaml:1: policy is empty"},
		{"unknown top field", "rule: []\n", "test.yaml:1: rule: unknown field"},
		{"no rules", "rules: []\n", "test.yaml:1: rules: no rules"},
		{"missing name", "rules:\n  - groups: [ci]\n    presets: [ci]\n", "test.yaml:2: rules[0].name: missing"},
		{"unknown preset", "rules:\n  - name: a\n    groups: [ci]\n    presets: [cii]\n", `test.yaml:4: rules[0].presets[0]: unknown preset "cii"`},
		{"unknown operation", "rules:\n  - name: a\n    groups: [ci]\n    operations:\n      - container.list\n      - contaner.create\n",
			`test.yaml:6: rules[0].operations[1]: unknown operation "contaner.create"`},
		{"unknown prefix", "rules:\n  - name: a\n    groups: [ci]\n    operations: [nothing.*]\n", `unknown operation "nothing.*"`},
		{"no clients", "rules:\n  - name: a\n    presets: [ci]\n", "test.yaml:2: rules[0]: rule \"a\" selects no clients"},
		{"grants nothing", "rules:\n  - name: a\n    groups: [x]\n", `rule "a" grants nothing`},
		{"bool as string", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    ownership: \"yes\"\n", `test.yaml:5: rules[0].ownership: expected true or false, got "yes"`},
		{"unknown lift", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      privilege: true\n", "test.yaml:6: rules[0].lift.privilege: unknown field"},
		{"bad namespace", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      namespaces: [pid, mnt]\n", `test.yaml:6: rules[0].lift.namespaces[1]: unknown namespace "mnt"`},
		{"relative bind path", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      bind_paths: [srv]\n", `rules[0].lift.bind_paths[0]: host path "srv" is not absolute`},
		{"root bind path", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      bind_paths: [/]\n", `host path "/" would allow every bind mount`},
		{"log driver with space", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      log_drivers: [\"sys log\"]\n",
			`test.yaml:6: rules[0].lift.log_drivers[0]: driver name "sys log" contains white space`},
		{"log drivers not a list", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      log_drivers: syslog\n",
			`test.yaml:6: rules[0].lift.log_drivers: expected a list of strings`},
		{"empty network driver", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      network_drivers: [macvlan, \"\"]\n",
			`test.yaml:6: rules[0].lift.network_drivers[1]: empty string`},
		{"unknown network option", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n    lift:\n      network_options: [parent]\n",
			`test.yaml:6: rules[0].lift.network_options[0]: option "parent" is not denied by default: use com.docker.network.bridge.name`},
		{"bad pattern", "rules:\n  - name: a\n    clients: [\"ci-[\"]\n    presets: [ci]\n", `rules[0].clients[0]: invalid pattern "ci-["`},
		{"duplicate rule name", "rules:\n  - name: a\n    groups: [x]\n    presets: [ci]\n  - name: a\n    groups: [y]\n    presets: [ci]\n", `test.yaml:5: rules[1].name: rule name "a" is already used on line 2`},
		{"yaml syntax", "rules:\n  - name: [\n", "test.yaml:2: did not find expected node content"},
		{"number as name", "rules:\n  - name: 5\n    groups: [x]\n    presets: [ci]\n", `test.yaml:2: rules[0].name: expected a string, got int "5": quote the value`},
		{"duplicate yaml key", "rules:\n  - name: a\n    name: b\n    groups: [x]\n    presets: [ci]\n", "test.yaml:3: rules[0].name: duplicate key, first set on line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.text))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			var parseErr *ParseError
			if !errors.As(err, &parseErr) {
				t.Errorf("got error type %T, want *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err.Error(), tt.want)
			}
		})
	}
}

func TestLoadFileNotFound(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestDefaultPolicyPresets(t *testing.T) {
	p := Default()
	admin := identity.Identity{Name: "root", Groups: []string{"admin"}}
	ci := identity.Identity{Name: "ci-1", Groups: []string{"ci"}}
	readonly := identity.Identity{Name: "viewer", Groups: []string{"readonly"}}
	nobody := identity.Identity{Name: "stranger"}

	tests := []struct {
		who            identity.Identity
		method, target string
		allow          bool
		rule           string
	}{
		{nobody, "GET", "/_ping", true, BuiltinRule},
		{nobody, "HEAD", "/v1.41/_ping", true, BuiltinRule},
		{nobody, "GET", "/v1.41/version", true, BuiltinRule},
		{nobody, "GET", "/v1.41/info", false, DefaultDenyRule},
		{admin, "POST", "/v1.41/swarm/init", true, "admin"},
		{admin, "POST", "/session", true, "admin"},
		{readonly, "GET", "/v1.41/containers/json", true, "readonly"},
		{readonly, "GET", "/v1.41/containers/x/json", true, "readonly"},
		{readonly, "GET", "/v1.41/images/json", true, "readonly"},
		{readonly, "GET", "/v1.41/networks", true, "readonly"},
		{readonly, "GET", "/v1.41/volumes", true, "readonly"},
		{readonly, "GET", "/v1.41/events", true, "readonly"},
		{readonly, "GET", "/v1.41/system/df", true, "readonly"},
		{readonly, "GET", "/v1.41/containers/x/logs", false, DefaultDenyRule},
		{readonly, "GET", "/v1.41/containers/x/archive?path=/", false, DefaultDenyRule},
		{readonly, "HEAD", "/v1.41/containers/x/archive?path=/", false, DefaultDenyRule},
		{readonly, "GET", "/v1.41/containers/x/export", false, DefaultDenyRule},
		{readonly, "POST", "/v1.41/containers/x/exec", false, DefaultDenyRule},
		{readonly, "POST", "/v1.41/containers/x/attach", false, DefaultDenyRule},
		{readonly, "POST", "/v1.41/containers/create", false, DefaultDenyRule},
		{readonly, "POST", "/v1.41/containers/x/start", false, DefaultDenyRule},
		{readonly, "DELETE", "/v1.41/images/busybox", false, DefaultDenyRule},
		{ci, "POST", "/v1.41/build?t=app", true, "ci"},
		{ci, "POST", "/v1.41/images/create?fromImage=busybox", true, "ci"},
		{ci, "POST", "/v1.41/images/app/push", true, "ci"},
		{ci, "POST", "/v1.41/containers/x/start", true, "ci"},
		{ci, "POST", "/v1.41/exec/x/start", true, "ci"},
		{ci, "GET", "/v1.41/containers/x/logs", true, "ci"},
		{ci, "GET", "/v1.41/containers/x/archive?path=/", false, DefaultDenyRule},
		{ci, "POST", "/v1.41/images/create?fromSrc=-", false, DefaultDenyRule},
		{ci, "POST", "/v1.41/images/create?repo=x&tag=y", false, DefaultDenyRule},
		{ci, "POST", "/session", false, DefaultDenyRule},
		{ci, "POST", "/v1.41/plugins/pull?remote=x", false, DefaultDenyRule},
		{ci, "POST", "/v1.41/build?networkmode=host", false, "ci"},
		{ci, "POST", "/v1.41/build?networkmode=HOST", false, "ci"},
		{ci, "POST", "/v1.41/build?remote=https://example.test/ctx.tar", false, "ci"},
		{ci, "POST", "/v1.41/build?remote=client-session", true, "ci"},
		{admin, "POST", "/v1.41/build?networkmode=host", true, "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.who.Name+" "+tt.method+" "+tt.target, func(t *testing.T) {
			d := p.Decide(tt.who, classify(t, tt.method, tt.target), nil)
			if d.Allow != tt.allow {
				t.Errorf("allow: got %v, want %v (%s)", d.Allow, tt.allow, d.Message)
			}
			if d.Rule != tt.rule {
				t.Errorf("rule: got %q, want %q", d.Rule, tt.rule)
			}
			if !d.Allow && !strings.HasPrefix(d.Message, "dockmoat: client "+`"`+tt.who.Name+`"`) {
				t.Errorf("message: got %q, want it to start with dockmoat: and name the client", d.Message)
			}
			if !d.Allow && d.Status != 403 {
				t.Errorf("status: got %d, want 403", d.Status)
			}
		})
	}
}

func TestRuleSelection(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: ci-runners
    clients: ["ci-*"]
    groups: [ci]
    operations: [container.list, "volume.*"]
  - name: anyone-images
    clients: ["*"]
    operations: [image.list]
`)
	tests := []struct {
		who            identity.Identity
		method, target string
		allow          bool
		rule           string
	}{
		{identity.Identity{Name: "ci-7", Groups: []string{"ci"}}, "GET", "/containers/json", true, "ci-runners"},
		{identity.Identity{Name: "ci-7", Groups: []string{"ci"}}, "DELETE", "/volumes/v1", true, "ci-runners"},
		{identity.Identity{Name: "ci-7"}, "GET", "/containers/json", false, DefaultDenyRule},
		{identity.Identity{Name: "dev", Groups: []string{"ci"}}, "GET", "/containers/json", false, DefaultDenyRule},
		{identity.Identity{Name: "dev"}, "GET", "/images/json", true, "anyone-images"},
		{identity.Identity{Name: "ci-7", Groups: []string{"ci"}}, "GET", "/networks", false, DefaultDenyRule},
	}
	for _, tt := range tests {
		t.Run(tt.who.Name+" "+tt.target, func(t *testing.T) {
			d := p.Decide(tt.who, classify(t, tt.method, tt.target), nil)
			if d.Allow != tt.allow {
				t.Errorf("allow: got %v, want %v (%s)", d.Allow, tt.allow, d.Message)
			}
			if d.Rule != tt.rule {
				t.Errorf("rule: got %q, want %q", d.Rule, tt.rule)
			}
		})
	}
}

func TestLaterRuleLiftsConstraint(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: ci-privileged
    clients: [ci-kernel]
    operations: [container.create]
    lift:
      privileged: true
`)
	body := []byte(`{"Image":"busybox","HostConfig":{"Privileged":true}}`)
	req := classify(t, "POST", "/v1.41/containers/create")

	d := p.Decide(identity.Identity{Name: "ci-kernel", Groups: []string{"ci"}}, req, body)
	if !d.Allow || d.Rule != "ci-privileged" {
		t.Errorf("ci-kernel: got allow %v rule %q, want allow by ci-privileged (%s)", d.Allow, d.Rule, d.Message)
	}
	d = p.Decide(identity.Identity{Name: "ci-1", Groups: []string{"ci"}}, req, body)
	if d.Allow {
		t.Fatalf("ci-1: got allow by %q, want deny", d.Rule)
	}
	if d.Rule != "ci" || d.Field != "HostConfig.Privileged" {
		t.Errorf("ci-1: got rule %q field %q, want rule ci field HostConfig.Privileged", d.Rule, d.Field)
	}
	want := `dockmoat: client "ci-1" may not call container.create: HostConfig.Privileged is true, which rule "ci" does not allow`
	if d.Message != want {
		t.Errorf("message: got %q, want %q", d.Message, want)
	}
}
