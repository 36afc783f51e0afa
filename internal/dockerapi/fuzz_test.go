package dockerapi

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzClassifyTarget checks that classification never panics and that every
// accepted target is canonical: re-escaping the canonical path and
// classifying it again yields the same operation and target.
func FuzzClassifyTarget(f *testing.F) {
	seeds := []string{
		"/_ping", "/v1.41/containers/json?all=1", "/containers/a%2Fb/json",
		"/v1.41/../containers/json", "/images/library/busybox:latest/json",
		"/v1.041/info", "//containers/json", "/exec/x/start", "/build?networkmode=host",
	}
	for _, s := range seeds {
		f.Add("GET", s)
		f.Add("POST", s)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		req, err := ClassifyTarget(method, target)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("got error type %T, want *Error", err)
			}
			return
		}
		canonical := req.CanonicalPath()
		for _, segment := range strings.Split(canonical[1:], "/") {
			if segment == "" || segment == "." || segment == ".." {
				t.Fatalf("canonical path %q of %q has segment %q", canonical, target, segment)
			}
		}
		escaped := (&url.URL{Path: canonical}).EscapedPath()
		again, err := ClassifyTarget(method, escaped)
		if err != nil {
			t.Fatalf("canonical path %q of %q: %v", escaped, target, err)
		}
		if again.Operation != req.Route.Operation && again.Operation != req.Operation {
			t.Fatalf("operation of %q: got %q, first %q", escaped, again.Operation, req.Operation)
		}
		if again.Target != req.Target {
			t.Fatalf("target of %q: got %q, first %q", escaped, again.Target, req.Target)
		}
	})
}

func BenchmarkClassifyTarget(b *testing.B) {
	for b.Loop() {
		if _, err := ClassifyTarget("POST", "/v1.41/containers/create?name=web"); err != nil {
			b.Fatal(err)
		}
	}
}
