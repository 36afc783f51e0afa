package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/identity"
)

var ciClient = identity.Identity{Name: "ci-1", Groups: []string{"ci"}}

// typicalCreateBody is a container create body as the docker CLI sends it
// for "docker run busybox echo hi": every field present, falsy values
// explicit.
const typicalCreateBody = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,` +
	`"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":[],"Cmd":["echo","hi"],` +
	`"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},` +
	`"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default",` +
	`"PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"",` +
	`"VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],` +
	`"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,` +
	`"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,` +
	`"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,` +
	`"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],` +
	`"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,` +
	`"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,` +
	`"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,` +
	`"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,` +
	`"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}`

func TestInspectCreate(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: builder
    clients: [builder]
    presets: [ci]
    images: ["localhost/*", busybox]
    lift:
      capabilities: [NET_ADMIN]
      bind_paths: [/srv/ci]
      sysctls: ["net.ipv4.*"]
      namespaces: [pid]
`)
	builder := identity.Identity{Name: "builder"}
	tests := []struct {
		name  string
		who   identity.Identity
		body  string
		allow bool
		field string
	}{
		{"typical CLI body", ciClient, typicalCreateBody, true, ""},
		{"empty body", ciClient, ``, true, ""},
		{"falsy values", ciClient, `{"Image":"x","HostConfig":{"Privileged":false,"CapAdd":null,"Binds":[],"Devices":null,"PidMode":"","SecurityOpt":null}}`, true, ""},
		{"named volume", ciClient, `{"Image":"x","HostConfig":{"Binds":["data:/data:ro","/anon"]}}`, true, ""},
		{"default capability", ciClient, `{"Image":"x","HostConfig":{"CapAdd":["chown","CAP_NET_BIND_SERVICE"]}}`, true, ""},
		{"no-new-privileges", ciClient, `{"Image":"x","HostConfig":{"SecurityOpt":["no-new-privileges:true"]}}`, true, ""},
		{"tmpfs mount", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/tmp"}]}}`, true, ""},
		{"bridge network", ciClient, `{"Image":"x","HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}`, true, ""},

		{"privileged", ciClient, `{"Image":"x","HostConfig":{"Privileged":true}}`, false, "HostConfig.Privileged"},
		{"privileged lower case", ciClient, `{"Image":"x","hostconfig":{"privileged":true}}`, false, "HostConfig.Privileged"},
		{"privileged at top level", ciClient, `{"Image":"x","Privileged":true}`, false, "Privileged"},
		{"host bind at top level", ciClient, `{"Image":"x","Binds":["/:/host"]}`, false, "Binds[0]"},
		{"scanner body", ciClient, `{"Image":"alpine","HostConfig":{"Binds":["/:/host"],"Privileged":true,"PidMode":"host"}}`, false, "HostConfig.Privileged"},
		{"host bind", ciClient, `{"Image":"x","HostConfig":{"Binds":["/etc:/host/etc:ro"]}}`, false, "HostConfig.Binds[0]"},
		{"host bind dotted", ciClient, `{"Image":"x","HostConfig":{"Binds":["/srv/ci/../../:/h"]}}`, false, "HostConfig.Binds[0]"},
		{"bind too many parts", ciClient, `{"Image":"x","HostConfig":{"Binds":["a:/b:ro:z"]}}`, false, "HostConfig.Binds[0]"},
		{"bind mount", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}`, false, "HostConfig.Mounts[0]"},
		{"bind mount upper case type", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"BIND","Source":"/","Target":"/h"}]}}`, false, "HostConfig.Mounts[0]"},
		{"unknown mount type", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"","Source":"/","Target":"/h"}]}}`, false, "HostConfig.Mounts[0].Type"},
		{"volume mount binding host", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]}}`, false, "HostConfig.Mounts[0].VolumeOptions.DriverConfig"},
		{"volume mount of host proc", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/h","VolumeOptions":{"DriverConfig":{"Options":{"type":"proc","device":"proc"}}}}]}}`, false, "HostConfig.Mounts[0].VolumeOptions.DriverConfig"},
		{"volume mount tmpfs", ciClient, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"tmpfs"}}}}]}}`, true, ""},
		{"tmpfs options", ciClient, `{"Image":"x","HostConfig":{"Tmpfs":{"/run":"rw,size=1m"}}}`, true, ""},
		{"tmpfs bind option", ciClient, `{"Image":"x","HostConfig":{"Tmpfs":{"/mnt":"rbind,exec"}}}`, false, "HostConfig.Tmpfs"},
		{"host pid", ciClient, `{"Image":"x","HostConfig":{"PidMode":"host"}}`, false, "HostConfig.PidMode"},
		{"host network", ciClient, `{"Image":"x","HostConfig":{"NetworkMode":"host"}}`, false, "HostConfig.NetworkMode"},
		{"host network upper case", ciClient, `{"Image":"x","HostConfig":{"NetworkMode":"HOST"}}`, false, "HostConfig.NetworkMode"},
		{"host network endpoint", ciClient, `{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"host":{}}}}`, false, "NetworkingConfig.EndpointsConfig"},
		{"host ipc", ciClient, `{"Image":"x","HostConfig":{"IpcMode":"host"}}`, false, "HostConfig.IpcMode"},
		{"host uts", ciClient, `{"Image":"x","HostConfig":{"UTSMode":"host"}}`, false, "HostConfig.UTSMode"},
		{"host userns", ciClient, `{"Image":"x","HostConfig":{"UsernsMode":"host"}}`, false, "HostConfig.UsernsMode"},
		{"host cgroupns", ciClient, `{"Image":"x","HostConfig":{"CgroupnsMode":"host"}}`, false, "HostConfig.CgroupnsMode"},
		{"joins container pid", ciClient, `{"Image":"x","HostConfig":{"PidMode":"container:abc"}}`, false, "HostConfig.PidMode"},
		{"volumes from", ciClient, `{"Image":"x","HostConfig":{"VolumesFrom":["admin-box:ro"]}}`, false, "HostConfig.VolumesFrom[0]"},
		{"added capability", ciClient, `{"Image":"x","HostConfig":{"CapAdd":["SYS_ADMIN"]}}`, false, "HostConfig.CapAdd[0]"},
		{"all capabilities", ciClient, `{"Image":"x","HostConfig":{"CapAdd":["ALL"]}}`, false, "HostConfig.CapAdd[0]"},
		{"legacy capabilities", ciClient, `{"Image":"x","HostConfig":{"Capabilities":["CAP_SYS_ADMIN"]}}`, false, "HostConfig.Capabilities"},
		{"devices", ciClient, `{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}}`, false, "HostConfig.Devices"},
		{"device cgroup rules", ciClient, `{"Image":"x","HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}}`, false, "HostConfig.DeviceCgroupRules"},
		{"device requests", ciClient, `{"Image":"x","HostConfig":{"DeviceRequests":[{"Count":-1}]}}`, false, "HostConfig.DeviceRequests"},
		{"seccomp unconfined", ciClient, `{"Image":"x","HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}`, false, "HostConfig.SecurityOpt[0]"},
		{"apparmor unconfined legacy", ciClient, `{"Image":"x","HostConfig":{"SecurityOpt":["apparmor:unconfined"]}}`, false, "HostConfig.SecurityOpt[0]"},
		{"label disable", ciClient, `{"Image":"x","HostConfig":{"SecurityOpt":["label=disable"]}}`, false, "HostConfig.SecurityOpt[0]"},
		{"masked paths emptied", ciClient, `{"Image":"x","HostConfig":{"MaskedPaths":[]}}`, false, "HostConfig.MaskedPaths"},
		{"readonly paths emptied", ciClient, `{"Image":"x","HostConfig":{"ReadonlyPaths":[]}}`, false, "HostConfig.ReadonlyPaths"},
		{"sysctl", ciClient, `{"Image":"x","HostConfig":{"Sysctls":{"kernel.shm_rmid_forced":"1"}}}`, false, "HostConfig.Sysctls"},
		{"duplicate key", ciClient, `{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}`, false, "body"},
		{"duplicate key kelvin", ciClient, `{"Image":"x","Labels":{"k":"1","\u212a":"2"}}`, false, "body"},
		{"duplicate key long s", ciClient, `{"Image":"x","HostConfig":{"Binds":null,"Bind\u017f":["/:/h"]}}`, false, "body"},
		{"duplicate top-level", ciClient, `{"Image":"x","HostConfig":{},"HOSTCONFIG":{"Privileged":true}}`, false, "body"},
		{"trailing data", ciClient, `{"Image":"x"} {"HostConfig":{"Privileged":true}}`, false, "body"},
		{"invalid JSON", ciClient, `{"Image":"x",`, false, "body"},
		{"end after HostConfig key", ciClient, `{"Image":"x","HostConfig":`, false, "body"},
		{"wrong type", ciClient, `{"Image":"x","HostConfig":{"Privileged":"true"}}`, false, "body"},

		{"lifted capability", builder, `{"Image":"busybox","HostConfig":{"CapAdd":["NET_ADMIN"]}}`, true, ""},
		{"lifted bind", builder, `{"Image":"busybox","HostConfig":{"Binds":["/srv/ci/work:/w"]}}`, true, ""},
		{"lifted bind prefix only", builder, `{"Image":"busybox","HostConfig":{"Binds":["/srv/cient:/w"]}}`, false, "HostConfig.Binds[0]"},
		{"lifted bind escape", builder, `{"Image":"busybox","HostConfig":{"Binds":["/srv/ci/../../etc:/w"]}}`, false, "HostConfig.Binds[0]"},
		{"lifted sysctl", builder, `{"Image":"busybox","HostConfig":{"Sysctls":{"net.ipv4.ip_forward":"1"}}}`, true, ""},
		{"lifted pid", builder, `{"Image":"busybox","HostConfig":{"PidMode":"host"}}`, true, ""},
		{"not lifted network", builder, `{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}`, false, "HostConfig.NetworkMode"},
		{"allowed image", builder, `{"Image":"localhost/app:1"}`, true, ""},
		{"allowed image digest", builder, `{"Image":"busybox@sha256:abc"}`, true, ""},
		{"other image", builder, `{"Image":"alpine"}`, false, "Image"},
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

func TestInspectOtherBodies(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
    operations: [container.update]
`)
	tests := []struct {
		name           string
		method, target string
		body           string
		allow          bool
		field          string
	}{
		{"exec", "POST", "/v1.41/containers/c/exec", `{"Cmd":["sh"],"Privileged":false}`, true, ""},
		{"privileged exec", "POST", "/v1.41/containers/c/exec", `{"Cmd":["sh"],"Privileged":true}`, false, "Privileged"},
		{"privileged exec mixed case", "POST", "/v1.41/containers/c/exec", `{"Cmd":["sh"],"pRIVILEGED":true}`, false, "Privileged"},
		{"exec duplicate", "POST", "/v1.41/containers/c/exec", `{"Privileged":false,"Privileged":true}`, false, "body"},
		{"volume", "POST", "/v1.41/volumes/create", `{"Name":"v"}`, true, ""},
		{"tmpfs volume", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}}`, true, ""},
		{"volume binding host", "POST", "/v1.41/volumes/create", `{"Name":"v","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"}}`, false, "DriverOpts"},
		{"volume block device", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"ext4","device":"/dev/sda1"}}`, false, "DriverOpts"},
		{"volume rbind upper case", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"O":"RBIND"}}`, false, "DriverOpts"},
		{"volume size only", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"size":"10m"}}`, true, ""},
		{"volume overlay of host folders", "POST", "/v1.41/volumes/create",
			`{"Name":"v","DriverOpts":{"type":"overlay","device":"overlay","o":"lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"}}`, false, "DriverOpts"},
		{"volume host proc", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"proc","device":"proc"}}`, false, "DriverOpts"},
		{"volume host sysfs", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"sysfs","device":"sysfs"}}`, false, "DriverOpts"},
		{"volume relative block device", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"ext4","device":"dev/vda1"}}`, false, "DriverOpts"},
		{"volume relative bind", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"etc"}}`, false, "DriverOpts"},
		{"volume tmpfs bind", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"tmpfs","o":"size=1m,bind","device":"/"}}`, false, "DriverOpts"},
		{"volume nfs", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"type":"nfs","o":"addr=127.0.0.1","device":":/"}}`, false, "DriverOpts"},
		{"volume unknown option key", "POST", "/v1.41/volumes/create", `{"Name":"v","DriverOpts":{"Device":"/"}}`, false, "DriverOpts"},
		{"volume other driver", "POST", "/v1.41/volumes/create", `{"Name":"v","Driver":"nfs-plugin","DriverOpts":{"share":"x:/"}}`, true, ""},
		{"update", "POST", "/v1.41/containers/c/update", `{"Memory":1000000}`, true, ""},
		{"update devices", "POST", "/v1.41/containers/c/update", `{"Devices":[{"PathOnHost":"/dev/mem"}]}`, false, "Devices"},
		{"network connect", "POST", "/v1.41/networks/n/connect", `{"Container":"c"}`, true, ""},
		{"network create duplicate", "POST", "/v1.41/networks/create", `{"Name":"a","name":"b"}`, false, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(ciClient, classify(t, tt.method, tt.target), []byte(tt.body))
			if d.Allow != tt.allow {
				t.Errorf("allow: got %v, want %v (%s)", d.Allow, tt.allow, d.Message)
			}
			if d.Field != tt.field {
				t.Errorf("field: got %q, want %q", d.Field, tt.field)
			}
		})
	}
}

func TestOwnershipDecision(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
    ownership: true
`)
	t.Run("create adds label", func(t *testing.T) {
		body := `{"Image":"x","labels":{"dockmoat.owner":"someone-else","a":"b"}}`
		d := p.Decide(ciClient, classify(t, "POST", "/v1.41/containers/create"), []byte(body))
		if !d.Allow {
			t.Fatalf("got deny: %s", d.Message)
		}
		var got struct{ Labels map[string]string }
		if err := json.Unmarshal(d.Body, &got); err != nil {
			t.Fatalf("rewritten body %s: %v", d.Body, err)
		}
		if got.Labels[OwnerLabel] != "ci-1" {
			t.Errorf("owner label: got %q, want %q", got.Labels[OwnerLabel], "ci-1")
		}
		if got.Labels["a"] != "b" {
			t.Errorf("label a: got %q, want %q", got.Labels["a"], "b")
		}
		if err := checkJSONKeys(d.Body); err != nil {
			t.Errorf("rewritten body has duplicate keys: %v", err)
		}
	})
	t.Run("list adds filter", func(t *testing.T) {
		d := p.Decide(ciClient, classify(t, "GET", `/v1.41/containers/json?filters=%7B%22status%22%3A%5B%22running%22%5D%7D`), nil)
		if !d.Allow {
			t.Fatalf("got deny: %s", d.Message)
		}
		want := `{"label":{"dockmoat.owner=ci-1":true},"status":{"running":true}}`
		if got := d.Query.Get("filters"); got != want {
			t.Errorf("filters: got %s, want %s", got, want)
		}
	})
	t.Run("events add filter", func(t *testing.T) {
		d := p.Decide(ciClient, classify(t, "GET", `/v1.41/events?since=1&filters=%7B%22type%22%3A%5B%22container%22%5D%7D`), nil)
		if !d.Allow {
			t.Fatalf("got deny: %s", d.Message)
		}
		want := `{"label":{"dockmoat.owner=ci-1":true},"type":{"container":true}}`
		if got := d.Query.Get("filters"); got != want {
			t.Errorf("filters: got %s, want %s", got, want)
		}
		if got := d.Query.Get("since"); got != "1" {
			t.Errorf("since: got %q, want 1", got)
		}
	})
	t.Run("path target", func(t *testing.T) {
		d := p.Decide(ciClient, classify(t, "POST", "/v1.41/containers/abc/start"), nil)
		if d.Owner != "ci-1" || len(d.Containers) != 1 || d.Containers[0].ID != "abc" {
			t.Errorf("got owner %q containers %v, want ci-1 and [abc]", d.Owner, d.Containers)
		}
	})
	t.Run("exec target", func(t *testing.T) {
		d := p.Decide(ciClient, classify(t, "POST", "/v1.41/exec/e1/start"), nil)
		if d.Exec != "e1" {
			t.Errorf("exec: got %q, want e1", d.Exec)
		}
	})
	t.Run("links become references", func(t *testing.T) {
		body := `{"Image":"x","HostConfig":{"Links":["/db:db"]}}`
		d := p.Decide(ciClient, classify(t, "POST", "/v1.41/containers/create"), []byte(body))
		if !d.Allow {
			t.Fatalf("got deny: %s", d.Message)
		}
		if len(d.Containers) != 1 || d.Containers[0].ID != "db" || d.Containers[0].Field != "HostConfig.Links[0]" {
			t.Errorf("containers: got %v, want db from HostConfig.Links[0]", d.Containers)
		}
	})
	t.Run("volumes from becomes reference", func(t *testing.T) {
		body := `{"Image":"x","HostConfig":{"VolumesFrom":["data:ro"],"NetworkMode":"container:web"}}`
		d := p.Decide(ciClient, classify(t, "POST", "/v1.41/containers/create"), []byte(body))
		if !d.Allow {
			t.Fatalf("got deny: %s", d.Message)
		}
		var ids []string
		for _, ref := range d.Containers {
			ids = append(ids, ref.ID)
		}
		if got := strings.Join(ids, ","); got != "web,data" {
			t.Errorf("containers: got %s, want web,data", got)
		}
	})
}

