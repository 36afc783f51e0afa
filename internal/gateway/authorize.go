package gateway

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/dockmoat/dockmoat/internal/identity"
)

// Decision is the outcome of authorizing one request. The gateway reads
// Operation, Rule and the decision itself into the audit record and the
// metrics labels, so Operation must come from a bounded set of names.
type Decision struct {
	// Allow forwards the request to the Docker socket.
	Allow bool
	// Status is the HTTP status sent for a denial, usually 403, or 400 for a
	// request the gateway cannot classify safely.
	Status int
	// Message is the text of the Docker-style JSON error body sent with a
	// denial. It starts with "dockmoat: ", except for the 404 of a container
	// owned by another client, which has dockerd's own "No such container"
	// text.
	Message string
	// Operation names the API call, such as "container.create".
	Operation string
	// Rule names the policy rule that decided.
	Rule string
	// APIVersion is the version from the optional /vX.Y path prefix, such as
	// "1.41", or empty when the path has none.
	APIVersion string
}

// Authorizer decides whether a client may make a request. Authorize is
// called once per request, before anything is forwarded, and must be safe
// for concurrent use. It may read r.Body to inspect it; it must then replace
// r.Body and r.ContentLength with exactly the bytes to forward.
type Authorizer interface {
	Authorize(id identity.Identity, r *http.Request) Decision
}

// NewAuthorizer returns the authorizer for the policy file at policyPath,
// which it reloads when the file changes. An empty policyPath selects
// policy.Default: each of the groups admin, ci and readonly gets the preset
// of the same name. New passes the authorizer the Docker socket, which
// ownership checks query for container labels.
func NewAuthorizer(policyPath string, logger *slog.Logger) (Authorizer, error) {
	return newPolicyAuthorizer(policyPath, logger)
}

// dockerSocketUser is an Authorizer that queries dockerd itself. New calls
// useDockerSocket once, before the server accepts connections.
type dockerSocketUser interface {
	useDockerSocket(socket string)
}

// apiVersion returns "X.Y" from a path that starts with "/vX.Y/", or "".
func apiVersion(path string) string {
	if len(path) < 3 || path[0] != '/' || path[1] != 'v' {
		return ""
	}
	rest := path[2:]
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	v := rest[:end]
	dot := strings.IndexByte(v, '.')
	if dot <= 0 || dot == len(v)-1 || !isDigits(v[:dot]) || !isDigits(v[dot+1:]) {
		return ""
	}
	return v
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
