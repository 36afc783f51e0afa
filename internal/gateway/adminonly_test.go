package gateway

import (
	"fmt"
	"net/http"

	"github.com/dockmoat/dockmoat/internal/identity"
)

// adminOnly allows every request of group "admin" and denies the rest. The
// proxy tests use it so that they do not depend on the policy engine.
type adminOnly struct{}

const (
	ruleAdmin       = "builtin:admin"
	ruleDefaultDeny = "builtin:default-deny"
	opUnclassified  = "unclassified"
)

func (adminOnly) Authorize(id identity.Identity, r *http.Request) Decision {
	d := Decision{
		Operation:  opUnclassified,
		APIVersion: apiVersion(r.URL.Path),
	}
	if id.InGroup("admin") {
		d.Allow = true
		d.Rule = ruleAdmin
		return d
	}
	d.Status = http.StatusForbidden
	d.Rule = ruleDefaultDeny
	d.Message = fmt.Sprintf("dockmoat: client %q may not call %s %s: only group \"admin\" has access",
		id.Name, r.Method, r.URL.Path)
	return d
}
