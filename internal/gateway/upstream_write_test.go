package gateway

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"testing"
)

// TestWriteRequestHead checks that writeRequestHead writes exactly what
// http.Request.Write writes for the same body-less request.
func TestWriteRequestHead(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		host   string
		header http.Header
	}{
		{"ping", "GET", "/_ping", "127.0.0.1:2376", http.Header{"User-Agent": {"Docker-Client/28.0.1 (linux)"}}},
		{"no user agent", "GET", "/v1.41/info", "localhost:2376", http.Header{}},
		{"empty user agent", "GET", "/v1.41/info", "localhost", http.Header{"User-Agent": {""}}},
		{"user agent key without values", "GET", "/v1.41/info", "localhost", http.Header{"User-Agent": nil}},
		{"user agent with spaces", "GET", "/_ping", "localhost", http.Header{"User-Agent": {"  curl/8  "}}},
		{"post without body", "POST", "/v1.41/containers/abc/start", "[::1]:2376",
			http.Header{"Content-Length": {"0"}, "Content-Type": {"application/json"}}},
		{"put without body", "PUT", "/v1.41/containers/abc/archive?path=%2Ftmp", "h", nil},
		{"delete", "DELETE", "/v1.41/containers/abc?force=1&v=1", "h", nil},
		{"escaped path", "GET", "/v1.41/images/a%2Fb/json", "h", nil},
		{"many headers", "GET", "/v1.41/events?filters=%7B%7D", "h", http.Header{
			"X-Registry-Auth": {"e30="}, "Accept": {"a", "b"}, "X-Empty": {""}, "Zz": {"1"}}},
		{"ipv6 zone", "GET", "/_ping", "[fe80::1%25eth0]:2376", nil},
		{"non-ASCII host", "GET", "/_ping", "bücher.example:2376", nil},
		{"invalid host", "GET", "/_ping", "a b", nil},
		{"tab in user agent", "GET", "/_ping", "h", http.Header{"User-Agent": {"a\tb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			header := tt.header
			if header == nil {
				header = http.Header{}
			}
			out := &http.Request{Method: tt.method, URL: u, Host: tt.host, Header: header,
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}

			var want bytes.Buffer
			wantErr := out.Write(&want)
			var got bytes.Buffer
			bw := bufio.NewWriter(&got)
			gotErr := writeRequestHead(bw, out)
			bw.Flush()

			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("error = %v, want %v", gotErr, wantErr)
			}
			if got.String() != want.String() {
				t.Errorf("wrote\n%q\nwant (Request.Write)\n%q", got.String(), want.String())
			}
		})
	}
}

func BenchmarkWriteRequestHead(b *testing.B) {
	u, _ := url.ParseRequestURI("/v1.41/containers/json?all=1")
	out := &http.Request{Method: "GET", URL: u, Host: "127.0.0.1:2376",
		Header: http.Header{"User-Agent": {"Docker-Client/28.0.1 (linux)"}, "Accept": {"*/*"}}}
	bw := bufio.NewWriter(&bytes.Buffer{})
	b.Run("writeRequestHead", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeRequestHead(bw, out)
			bw.Reset(&bytes.Buffer{})
		}
	})
	b.Run("Request.Write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out.Write(bw)
			bw.Reset(&bytes.Buffer{})
		}
	})
}
