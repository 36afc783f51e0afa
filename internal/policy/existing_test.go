package policy

import (
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/identity"
)

// defaultPathsJSON are the MaskedPaths and ReadonlyPaths members of the
// container inspect response of a container created without options.
const defaultPathsJSON = `"MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys",` +
	`"/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi",` +
	`"/sys/firmware"],"ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]`

func TestContainerDenial(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: builder
    clients: [builder]
    presets: [ci]
    lift:
      namespaces: [pid]
      bind_paths: [/srv/ci]
`)
	builder := identity.Identity{Name: "builder"}
	tests := []struct {
		name    string
		who     identity.Identity
		inspect string
		field   string
		volumes string
	}{
		{"plain container", ciClient, `{"Id":"c","HostConfig":{"NetworkMode":"default","CgroupnsMode":"host",` + defaultPathsJSON + `}}`, "", ""},
		{"named volume", ciClient, `{"Id":"c","HostConfig":{` + defaultPathsJSON + `},"Mounts":[{"Type":"volume","Name":"data"}]}`, "", "data"},
		{"privileged", ciClient, `{"Id":"c","HostConfig":{"Privileged":true}}`, "HostConfig.Privileged", ""},
		{"added capability", ciClient, `{"Id":"c","HostConfig":{"CapAdd":["SYS_ADMIN"],` + defaultPathsJSON + `}}`, "HostConfig.CapAdd[0]", ""},
		{"devices", ciClient, `{"Id":"c","HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}],` + defaultPathsJSON + `}}`, "HostConfig.Devices", ""},
		{"host pid", ciClient, `{"Id":"c","HostConfig":{"PidMode":"host",` + defaultPathsJSON + `}}`, "HostConfig.PidMode", ""},
		{"host network", ciClient, `{"Id":"c","HostConfig":{"NetworkMode":"host",` + defaultPathsJSON + `}}`, "HostConfig.NetworkMode", ""},
		{"other container network", ciClient, `{"Id":"c","HostConfig":{"NetworkMode":"container:x",` + defaultPathsJSON + `}}`, "HostConfig.NetworkMode", ""},
		{"seccomp unconfined", ciClient, `{"Id":"c","HostConfig":{"SecurityOpt":["seccomp=unconfined"],` + defaultPathsJSON + `}}`, "HostConfig.SecurityOpt[0]", ""},
		{"unmasked paths", ciClient, `{"Id":"c","HostConfig":{"MaskedPaths":[],"ReadonlyPaths":[]}}`, "HostConfig.MaskedPaths", ""},
		{"sysctl", ciClient, `{"Id":"c","HostConfig":{"Sysctls":{"kernel.msgmax":"1"},` + defaultPathsJSON + `}}`, "HostConfig.Sysctls", ""},
		{"host bind", ciClient, `{"Id":"c","HostConfig":{` + defaultPathsJSON + `},"Mounts":[{"Type":"bind","Source":"/etc"}]}`, "Mounts[0]", ""},
		{"npipe mount", ciClient, `{"Id":"c","HostConfig":{` + defaultPathsJSON + `},"Mounts":[{"Type":"npipe","Source":"x"}]}`, "Mounts[0]", ""},
		{"no host config", ciClient, `{"Id":"c"}`, "HostConfig", ""},
		{"invalid response", ciClient, `{"Id":`, "HostConfig", ""},
		{"lifted pid", builder, `{"Id":"c","HostConfig":{"PidMode":"host",` + defaultPathsJSON + `}}`, "", ""},
		{"lifted bind", builder, `{"Id":"c","HostConfig":{` + defaultPathsJSON + `},"Mounts":[{"Type":"bind","Source":"/srv/ci/w"}]}`, "", ""},
		{"not lifted network", builder, `{"Id":"c","HostConfig":{"NetworkMode":"host",` + defaultPathsJSON + `}}`, "HostConfig.NetworkMode", ""},
	}
	req := classify(t, "POST", "/v1.41/containers/c/exec")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.who, req, []byte(`{"Cmd":["sh"]}`))
			if !d.Allow {
				t.Fatalf("exec create: got deny %s", d.Message)
			}
			if len(d.Confined) != 1 {
				t.Fatalf("confined: got %v, want the path target", d.Confined)
			}
			denial, volumes := d.ContainerDenial(tt.who.Name, d.Confined[0], []byte(tt.inspect))
			field := ""
			if denial != nil {
				field = denial.Field
			}
			if field != tt.field {
				t.Errorf("denied field: got %q, want %q", field, tt.field)
			}
			if denial != nil && !strings.HasPrefix(denial.Message, "dockmoat: ") {
				t.Errorf("message: got %q, want the dockmoat: prefix", denial.Message)
			}
			var names []string
			for _, v := range volumes {
				names = append(names, v.ID)
			}
			if got := strings.Join(names, ","); got != tt.volumes {
				t.Errorf("volumes: got %q, want %q", got, tt.volumes)
			}
		})
	}
}

func TestExecDenial(t *testing.T) {
	p := Default()
	req := classify(t, "POST", "/v1.41/exec/e1/start")
	d := p.Decide(ciClient, req, nil)
	if !d.Allow || len(d.Confined) != 1 || d.Confined[0].Field != "exec" {
		t.Fatalf("exec start: got allow %v confined %v, want allow with the exec instance confined", d.Allow, d.Confined)
	}
	tests := []struct {
		name    string
		inspect string
		denied  bool
	}{
		{"plain", `{"ProcessConfig":{"privileged":false},"ContainerID":"c"}`, false},
		{"privileged", `{"ProcessConfig":{"privileged":true},"ContainerID":"c"}`, true},
		{"invalid", `{"ProcessConfig":`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			denial := d.ExecDenial(ciClient.Name, d.Confined[0], []byte(tt.inspect))
			if got := denial != nil; got != tt.denied {
				t.Errorf("denied: got %v, want %v", got, tt.denied)
			}
		})
	}

	admin := identity.Identity{Name: "root", Groups: []string{"admin"}}
	if d := p.Decide(admin, req, nil); len(d.Confined) != 0 {
		t.Errorf("exec start as admin: got confined %v, want none", d.Confined)
	}
}