func TestCheckJSONKeys(t *testing.T) {
	tests := []struct {
		body    string
		wantErr bool
	}{
		{`{}`, false},
		{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, false},
		{`{"a":"\"}","b":1}`, false},
		{`{"a":1,"A":2}`, true},
		{`{"x":[{"a":1,"a":2}]}`, true},
		{`{"\u0061":1,"a":2}`, true},
		{`{"a":1}x`, true},
		{`{"a":1`, true},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), true},
		{` {"a":[-0.5e+3,0,1E2,true,false,null,"\u00e9\n\"\\\/","é"]} `, false},
		{``, true},
		{`{"a":tru}`, true},
		{`{"a":nul}`, true},
		{`{"a":01}`, true},
		{`{"a":1.}`, true},
		{`{"a":.5}`, true},
		{`{"a":-}`, true},
		{`{"a":1e}`, true},
		{`{"a":+1}`, true},
		{`{"a":"` + "\t" + `"}`, true},
		{`{"a":"\q"}`, true},
		{`{"a":"\u12"}`, true},
		{`{"a":"\u12g4"}`, true},
		{`{"a":1,}`, true},
		{`{"a" 1}`, true},
		{`[1,]`, true},
		{"\ufeff{}", true},
	}
	for _, tt := range tests {
		err := checkJSONKeys([]byte(tt.body))
		if gotErr := err != nil; gotErr != tt.wantErr {
			t.Errorf("checkJSONKeys(%s): got error %v, want error: %v", tt.body, err, tt.wantErr)
		}
		if err == nil && !json.Valid([]byte(tt.body)) {
			t.Errorf("checkJSONKeys(%s) accepts what json.Valid rejects", tt.body)
		}
	}
}

