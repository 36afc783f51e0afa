package gateway

import (
	"net/http"
	"testing"
)

func TestCopyRequestHeaderDropsHopHeaders(t *testing.T) {
	src := http.Header{
		"Connection":          {"keep-alive, X-Session"},
		"Proxy-Connection":    {"keep-alive"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"Basic eA=="},
		"Te":                  {"trailers"},
		"Trailer":             {"X-Sum"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"tcp"},
		"X-Session":           {"named in Connection"},
		"Content-Type":        {"application/json"},
		"X-Registry-Auth":     {"e30="},
		"User-Agent":          {"Docker-Client/28.0.1 (linux)"},
	}
	dst := http.Header{}
	copyRequestHeader(dst, src)

	for _, name := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Session"} {
		if v, ok := dst[name]; ok {
			t.Errorf("header %s = %q after copy, want it dropped", name, v)
		}
	}
	for _, name := range []string{"Content-Type", "X-Registry-Auth", "User-Agent"} {
		if got, want := dst.Get(name), src.Get(name); got != want {
			t.Errorf("header %s = %q after copy, want %q", name, got, want)
		}
	}
}
