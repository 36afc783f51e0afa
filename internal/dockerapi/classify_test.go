package dockerapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// samplePath fills a route template with sample values.
func samplePath(r *Route) string {
	value := "c0ffee"
	if r.kind == manySegments {
		value = "registry.example:5000/team/app:1.0"
	}
	path := strings.Replace(r.Template, "{id}", value, 1)
	path = strings.Replace(path, "{name}", value, 1)
	return strings.Replace(path, "{checkpoint}", "cp1", 1)
}

func TestClassifyEveryRoute(t *testing.T) {
	for i := range Routes {
		route := &Routes[i]
		if route.MaxVersion != "" || route.Template == "/containers/{id}/checkpoints/{checkpoint}" {
			continue
		}
		// Without fromImage, dockerd imports instead of pulling.
		query := ""
		if route.Operation == "image.pull" {
			query = "?fromImage=busybox"
		}
		for _, prefix := range []string{"", "/v1.24", "/v1.41", "/v1.52"} {
			target := prefix + samplePath(route)
			t.Run(route.Method+" "+target, func(t *testing.T) {
				req, err := ClassifyTarget(route.Method, target+query)
				if err != nil {
					t.Fatalf("ClassifyTarget: %v", err)
				}
				if req.Route != route {
					t.Errorf("route: got %s %s, want %s %s", req.Route.Method, req.Route.Template, route.Method, route.Template)
				}
				if req.Operation != route.Operation {
					t.Errorf("operation: got %q, want %q", req.Operation, route.Operation)
				}
				if got, want := req.CanonicalPath(), target; got != want {
					t.Errorf("canonical path: got %q, want %q", got, want)
				}
			})
		}
	}
}

func TestClassifyExamples(t *testing.T) {
	tests := []struct {
		method, target string
		operation      string
		version        string
		value          string
	}{
		{"GET", "/_ping", "system.ping", "", ""},
		{"HEAD", "/v1.41/_ping", "system.ping", "1.41", ""},
		{"GET", "/v1.41/containers/json?all=1", "container.list", "1.41", ""},
		{"POST", "/v1.41/containers/create?name=web", "container.create", "1.41", ""},
		{"GET", "/v1.41/containers/web/archive?path=/etc", "container.archive.read", "1.41", "web"},
		{"PUT", "/containers/web/archive?path=/", "container.archive.write", "", "web"},
		{"HEAD", "/containers/web/archive?path=/", "container.archive.stat", "", "web"},
		{"GET", "/images/library/busybox:latest/json", "image.inspect", "", "library/busybox:latest"},
		{"GET", "/images/json/json", "image.inspect", "", "json"},
		{"DELETE", "/images/a/b@sha256:00", "image.remove", "", "a/b@sha256:00"},
		{"POST", "/images/create?fromImage=busybox&tag=latest", "image.pull", "", ""},
		{"POST", "/images/create?fromSrc=-", "image.import", "", ""},
		{"POST", "/images/create?fromSrc=http://example.test/x.tar", "image.import", "", ""},
		{"POST", "/images/create?repo=x&tag=y", "image.import", "", ""},
		{"POST", "/images/create?fromImage=&fromImage=busybox", "image.import", "", ""},
		{"POST", "/images/create?fromImage=busybox&fromSrc=-", "image.pull", "", ""},
		{"GET", "/images/get?names=busybox", "image.save", "", ""},
		{"POST", "/exec/abc/start", "exec.start", "", "abc"},
		{"GET", "/volumes/create", "volume.inspect", "", "create"},
		{"POST", "/session", "session", "", ""},
		{"POST", "/grpc", "grpc", "", ""},
		{"POST", "/build?networkmode=host", "image.build", "", ""},
		{"GET", "/containers/%77eb/json", "container.inspect", "", "web"},
		{"GET", "/v1.99/info", "system.info", "1.99", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			req, err := ClassifyTarget(tt.method, tt.target)
			if err != nil {
				t.Fatalf("ClassifyTarget: %v", err)
			}
			if req.Operation != tt.operation {
				t.Errorf("operation: got %q, want %q", req.Operation, tt.operation)
			}
			if req.Version != tt.version {
				t.Errorf("version: got %q, want %q", req.Version, tt.version)
			}
			if req.Target != tt.value {
				t.Errorf("target: got %q, want %q", req.Target, tt.value)
			}
		})
	}
}

