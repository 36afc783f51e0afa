package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// BenchmarkPingKeepAlive measures GET /_ping through the gateway to a fake
// daemon over keep-alive connections, with parallel clients.
func BenchmarkPingKeepAlive(b *testing.B) {
	b.Run("admin only", func(b *testing.B) { benchmarkPing(b, adminOnly{}) })
	authorizer, err := NewAuthorizer("", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("default policy", func(b *testing.B) { benchmarkPing(b, authorizer) })
}

func benchmarkPing(b *testing.B, authorizer Authorizer) {
	files := newTestFiles(b)
	socket := fakeDaemon(b, pingHandler())
	g := startGateway(b, files, socket, func(c *Config) {
		c.Logger = nil
		c.Authorizer = authorizer
	})
	admin := files.ca.issue(b, leafOptions{name: "alice", groups: []string{"admin"}})
	tr := &http.Transport{TLSClientConfig: files.clientTLS(admin), MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	url := g.url("/_ping")

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
