package gateway

import (
	"context"
	"net"
	"net/http"
	"time"
)

// upstream is the connection to dockerd's unix socket: a keep-alive pool for
// ordinary requests, and fresh connections for attach and exec, which the
// daemon takes over and never returns to HTTP.
//
// NOTE: keep-alive GET /_ping through the gateway reached about 0.42 to 0.44
// of the rate of dockerd's own TLS listener at 8 concurrent clients on a
// 2-core machine, with client, gateway and dockerd on the same cores, where a
// bare TLS byte pipe reached about 0.6 (bench/run, bench/RESULTS.md). Most
// of the remaining cost is system calls, TLS and HTTP parsing.
type upstream struct {
	socket    string
	url       string
	dialer    net.Dialer
	transport *http.Transport
	pool      connPool
}

// upstreamHost is the Host of the URL of every forwarded request. The
// transport dials the socket whatever the host is, and dockerd ignores it.
const upstreamHost = "docker"

func newUpstream(socket string, idleConns int) *upstream {
	u := &upstream{socket: socket, url: "unix://" + socket, pool: connPool{max: idleConns}}
	u.dialer.Timeout = 5 * time.Second
	u.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return u.dial(ctx)
		},
		MaxIdleConns:        idleConns,
		MaxIdleConnsPerHost: idleConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// Responses pass through unchanged, so a 100-continue from the
		// daemon is handled by the transport and never reaches the client.
		ExpectContinueTimeout: 0,
		ForceAttemptHTTP2:     false,
	}
	return u
}

func (u *upstream) dial(ctx context.Context) (net.Conn, error) {
	return u.dialer.DialContext(ctx, "unix", u.socket)
}

// roundTrip sends out and returns the daemon's response. Canceling ctx
// aborts the request. Requests with a body go through http.Transport, which
// can send the body while the response arrives.
func (u *upstream) roundTrip(ctx context.Context, out *http.Request) (*http.Response, error) {
	if out.Body == nil {
		return u.roundTripNoBody(ctx, out)
	}
	return u.transport.RoundTrip(out.WithContext(ctx))
}

func (u *upstream) closeIdle() {
	u.transport.CloseIdleConnections()
	u.pool.closeAll()
}
