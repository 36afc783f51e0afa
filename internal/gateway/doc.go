// Package gateway is dockmoat's mTLS front door for the local Docker socket.
//
// A Server accepts TCP connections, requires a client certificate signed by
// the configured CA and absent from the CRL, authorizes every HTTP/1.1
// request through an Authorizer, and forwards allowed requests to dockerd's
// unix socket. Bodies stream in both directions. Attach and exec requests
// that the daemon upgrades become a raw two-way byte pipe that forwards
// half-close. The server certificate, CA and CRL are reloaded on file change
// and on Server.Reload without dropping connections, and the open
// connections of a revoked certificate are closed when the new CRL is loaded.
package gateway