func TestImageNames(t *testing.T) {
	p := mustParse(t, `
rules:
  - name: scoped
    clients: [scoped]
    presets: [ci]
    images: ["localhost/*"]
  - name: ci
    groups: [ci]
    presets: [ci]
`)
	scoped := identity.Identity{Name: "scoped"}
	tests := []struct {
		name   string
		who    identity.Identity
		target string
		allow  bool
		field  string
	}{
		{"build allowed tag", scoped, "/v1.41/build?t=localhost/app:1", true, ""},
		{"build untagged", scoped, "/v1.41/build", true, ""},
		{"build other tag", scoped, "/v1.41/build?t=busybox:latest", false, "t"},
		{"build second tag", scoped, "/v1.41/build?t=localhost/app&t=busybox", false, "t"},
		{"tag allowed repo", scoped, "/v1.41/images/abc/tag?repo=localhost/app&tag=2", true, ""},
		{"tag other repo", scoped, "/v1.41/images/abc/tag?repo=busybox&tag=latest", false, "repo"},
		{"tag without images", ciClient, "/v1.41/images/abc/tag?repo=busybox&tag=latest", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.who, classify(t, "POST", tt.target), nil)
			if d.Allow != tt.allow {
				t.Errorf("allow: got %v, want %v (%s)", d.Allow, tt.allow, d.Message)
			}
			if d.Field != tt.field {
				t.Errorf("field: got %q, want %q", d.Field, tt.field)
			}
		})
	}
}
