package daemonconf

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var testSettings = Settings{
	Socket:    "unix:///var/run/docker.sock",
	Listeners: []string{"tcp://0.0.0.0:2376"},
	CACert:    "/etc/docker/tls/ca.pem",
	Cert:      "/etc/docker/tls/server-cert.pem",
	Key:       "/etc/docker/tls/server-key.pem",
}

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("merged output is not JSON: %v\n%s", err, data)
	}
	return doc
}

func TestMergeKeepsOtherKeys(t *testing.T) {
	existing := `{"log-level": "warn", "registry-mirrors": ["https://mirror.example.test"],
		"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
		"max-concurrent-downloads": 12345678901234567890}`
	out, notes, err := Merge([]byte(existing), testSettings)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("notes = %q, want none for a file without TLS settings", notes)
	}
	doc := decode(t, out)
	if doc["log-level"] != "warn" {
		t.Errorf("log-level = %v, want warn", doc["log-level"])
	}
	if fmt.Sprint(doc["registry-mirrors"]) != "[https://mirror.example.test]" {
		t.Errorf("registry-mirrors = %v, want the mirror kept", doc["registry-mirrors"])
	}
	// A number beyond float64 precision must survive byte for byte.
	if !strings.Contains(string(out), "12345678901234567890") {
		t.Errorf("large number changed:\n%s", out)
	}
	if doc["tlsverify"] != true {
		t.Errorf("tlsverify = %v, want true", doc["tlsverify"])
	}
	if doc["tlscacert"] != testSettings.CACert || doc["tlscert"] != testSettings.Cert || doc["tlskey"] != testSettings.Key {
		t.Errorf("TLS paths = %v, %v, %v; want the settings' paths", doc["tlscacert"], doc["tlscert"], doc["tlskey"])
	}
	if fmt.Sprint(doc["hosts"]) != "[unix:///var/run/docker.sock tcp://0.0.0.0:2376]" {
		t.Errorf("hosts = %v, want the socket then the listener", doc["hosts"])
	}
}