func TestClassifyRejects(t *testing.T) {
	tests := []struct {
		name, method, target string
		status               int
	}{
		{"encoded slash", "GET", "/containers/a%2Fb/json", 400},
		{"encoded slash lowercase", "GET", "/v1.41/containers%2fjson", 400},
		{"encoded backslash", "GET", "/containers/a%5Cb/json", 400},
		{"dot segment", "GET", "/v1.41/../containers/json", 400},
		{"encoded dot segment", "GET", "/v1.41/%2e%2e/containers/json", 400},
		{"single dot", "GET", "/./containers/json", 400},
		{"empty segment", "GET", "//containers/json", 400},
		{"trailing slash", "GET", "/containers/json/", 400},
		{"bad escape", "GET", "/containers/%zz/json", 400},
		{"encoded NUL", "GET", "/containers/a%00/json", 400},
		{"absolute form", "GET", "http://docker/containers/json", 400},
		{"asterisk form", "OPTIONS", "*", 400},
		{"version with patch", "GET", "/v1.41.0/info", 400},
		{"version leading zero", "GET", "/v1.041/info", 400},
		{"version without minor", "GET", "/v1/info", 400},
		{"version only dots", "GET", "/v./info", 400},
		{"version too old", "POST", "/v1.23/containers/x/start", 400},
		{"copy before 1.24", "POST", "/v1.20/containers/x/copy", 400},
		{"semicolon query", "POST", "/build?t=x;networkmode=host", 400},
		{"bad query escape", "GET", "/containers/json?filters=%zz", 400},
		{"container name with slash", "GET", "/containers/a/b/json", 400},
		{"exec id with slash", "POST", "/exec/a/b/start", 400},
		{"volume name with slash", "DELETE", "/volumes/a/b", 400},
		{"checkpoint or container delete", "DELETE", "/containers/a/checkpoints/c", 400},
		{"unknown endpoint", "GET", "/debug/pprof/", 400},
		{"unknown endpoint clean", "GET", "/debug/vars", 403},
		{"wrong method", "PUT", "/containers/json", 403},
		{"upper case path", "GET", "/CONTAINERS/json", 403},
		{"copy at 1.24", "POST", "/v1.24/containers/x/copy", 403},
		{"copy unversioned", "POST", "/containers/x/copy", 403},
		{"root", "GET", "/", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ClassifyTarget(tt.method, tt.target)
			if err == nil {
				t.Fatalf("got operation %q, want an error with status %d", req.Operation, tt.status)
			}
			apiErr, ok := err.(*Error)
			if !ok {
				t.Fatalf("got error %T %v, want *Error", err, err)
			}
			if apiErr.Status != tt.status {
				t.Errorf("status: got %d (%s), want %d", apiErr.Status, apiErr.Message, tt.status)
			}
		})
	}
}

func TestClassifyContentType(t *testing.T) {
	tests := []struct {
		contentType string
		wantErr     bool
	}{
		{"", false},
		{"application/json", false},
		{"application/x-tar", false},
		{"application/x-www-form-urlencoded", true},
		{"Application/X-WWW-Form-Urlencoded; charset=utf-8", true},
		{"application/json; =broken", true},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/build?t=x", strings.NewReader("networkmode=host"))
			r.Header.Set("Content-Type", tt.contentType)
			_, err := Classify(r)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("got error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestOperationsIncludeImport(t *testing.T) {
	ops := Operations()
	found := map[string]bool{}
	for _, op := range ops {
		found[op] = true
	}
	for _, want := range []string{"image.import", "container.create", "session", "system.ping"} {
		if !found[want] {
			t.Errorf("Operations() lacks %q", want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.24", "1.24", 0},
		{"1.9", "1.24", -1},
		{"1.41", "1.24", 1},
		{"2.0", "1.99", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
