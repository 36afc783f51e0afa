package policy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// escapes reports what a container create body would do to the host if
// dockerd decoded it: json.Decoder reads the first value, keys match
// case-insensitively, the last duplicate wins, and HostConfig fields are
// also read from the top level.
func escapes(data []byte) []string {
	var body createBody
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&body); err != nil {
		return nil
	}
	var found []string
	hostConfigs := []*container.HostConfig{body.HostConfig}
	if body.Inner != nil {
		hostConfigs = append(hostConfigs, body.Inner.HostConfig)
	}
	for _, hc := range hostConfigs {
		if hc == nil {
			continue
		}
		if hc.Privileged {
			found = append(found, "privileged")
		}
		for _, bind := range hc.Binds {
			parts := strings.Split(bind, ":")
			if len(parts) >= 2 && strings.HasPrefix(parts[0], "/") {
				found = append(found, "bind "+bind)
			}
		}
		for _, m := range hc.Mounts {
			if m.Type == mount.TypeBind {
				found = append(found, "bind mount "+m.Source)
			}
		}
		modes := []string{string(hc.PidMode), string(hc.IpcMode), string(hc.NetworkMode),
			string(hc.UTSMode), string(hc.UsernsMode), string(hc.CgroupnsMode)}
		for _, mode := range modes {
			if mode == "host" {
				found = append(found, "host namespace")
			}
		}
		if len(hc.Devices) > 0 {
			found = append(found, "devices")
		}
		if !slices.Contains(localLogDrivers, hc.LogConfig.Type) && hc.LogConfig.Type != "" {
			found = append(found, "log driver "+hc.LogConfig.Type)
		}
		// An empty driver passes its options to the daemon's default
		// driver, which may be syslog.
		if _, ok := hc.LogConfig.Config["syslog-address"]; ok && hc.LogConfig.Type == "" {
			found = append(found, "log address for the default driver")
		}
	}
	if len(body.Capabilities) > 0 || (body.Inner != nil && len(body.Inner.Capabilities) > 0) {
		found = append(found, "capabilities")
	}
	return found
}

// createBodySeeds are container create bodies that seed the fuzz targets
// of inspectCreate and decodeCreateBody.
var createBodySeeds = []string{
	typicalCreateBody,
	`{"Image":"x","HostConfig":{"Privileged":true}}`,
	`{"Image":"x","privileged":true}`,
	`{"Image":"x","HostConfig":{"Binds":["/:/host"]}}`,
	`{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}`,
	`{"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}`,
	`{"Image":"x","HostConfig":{"PidMode":"host","NetworkMode":"host"}}`,
	`{"Image":"x","HostConfig":{"Bind\u017f":["/:/h"]}}`,
	`{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}]}}`,
	`{"Image":"x","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://127.0.0.1:1"}}}}`,
	`{"Image":"x","LogConfig":{"Config":{"syslog-address":"udp://127.0.0.1:1"}}}`,
}

func FuzzInspectCreate(f *testing.F) {
	for _, s := range createBodySeeds {
		f.Add([]byte(s))
	}
	p := Default()
	req, err := classifyCreate()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := p.Decide(ciClient, req, body)
		if found := escapes(body); len(found) > 0 && d.Allow {
			t.Fatalf("body %q would %v on the daemon but was allowed by rule %q", body, found, d.Rule)
		}
		if !d.Allow && !strings.HasPrefix(d.Message, "dockmoat: ") {
			t.Fatalf("denial message %q lacks the dockmoat: prefix", d.Message)
		}
	})
}

// FuzzInspectNetworkCreate checks that a ci client never gets a network
// that dockerd would attach to a host interface.
func FuzzInspectNetworkCreate(f *testing.F) {
	seeds := []string{
		`{"Name":"x","Driver":"bridge","Options":{}}`,
		`{"Name":"x","Driver":"macvlan","Options":{"parent":"lo"}}`,
		`{"Name":"x","driver":"bridge","DRIVER":"ipvlan"}`,
		`{"Name":"x","Options":{"com.docker.network.bridge.name":"eth0"}}`,
		`{"Name":"x","ConfigOnly":true,"Options":{"com.docker.network.bridge.name":"br0"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	p := Default()
	req, err := dockerapi.ClassifyTarget("POST", "/v1.41/networks/create")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := p.Decide(ciClient, req, body)
		var create network.CreateRequest
		if json.NewDecoder(bytes.NewReader(body)).Decode(&create) != nil || !d.Allow {
			return
		}
		if create.Driver == "macvlan" || create.Driver == "ipvlan" {
			t.Fatalf("body %q creates a %s network on the daemon but was allowed", body, create.Driver)
		}
		for key := range create.Options {
			if strings.EqualFold(key, bridgeNameOption) {
				t.Fatalf("body %q names the network's bridge but was allowed", body)
			}
		}
	})
}

func FuzzInspectExec(f *testing.F) {
	f.Add([]byte(`{"Cmd":["sh"],"Privileged":true}`))
	f.Add([]byte(`{"privileged":false,"PRIVILEGED":true}`))
	p := Default()
	req, err := classifyExec()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := p.Decide(ciClient, req, body)
		var exec container.ExecCreateRequest
		if json.NewDecoder(bytes.NewReader(body)).Decode(&exec) == nil && exec.Privileged && d.Allow {
			t.Fatalf("body %q is a privileged exec on the daemon but was allowed", body)
		}
	})
}

// existingEscapes reports what an existing container, described by a
// container inspect response, gives a process that runs in it.
func existingEscapes(inspect []byte) []string {
	var c existingContainer
	if json.Unmarshal(inspect, &c) != nil || c.HostConfig == nil || c.HostConfig.HostConfig == nil {
		return nil
	}
	hc := c.HostConfig
	var found []string
	if hc.Privileged {
		found = append(found, "privileged")
	}
	for _, mode := range []string{string(hc.PidMode), string(hc.IpcMode), string(hc.NetworkMode),
		string(hc.UTSMode), string(hc.UsernsMode)} {
		if mode == "host" {
			found = append(found, "host namespace")
		}
	}
	for _, m := range c.Mounts {
		if m.Type == "bind" {
			found = append(found, "bind "+m.Source)
		}
	}
	if len(hc.Devices) > 0 {
		found = append(found, "devices")
	}
	return found
}

func FuzzContainerDenial(f *testing.F) {
	seeds := []string{
		`{"Id":"c","HostConfig":{"Privileged":true}}`,
		`{"Id":"c","HostConfig":{"PidMode":"host"},"Mounts":[]}`,
		`{"Id":"c","HostConfig":{"MaskedPaths":[]},"Mounts":[{"Type":"bind","Source":"/etc"}]}`,
		`{"Id":"c","hostconfig":{"privileged":false,"Privileged":true}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	req, err := classifyExec()
	if err != nil {
		f.Fatal(err)
	}
	d := Default().Decide(ciClient, req, []byte(`{"Cmd":["sh"]}`))
	if !d.Allow || len(d.Confined) != 1 {
		f.Fatalf("exec create as ci: got allow %v confined %v, want allow with one confined container", d.Allow, d.Confined)
	}
	f.Fuzz(func(t *testing.T, inspect []byte) {
		denial, _ := d.ContainerDenial(ciClient.Name, d.Confined[0], inspect)
		if found := existingEscapes(inspect); len(found) > 0 && denial == nil {
			t.Fatalf("container %q would give exec %v but was allowed", inspect, found)
		}
		if denial != nil && !strings.HasPrefix(denial.Message, "dockmoat: ") {
			t.Fatalf("denial message %q lacks the dockmoat: prefix", denial.Message)
		}
	})
}