func TestMergeReplacesUnsafeValues(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		note     string
	}{
		{"tlsverify false", `{"tlsverify": false}`, `replaced "tlsverify": false with true`},
		{"tls false", `{"tls": false}`, `removed "tls": false`},
		{"plain TCP host", `{"hosts": ["tcp://0.0.0.0:2375"]}`, `dropped host "tcp://0.0.0.0:2375"`},
		{"socket activation", `{"hosts": ["fd://"]}`, `dropped host "fd://"`},
		{"hosts not a list", `{"hosts": "tcp://0.0.0.0:2375"}`, `which is not a list of strings`},
		{"other CA", `{"tlscacert": "/old/ca.pem"}`, `replaced "tlscacert": "/old/ca.pem"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, notes, err := Merge([]byte(tt.existing), testSettings)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, tt.note) }) {
				t.Errorf("notes = %q, want one containing %q", notes, tt.note)
			}
			doc := decode(t, out)
			if doc["tlsverify"] != true {
				t.Errorf("tlsverify = %v, want true", doc["tlsverify"])
			}
			if _, ok := doc["tls"]; ok {
				t.Errorf("tls = %v, want the key removed", doc["tls"])
			}
			if strings.Contains(string(out), "2375") {
				t.Errorf("output still has the plain port 2375:\n%s", out)
			}
		})
	}
}

func TestMergeSameValuesNoNotes(t *testing.T) {
	first, _, err := Merge(nil, testSettings)
	if err != nil {
		t.Fatal(err)
	}
	second, notes, err := Merge(first, testSettings)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("notes on a second merge = %q, want none", notes)
	}
	if string(first) != string(second) {
		t.Errorf("second merge changed the file:\n%s\nwant:\n%s", second, first)
	}
}

func TestMergeRejects(t *testing.T) {
	withListener := func(l string) Settings { s := testSettings; s.Listeners = []string{l}; return s }
	withSocket := func(sock string) Settings { s := testSettings; s.Socket = sock; return s }
	relative := testSettings
	relative.Key = "server-key.pem"
	tests := []struct {
		name     string
		existing string
		settings Settings
		want     string
	}{
		{"array document", `[1]`, testSettings, "not a JSON object"},
		{"null document", `null`, testSettings, "is null"},
		{"broken JSON", `{"a":`, testSettings, "not a JSON object"},
		{"no listener", `{}`, withListener(""), "invalid listener"},
		{"listener without port", `{}`, withListener("tcp://0.0.0.0"), "explicit port"},
		{"listener port zero", `{}`, withListener("tcp://0.0.0.0:0"), "want 1 to 65535"},
		{"http listener", `{}`, withListener("http://0.0.0.0:2376"), "want tcp://HOST:PORT"},
		{"listener with path", `{}`, withListener("tcp://0.0.0.0:2376/x"), "want tcp://HOST:PORT"},
		{"tcp socket", `{}`, withSocket("tcp://127.0.0.1:2375"), "want unix:///ABSOLUTE/PATH"},
		{"relative key path", `{}`, relative, "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Merge([]byte(tt.existing), tt.settings)
			if err == nil {
				t.Fatalf("Merge succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	s := testSettings
	s.Listeners = nil
	if _, _, err := Merge(nil, s); err == nil {
		t.Error("Merge without listeners succeeded, want an error")
	}
}

// FuzzMerge checks the promises Merge makes for any existing daemon.json:
// the result is a JSON object with "tlsverify": true and only the requested
// hosts.
func FuzzMerge(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `{"hosts": ["fd://", "tcp://0.0.0.0:2375"], "tls": true, "tlsverify": false}`,
		`{"a": {"b": [1, 2, {"c": null}]}}`, `[]`, `null`, `{"tlsverify": "yes"}`, `{"hosts": 5}`,
		`{"a": 1, "a": 2}`, "\ufeff{\"debug\": true}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, existing []byte) {
		out, _, err := Merge(existing, testSettings)
		if err != nil {
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("output is not a JSON object: %v\n%s", err, out)
		}
		if doc["tlsverify"] != true {
			t.Fatalf("tlsverify = %v, want true", doc["tlsverify"])
		}
		if _, ok := doc["tls"]; ok {
			t.Fatalf("tls key kept: %v", doc["tls"])
		}
		if got := fmt.Sprint(doc["hosts"]); got != "[unix:///var/run/docker.sock tcp://0.0.0.0:2376]" {
			t.Fatalf("hosts = %s, want only the socket and the listener", got)
		}
	})
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`/usr/bin/dockerd -H fd://`, []string{"/usr/bin/dockerd", "-H", "fd://"}},
		{`/usr/bin/dockerd   --label "a b"  'c d'`, []string{"/usr/bin/dockerd", "--label", "a b", "c d"}},
		{`/usr/bin/dockerd --x=a\ b`, []string{"/usr/bin/dockerd", "--x=a b"}},
		{`/usr/bin/dockerd ""`, []string{"/usr/bin/dockerd", ""}},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if err != nil {
			t.Errorf("SplitCommand(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, err := SplitCommand(`dockerd "open`); err == nil {
		t.Error("SplitCommand with an open quote succeeded, want an error")
	}
}

// FuzzSplitCommand checks that words written back with quoteWord, as the
// drop-in writes them, split into the same words.
func FuzzSplitCommand(f *testing.F) {
	for _, seed := range []string{`/usr/bin/dockerd -H fd://`, `a "b c" 'd' e\ f`, `"`, `\`, `a""b`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := SplitCommand(line)
		if err != nil || strings.ContainsAny(line, "\n\r") {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quoteWord(w)
		}
		again, err := SplitCommand(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("quoted words %q do not split: %v", quoted, err)
		}
		if !slices.Equal(words, again) {
			t.Fatalf("round trip of %q = %q, want %q", line, again, words)
		}
	})
}

func TestParseFlags(t *testing.T) {
	args := []string{"-H", "fd://", "--containerd=/run/c.sock", "--tlsverify", "-Hunix:///x.sock",
		"--host", "tcp://0.0.0.0:2375", "-D", "$DOCKER_OPTS", "--log-level", "info"}
	var got []string
	for _, f := range ParseFlags(args) {
		got = append(got, f.Key()+"="+f.Value)
	}
	want := []string{"hosts=fd://", "containerd=/run/c.sock", "tlsverify=", "hosts=unix:///x.sock",
		"hosts=tcp://0.0.0.0:2375", "debug=", "=", "log-level=info"}
	if !slices.Equal(got, want) {
		t.Errorf("ParseFlags = %q, want %q", got, want)
	}
}

func TestUnitParseAppliesResets(t *testing.T) {
	u := &Unit{}
	unit := "[Unit]\nRequires=docker.socket containerd.service\n[Service]\n" +
		"ExecStart=/usr/bin/dockerd -H fd:// \\\n  --containerd=/run/c.sock\n" +
		"EnvironmentFile=-/etc/default/docker\n"
	if err := u.Parse("docker.service", []byte(unit)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(u.ExecStart, " "); got != "/usr/bin/dockerd -H fd:// --containerd=/run/c.sock" {
		t.Errorf("ExecStart = %q, want the continued line joined", got)
	}
	if !u.usesSocketActivation() {
		t.Error("unit requiring docker.socket not seen as socket activated")
	}
	if !slices.Equal(u.EnvironmentFiles, []string{"/etc/default/docker"}) {
		t.Errorf("EnvironmentFiles = %q, want /etc/default/docker without the - prefix", u.EnvironmentFiles)
	}
	dropIn := "[Service]\nExecStart=\nExecStart=/opt/dockerd --debug\n"
	if err := u.Parse("override.conf", []byte(dropIn)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(u.ExecStart, " "); got != "/opt/dockerd --debug" {
		t.Errorf("ExecStart after the drop-in = %q, want the drop-in's command", got)
	}
	if err := u.Parse("bad.conf", []byte("[Service\n")); err == nil {
		t.Error("Parse of a broken section header succeeded, want an error")
	}
	if err := u.Parse("bad.conf", []byte("[Service]\njust words\n")); err == nil {
		t.Error("Parse of a line without = succeeded, want an error")
	}
}

func TestPlanUnits(t *testing.T) {
	service := &Unit{}
	if err := service.Parse("docker.service", []byte(
		"[Service]\nExecStart=/usr/bin/dockerd -H fd:// --tlsverify --config-file /etc/docker/custom.json --label \"a b\"\n")); err != nil {
		t.Fatal(err)
	}
	socket := &Unit{}
	if err := socket.Parse("docker.socket", []byte("[Socket]\nListenStream=/run/docker.sock\nListenStream=0.0.0.0:2375\n")); err != nil {
		t.Fatal(err)
	}
	plan := PlanUnits(service, socket, []string{"hosts", "tlsverify", "tlscacert", "tlscert", "tlskey"})

	want := "ExecStart=\nExecStart=/usr/bin/dockerd --config-file /etc/docker/custom.json --label \"a b\"\n"
	if !strings.HasSuffix(plan.ServiceDropIn, want) {
		t.Errorf("service drop-in =\n%s\nwant it to end with\n%s", plan.ServiceDropIn, want)
	}
	if plan.DaemonJSONPath != "/etc/docker/custom.json" {
		t.Errorf("daemon.json path = %q, want the --config-file value", plan.DaemonJSONPath)
	}
	for _, part := range []string{`"-H fd://"`, "no sockets found via socket activation", `"--tlsverify"`, "ListenStream=0.0.0.0:2375"} {
		if !slices.ContainsFunc(plan.Findings, func(f string) bool { return strings.Contains(f, part) }) {
			t.Errorf("findings = %q, want one containing %q", plan.Findings, part)
		}
	}
	if !strings.HasSuffix(plan.SocketDropIn, "ListenStream=\nListenStream=/run/docker.sock\n") {
		t.Errorf("socket drop-in =\n%s\nwant only the unix socket kept", plan.SocketDropIn)
	}
}

func TestPlanUnitsWithoutUnits(t *testing.T) {
	plan := PlanUnits(nil, nil, []string{"hosts"})
	if !strings.Contains(plan.ServiceDropIn, "ExecStart="+DefaultDockerd+"\n") {
		t.Errorf("service drop-in =\n%s\nwant the default dockerd", plan.ServiceDropIn)
	}
	if plan.SocketDropIn != "" || len(plan.Findings) != 0 {
		t.Errorf("socket drop-in %q and findings %q, want neither", plan.SocketDropIn, plan.Findings)
	}
	if plan.DaemonJSONPath != DefaultDaemonJSON {
		t.Errorf("daemon.json path = %q, want %q", plan.DaemonJSONPath, DefaultDaemonJSON)
	}
}
