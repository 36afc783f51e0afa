package gateway

import (
	"net/http"
	"testing"
)

func TestHopHeadersDropped(t *testing.T) {
	t.Run("copy", func(t *testing.T) {
		src := hopTestHeader()
		dst := http.Header{}
		copyHeader(dst, src)
		checkHopHeadersDropped(t, dst, hopTestHeader())
	})
	t.Run("remove", func(t *testing.T) {
		h := hopTestHeader()
		removeHopHeaders(h)
		checkHopHeadersDropped(t, h, hopTestHeader())
	})
}

// hopTestHeader returns a request header with every kind of hop-by-hop
// field and three end-to-end fields.
func hopTestHeader() http.Header {
	return http.Header{
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
}

// checkHopHeadersDropped checks that dst has none of the hop-by-hop fields
// of src and all of its end-to-end fields.
func checkHopHeadersDropped(t *testing.T, dst, src http.Header) {
	t.Helper()
	for _, name := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Session"} {
		if v, ok := dst[name]; ok {
			t.Errorf("header %s = %q want it dropped", name, v)
		}
	}
	for _, name := range []string{"Content-Type", "X-Registry-Auth", "User-Agent"} {
		if got, want := dst.Get(name), src.Get(name); got != want {
			t.Errorf("header %s = %q want %q", name, got, want)
		}
	}
}
