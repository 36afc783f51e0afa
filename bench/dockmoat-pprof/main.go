// Command dockmoat-pprof is dockmoat with net/http/pprof served on the
// loopback address in $DOCKMOAT_PPROF_LISTEN, for profiling the gateway
// under the benchmark's load. It is a benchmark tool, not a release build:
// the pprof endpoints have no authentication.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"

	"github.com/dockmoat/dockmoat/internal/cli"
)

func main() {
	if addr := os.Getenv("DOCKMOAT_PPROF_LISTEN"); addr != "" {
		if err := servePprof(addr); err != nil {
			fmt.Fprintf(os.Stderr, "dockmoat-pprof: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// servePprof listens on addr, which must be a loopback address, and serves
// http.DefaultServeMux, where net/http/pprof registers its handlers.
func servePprof(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid DOCKMOAT_PPROF_LISTEN %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("DOCKMOAT_PPROF_LISTEN %q is not a loopback address; use 127.0.0.1:PORT", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(l, nil) }()
	return nil
}
