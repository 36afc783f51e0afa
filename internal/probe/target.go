// Package probe finds out what a Docker endpoint accepts and why a client
// fails to reach one. Check classifies a TCP endpoint by sending nothing but
// a TLS handshake, GET /_ping and GET /version; Diagnose reads a client's
// configuration and files and performs the client's own handshake; Explain
// maps a pasted error message to its causes.
package probe

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Ports tried when a target names only a host: 2375 is the conventional
// plain Docker API port and 2376 the TLS one.
var DefaultPorts = []int{2375, 2376}

// Endpoint is one host and port to check.
type Endpoint struct {
	// Target is the argument the endpoint came from.
	Target string `json:"target"`
	// Host is a host name or IP address without brackets.
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Address returns host:port, with brackets around an IPv6 address.
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// ParseTarget turns a check target into endpoints. A target is HOST:PORT,
// HOST (then DefaultPorts), or a URL with scheme tcp, http or https. A URL
// without a port gets 2375 for http, 2376 for https and both for tcp.
func ParseTarget(target string) ([]Endpoint, error) {
	t := strings.TrimSpace(target)
	if t == "" {
		return nil, fmt.Errorf("empty target: want HOST, HOST:PORT or tcp://HOST:PORT")
	}
	if strings.Contains(t, "://") {
		return parseURLTarget(target, t)
	}
	if host, port, err := net.SplitHostPort(t); err == nil {
		return endpoint(target, host, port)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(t, "["), "]")
	if strings.ContainsAny(host, "/[] ") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return nil, fmt.Errorf("invalid target %q: want HOST, HOST:PORT or tcp://HOST:PORT", target)
	}
	return withPorts(target, host, DefaultPorts), nil
}

func parseURLTarget(target, t string) ([]Endpoint, error) {
	u, err := url.Parse(t)
	if err != nil {
		return nil, fmt.Errorf("invalid target %q: %v", target, err)
	}
	var ports []int
	switch u.Scheme {
	case "tcp":
		ports = DefaultPorts
	case "http":
		ports = []int{2375}
	case "https":
		ports = []int{2376}
	default:
		return nil, fmt.Errorf("invalid target %q: scheme %q is not tcp, http or https", target, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("invalid target %q: no host", target)
	}
	if u.Port() != "" {
		return endpoint(target, u.Hostname(), u.Port())
	}
	return withPorts(target, u.Hostname(), ports), nil
}

func endpoint(target, host, port string) ([]Endpoint, error) {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("invalid port %q in target %q: want 1 to 65535", port, target)
	}
	if host == "" {
		return nil, fmt.Errorf("invalid target %q: no host", target)
	}
	return []Endpoint{{Target: target, Host: host, Port: n}}, nil
}

func withPorts(target, host string, ports []int) []Endpoint {
	var eps []Endpoint
	for _, p := range ports {
		eps = append(eps, Endpoint{Target: target, Host: host, Port: p})
	}
	return eps
}
