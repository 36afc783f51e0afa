package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/identity"
	"github.com/dockmoat/dockmoat/internal/policy"
)

var (
	ciIdentity    = identity.Identity{Name: "ci-1", Groups: []string{"ci"}}
	otherIdentity = identity.Identity{Name: "ci-2", Groups: []string{"ci"}}
)

const ownershipPolicy = `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
    ownership: true
`

// fakeContainer is the part of dockerd's container inspect response that
// fakeDocker serves.
type fakeContainer struct {
	ID         string `json:"Id"`
	Name       string
	Config     struct{ Labels map[string]string }
	HostConfig map[string]any
	Mounts     []map[string]string
}

// fakeDocker serves container, exec and volume inspect requests on a unix
// socket. Container "mine" (ID "mmm…0") belongs to ci-1 and "theirs" (ID
// "ttt…1") to ci-2. Exec "e1" runs in "mine", "e2" in "theirs", "e3" in
// "plainbox", "e4" in "hostpid", and "e5" is privileged in "plainbox".
// Volume "hostroot" binds / and volume "plain" has no options. The
// containers "hostpid", "privbox", "etcbind", "unmasked" and "hostvol"
// belong to nobody and each has one setting that the ci preset does not
// allow. Container "abc123" belongs to ci-1 and has a name that is also a
// possible ID prefix.
func fakeDocker(t *testing.T) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	containers := map[string]fakeContainer{}
	add := func(name, owner string, hostConfig map[string]any, mounts ...map[string]string) {
		// The last digit keeps IDs of names with the same first letter apart.
		id := strings.Repeat(name[:1], 63) + strconv.Itoa(len(containers)/2)
		info := fakeContainer{ID: id, Name: "/" + name, HostConfig: hostConfig, Mounts: mounts}
		if owner != "" {
			info.Config.Labels = map[string]string{policy.OwnerLabel: owner}
		}
		containers[name] = info
		containers[info.ID] = info
	}
	add("mine", "ci-1", defaultHostConfig())
	add("theirs", "ci-2", defaultHostConfig())
	add("plainbox", "", defaultHostConfig(), map[string]string{"Type": "volume", "Name": "plain"})
	add("hostpid", "", defaultHostConfig("PidMode", "host"))
	add("privbox", "", map[string]any{"Privileged": true})
	add("etcbind", "", defaultHostConfig(), map[string]string{"Type": "bind", "Source": "/etc"})
	add("unmasked", "", defaultHostConfig("MaskedPaths", []string{}))
	add("hostvol", "", defaultHostConfig(), map[string]string{"Type": "volume", "Name": "hostroot"})
	add("abc123", "ci-1", defaultHostConfig())
	execs := map[string]string{"e1": containers["mine"].ID, "e2": containers["theirs"].ID,
		"e3": containers["plainbox"].ID, "e4": containers["hostpid"].ID, "e5": containers["plainbox"].ID}
	volumes := map[string]volumeInfo{
		"hostroot": {Driver: "local", Options: map[string]string{"type": "none", "o": "bind", "device": "/"}},
		"plain":    {Driver: "local"},
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		info, ok := containers[r.PathValue("id")]
		if !ok {
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(info)
	})

	mux.HandleFunc("GET /exec/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		id, ok := execs[r.PathValue("id")]
		if !ok {
			http.Error(w, `{"message":"No such exec instance"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ContainerID": id,
			"ProcessConfig": map[string]any{"privileged": r.PathValue("id") == "e5"}})
	})
	mux.HandleFunc("GET /volumes/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, ok := volumes[r.PathValue("name")]
		if !ok {
			http.Error(w, `{"message":"no such volume"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(info)
	})

	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return socket
}

// defaultHostConfig returns the host configuration that dockerd 20.10
// reports for a container created without options, with the given
// key-value pairs set on top.
func defaultHostConfig(keyValues ...any) map[string]any {
	hc := map[string]any{
		"NetworkMode":  "default",
		"IpcMode":      "private",
		"CgroupnsMode": "host",
		"MaskedPaths": []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
		"ReadonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
	}
	for i := 0; i+1 < len(keyValues); i += 2 {
		hc[keyValues[i].(string)] = keyValues[i+1]
	}
	return hc
}

func newTestAuthorizer(t *testing.T, policyText string) *policyAuthorizer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := newPolicyAuthorizer(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("newPolicyAuthorizer: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	a.useDockerSocket(fakeDocker(t))
	return a
}

func TestAuthorizeDefaultPolicy(t *testing.T) {
	a := newTestAuthorizer(t, policy.DefaultYAML)
	tests := []struct {
		name, method, target, body string
		status                     int
		operation                  string
	}{
		{"ping", "GET", "/_ping", "", 0, "system.ping"},
		{"create", "POST", "/v1.41/containers/create", `{"Image":"busybox"}`, 0, "container.create"},
		{"privileged", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Privileged":true}}`, 403, "container.create"},
		{"encoded slash", "GET", "/v1.41/containers%2Fjson", "", 400, opRejected},
		{"unknown", "GET", "/v1.41/debug/vars", "", 403, opUnknown},
		{"archive", "GET", "/v1.41/containers/x/archive?path=/", "", 403, "container.archive.read"},
		{"new volume", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Binds":["fresh:/data"]}}`, 0, "container.create"},
		{"plain volume", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Binds":["plain:/data"]}}`, 0, "container.create"},
		{"host bind volume", "POST", "/v1.41/containers/create", `{"Image":"busybox","HostConfig":{"Binds":["hostroot:/h"]}}`, 403, "container.create"},
		{"host bind volume mount", "POST", "/v1.41/containers/create",
			`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"hostroot","Target":"/h"}]}}`, 403, "container.create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			d := a.Authorize(ciIdentity, r)
			if got := d.Status; got != tt.status {
				t.Errorf("status: got %d, want %d (%s)", got, tt.status, d.Message)
			}
			if d.Allow != (tt.status == 0) {
				t.Errorf("allow: got %v, want %v", d.Allow, tt.status == 0)
			}
			if d.Operation != tt.operation {
				t.Errorf("operation: got %q, want %q", d.Operation, tt.operation)
			}
			if !d.Allow && !strings.HasPrefix(d.Message, "dockmoat: ") {
				t.Errorf("message: got %q, want the dockmoat: prefix", d.Message)
			}
		})
	}
}

func TestAuthorizeChunkedBody(t *testing.T) {
	a := newTestAuthorizer(t, policy.DefaultYAML)
	body := `{"Image":"busybox","HostConfig":{"Privileged":false}}`
	r := httptest.NewRequest("POST", "/v1.41/containers/create", io.NopCloser(strings.NewReader(body)))
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	d := a.Authorize(ciIdentity, r)
	if !d.Allow {
		t.Fatalf("got deny: %s", d.Message)
	}
	if r.ContentLength != int64(len(body)) {
		t.Errorf("content length: got %d, want %d", r.ContentLength, len(body))
	}
	if r.TransferEncoding != nil {
		t.Errorf("transfer encoding: got %v, want none", r.TransferEncoding)
	}
	forwarded, _ := io.ReadAll(r.Body)
	if string(forwarded) != body {
		t.Errorf("forwarded body: got %s, want %s", forwarded, body)
	}
}

func TestAuthorizeBodyTooLarge(t *testing.T) {
	a := newTestAuthorizer(t, policy.DefaultYAML)
	big := `{"Image":"busybox","Env":["X=` + strings.Repeat("a", DefaultMaxInspectedBody) + `"]}`
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest("POST", "/v1.41/containers/create", strings.NewReader(big))
		if chunked {
			r.Body = io.NopCloser(strings.NewReader(big))
			r.ContentLength = -1
		}
		d := a.Authorize(ciIdentity, r)
		if d.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked %v: status got %d, want 413 (%s)", chunked, d.Status, d.Message)
		}
	}
}

func TestAuthorizeOwnership(t *testing.T) {
	a := newTestAuthorizer(t, ownershipPolicy)
	tests := []struct {
		name, method, target string
		who                  identity.Identity
		status               int
		message              string
		path                 string
	}{
		{"own container by name", "POST", "/v1.41/containers/mine/start", ciIdentity, 0, "", "/v1.41/containers/" + strings.Repeat("m", 63) + "0/start"},
		{"other container", "POST", "/v1.41/containers/theirs/start", ciIdentity, 404, "No such container: theirs", ""},
		{"missing container", "GET", "/v1.41/containers/nothing/json", ciIdentity, 404, "No such container: nothing", ""},
		{"own exec", "POST", "/v1.41/exec/e1/resize?h=1&w=1", ciIdentity, 0, "", "/v1.41/exec/e1/resize"},
		{"other exec", "POST", "/v1.41/exec/e2/resize?h=1&w=1", ciIdentity, 404, "No such exec instance: e2", ""},
		{"own exec create", "POST", "/v1.41/containers/mine/exec", ciIdentity, 0, "", "/v1.41/containers/" + strings.Repeat("m", 63) + "0/exec"},
		{"other exec create", "POST", "/v1.41/containers/theirs/exec", ciIdentity, 404, "No such container: theirs", ""},
		{"other client owns it", "POST", "/v1.41/containers/theirs/stop", otherIdentity, 0, "", "/v1.41/containers/" + strings.Repeat("t", 63) + "1/stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			d := a.Authorize(tt.who, r)
			if d.Status != tt.status {
				t.Fatalf("status: got %d, want %d (%s)", d.Status, tt.status, d.Message)
			}
			if d.Message != tt.message {
				t.Errorf("message: got %q, want %q", d.Message, tt.message)
			}
			if tt.path != "" && r.URL.Path != tt.path {
				t.Errorf("forwarded path: got %q, want %q", r.URL.Path, tt.path)
			}
		})
	}
}

func TestAuthorizeOwnershipRewrites(t *testing.T) {
	a := newTestAuthorizer(t, ownershipPolicy)

	r := httptest.NewRequest("POST", "/v1.41/containers/create", strings.NewReader(`{"Image":"busybox"}`))
	if d := a.Authorize(ciIdentity, r); !d.Allow {
		t.Fatalf("create: got deny %s", d.Message)
	}
	var created struct{ Labels map[string]string }
	forwarded, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(forwarded, &created); err != nil {
		t.Fatalf("forwarded body %s: %v", forwarded, err)
	}
	if got := created.Labels[policy.OwnerLabel]; got != "ci-1" {
		t.Errorf("owner label: got %q, want ci-1", got)
	}
	if r.ContentLength != int64(len(forwarded)) {
		t.Errorf("content length: got %d, want %d", r.ContentLength, len(forwarded))
	}

	r = httptest.NewRequest("GET", "/v1.41/containers/json?all=1", nil)
	if d := a.Authorize(ciIdentity, r); !d.Allow {
		t.Fatalf("list: got deny %s", d.Message)
	}
	if got, want := r.URL.Query().Get("filters"), `{"label":{"dockmoat.owner=ci-1":true}}`; got != want {
		t.Errorf("list filters: got %s, want %s", got, want)
	}
	if got := r.URL.Query().Get("all"); got != "1" {
		t.Errorf("list all: got %q, want 1", got)
	}
}

func TestAuthorizeReload(t *testing.T) {
	a := newTestAuthorizer(t, policy.DefaultYAML)
	list := func() bool {
		return a.Authorize(identity.Identity{Name: "x", Groups: []string{"viewers"}},
			httptest.NewRequest("GET", "/v1.41/containers/json", nil)).Allow
	}
	if list() {
		t.Fatal("group viewers may list before the reload, want deny")
	}

	viewers := policy.DefaultYAML + "  - name: viewers\n    groups: [viewers]\n    presets: [readonly]\n"
	if err := os.WriteFile(a.path, []byte(viewers), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload after a valid change", list)

	if err := os.WriteFile(a.path, []byte("rules: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * reloadDebounce)
	if !list() {
		t.Error("a broken file replaced the previous policy, want it kept")
	}
	if err := a.Reload(); err == nil {
		t.Error("Reload of a broken file: got no error")
	}
}

func TestAuthorizeExecConfined(t *testing.T) {
	a := newTestAuthorizer(t, policy.DefaultYAML)
	admin := identity.Identity{Name: "root", Groups: []string{"admin"}}
	tests := []struct {
		name, method, target string
		who                  identity.Identity
		status               int
		field                string
		path                 string
	}{
		{"exec plain container", "POST", "/v1.41/containers/plainbox/exec", ciIdentity, 0, "",
			"/v1.41/containers/" + strings.Repeat("p", 63) + "2/exec"},
		{"exec host pid", "POST", "/v1.41/containers/hostpid/exec", ciIdentity, 403, "HostConfig.PidMode", ""},
		{"exec privileged", "POST", "/v1.41/containers/privbox/exec", ciIdentity, 403, "HostConfig.Privileged", ""},
		{"exec host bind", "POST", "/v1.41/containers/etcbind/exec", ciIdentity, 403, "Mounts[0]", ""},
		{"exec unmasked", "POST", "/v1.41/containers/unmasked/exec", ciIdentity, 403, "HostConfig.MaskedPaths", ""},
		{"exec host bind volume", "POST", "/v1.41/containers/hostvol/exec", ciIdentity, 403, "Mounts[0]", ""},
		{"exec missing", "POST", "/v1.41/containers/nothing/exec", ciIdentity, 404, "", ""},
		{"attach host pid", "POST", "/v1.41/containers/hostpid/attach?stream=1&stdin=1", ciIdentity, 403, "HostConfig.PidMode", ""},
		{"attach ws privileged", "GET", "/v1.41/containers/privbox/attach/ws", ciIdentity, 403, "HostConfig.Privileged", ""},
		{"start exec in plain container", "POST", "/v1.41/exec/e3/start", ciIdentity, 0, "", "/v1.41/exec/e3/start"},
		{"start exec in host pid", "POST", "/v1.41/exec/e4/start", ciIdentity, 403, "HostConfig.PidMode", ""},
		{"start privileged exec", "POST", "/v1.41/exec/e5/start", ciIdentity, 403, "Privileged", ""},
		{"start missing exec", "POST", "/v1.41/exec/e9/start", ciIdentity, 404, "", ""},
		{"admin exec host pid", "POST", "/v1.41/containers/hostpid/exec", admin, 0, "", "/v1.41/containers/hostpid/exec"},
		{"start host pid", "POST", "/v1.41/containers/hostpid/start", ciIdentity, 0, "", "/v1.41/containers/hostpid/start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(`{"Cmd":["sh"]}`))
			d := a.Authorize(tt.who, r)
			if d.Status != tt.status {
				t.Fatalf("status: got %d, want %d (%s)", d.Status, tt.status, d.Message)
			}
			if tt.field != "" && !strings.Contains(d.Message, tt.field) {
				t.Errorf("message: got %q, want it to name %s", d.Message, tt.field)
			}
			if tt.status == 403 && !strings.HasPrefix(d.Message, "dockmoat: ") {
				t.Errorf("message: got %q, want the dockmoat: prefix", d.Message)
			}
			if tt.path != "" && r.URL.Path != tt.path {
				t.Errorf("forwarded path: got %q, want %q", r.URL.Path, tt.path)
			}
		})
	}
}

func TestAuthorizeOwnedReferenceNames(t *testing.T) {
	a := newTestAuthorizer(t, ownershipPolicy)
	fullID := strings.Repeat("a", 63) + "8"
	tests := []struct {
		name, target, body string
		status             int
	}{
		{"volumes from name", "/v1.41/containers/create", `{"Image":"x","HostConfig":{"VolumesFrom":["mine:ro"]}}`, 0},
		{"volumes from hex name", "/v1.41/containers/create", `{"Image":"x","HostConfig":{"VolumesFrom":["abc123"]}}`, 400},
		{"volumes from full ID", "/v1.41/containers/create", `{"Image":"x","HostConfig":{"VolumesFrom":["` + fullID + `"]}}`, 0},
		{"network of hex name", "/v1.41/containers/create", `{"Image":"x","HostConfig":{"NetworkMode":"container:abc123"}}`, 400},
		{"link to hex name", "/v1.41/containers/create", `{"Image":"x","HostConfig":{"Links":["abc123:db"]}}`, 400},
		{"connect hex name", "/v1.41/networks/n1/connect", `{"Container":"abc123"}`, 400},
		{"connect full ID", "/v1.41/networks/n1/connect", `{"Container":"` + fullID + `"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.body))
			d := a.Authorize(ciIdentity, r)
			if d.Status != tt.status {
				t.Fatalf("status: got %d, want %d (%s)", d.Status, tt.status, d.Message)
			}
			if tt.status == 400 && !strings.Contains(d.Message, "full ID") {
				t.Errorf("message: got %q, want it to ask for the full ID", d.Message)
			}
		})
	}
}
