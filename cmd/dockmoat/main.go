// Command dockmoat secures remote access to a Docker daemon: a certificate
// authority for Docker TLS, an mTLS gateway with per-client authorization in
// front of the local Docker socket, and tools that configure and diagnose
// Docker TLS setups.
package main

import (
	"os"

	"github.com/dockmoat/dockmoat/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
