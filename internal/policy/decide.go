package policy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/identity"
)

// Rule names that decisions carry when no rule of the policy decided.
const (
	// BuiltinRule allows _ping and version for every authenticated client,
	// because the docker CLI calls them before anything else.
	BuiltinRule = "builtin"
	// DefaultDenyRule denies an operation that no rule grants.
	DefaultDenyRule = "default-deny"
)

// Decision is the outcome of one policy evaluation.
type Decision struct {
	Allow bool
	// Status is the HTTP status of a denial: 403.
	Status int
	// Message is the Docker-style error message of a denial. It starts with
	// "dockmoat:" and names the client, operation, field and rule.
	Message   string
	Operation string
	// Rule is the rule that allowed the request, the rule whose constraint
	// denied it, or BuiltinRule or DefaultDenyRule.
	Rule string
	// Field is the request field that caused a denial, such as
	// "HostConfig.Privileged", or empty.
	Field string

	// Owner is set when the deciding rule enforces ownership. Every
	// container in Containers, and the container of Exec, must then carry
	// OwnerLabel=Owner, or the gateway returns 404.
	Owner string
	// Containers are the containers the request acts on or refers to.
	Containers []Reference
	// Exec is the exec instance the request acts on, or empty.
	Exec string
	// Confined are existing containers, or with Field "exec" the exec
	// instance, that the request runs a process in or attaches to. The
	// gateway inspects each one and denies the request when ExecDenial or
	// ContainerDenial does.
	Confined []Reference
	// Volumes are named volumes that a container create mounts. For each
	// that exists on the daemon, VolumeViolation must return "".
	Volumes []Reference
	// Body, when not nil, replaces the request body: the container create
	// body with the owner label added.
	Body []byte
	// Query, when not nil, replaces the query: the container list or prune
	// filters with the owner label added.
	Query url.Values

	// rule is the rule that allowed the request, for VolumeViolation.
	rule *Rule
}

// Reference is a container or volume named in a request.
type Reference struct {
	// Field is the request location that names it: "path", a body field
	// such as "HostConfig.VolumesFrom[0]", or a query parameter.
	Field string
	ID    string
}

// Decide evaluates the policy for a request by client id. body is the
// complete request body of routes flagged dockerapi.BodyInspected and is
// ignored for other routes. Rules are tried in file order, and the first
// rule that selects the client, grants the operation and whose constraints
// the request meets allows it. Otherwise the request is denied, naming the
// first constraint that failed, or DefaultDenyRule when no rule grants the
// operation.
func (p *Policy) Decide(id identity.Identity, req *dockerapi.Request, body []byte) Decision {
	operation := req.Operation
	if operation == "system.ping" || operation == "system.version" {
		return Decision{Allow: true, Operation: operation, Rule: BuiltinRule}
	}

	var first *Decision
	for _, rule := range p.Rules {
		if !rule.selects(id) || !rule.grants(operation) {
			continue
		}
		decision := evaluate(rule, id, req, body)
		if decision.Allow {
			return decision
		}
		if first == nil {
			first = &decision
		}
	}
	if first != nil {
		return *first
	}
	return Decision{
		Status:    http.StatusForbidden,
		Operation: operation,
		Rule:      DefaultDenyRule,
		Message: fmt.Sprintf("dockmoat: client %q may not call %s: no rule grants it (%s)",
			id.Name, operation, DefaultDenyRule),
	}
}

// evaluate applies one rule that grants the operation.
func evaluate(rule *Rule, id identity.Identity, req *dockerapi.Request, body []byte) Decision {
	found := inspectRequest(rule, req, body)
	if found.violation != nil {
		return denial(rule, id, req.Operation, *found.violation)
	}

	decision := Decision{Allow: true, Operation: req.Operation, Rule: rule.Name, rule: rule}
	if !rule.liftAll {
		for _, v := range found.volumes {
			decision.Volumes = append(decision.Volumes, Reference{Field: v.Field, ID: v.ID})
		}
	}
	if rule.Ownership {
		decision.Owner = id.Name
	}
	if req.Route.Has(dockerapi.ContainerTarget) {
		decision.Containers = append(decision.Containers, Reference{Field: "path", ID: req.Target})
		if confinedOperations[req.Operation] && !rule.liftAll {
			decision.Confined = []Reference{{Field: "path", ID: req.Target}}
		}
	}
	if req.Route.Has(dockerapi.ExecTarget) {
		decision.Exec = req.Target
		if confinedOperations[req.Operation] && !rule.liftAll {
			decision.Confined = []Reference{{Field: "exec", ID: req.Target}}
		}
	}
	for _, ref := range found.references {
		joins := ref.Namespace != "" || strings.Contains(ref.Field, "VolumesFrom")
		if joins && !rule.Ownership {
			return denial(rule, id, req.Operation, violation{Field: ref.Field,
				Reason: fmt.Sprintf("uses container %q, which only rules with ownership may share", ref.ID)})
		}
		decision.Containers = append(decision.Containers, Reference{Field: ref.Field, ID: ref.ID})
	}
	if !rule.Ownership {
		decision.Containers = nil
		decision.Exec = ""
		return decision
	}
	return withOwnership(decision, req, body)
}

// withOwnership adds the owner label to container create bodies and the
// owner filter to container list, prune and event queries. dockerd copies
// container labels into the attributes of container and exec events, so the
// filter keeps the client's own container events. It also drops events of
// networks and volumes, which carry no such label.
//
// NOTE: system.df is not filtered, so a client that may call it can still
// read the names and IDs of other clients' containers.
func withOwnership(decision Decision, req *dockerapi.Request, body []byte) Decision {
	var err error
	switch req.Operation {
	case "container.create":
		decision.Body, err = InjectOwnerLabel(body, decision.Owner)
	case "container.list", "container.prune", "system.events":
		decision.Query, err = AddOwnerFilter(req.Query, decision.Owner)
	}
	if err != nil {
		return Decision{Status: http.StatusForbidden, Operation: req.Operation, Rule: decision.Rule, Field: "body",
			Message: fmt.Sprintf("dockmoat: client %q may not call %s: %v (rule %q)",
				decision.Owner, req.Operation, err, decision.Rule)}
	}
	return decision
}

func denial(rule *Rule, id identity.Identity, operation string, v violation) Decision {
	return Decision{
		Status:    http.StatusForbidden,
		Operation: operation,
		Rule:      rule.Name,
		Field:     v.Field,
		Message: fmt.Sprintf("dockmoat: client %q may not call %s: %s %s, which rule %q does not allow",
			id.Name, operation, v.Field, v.Reason, rule.Name),
	}
}

// inspectRequest runs the body and query checks of an operation.
func inspectRequest(rule *Rule, req *dockerapi.Request, body []byte) *inspection {
	switch req.Operation {
	case "container.create":
		return inspectCreate(rule, body)
	case "container.update":
		return inspectUpdate(rule, body)
	case "container.exec.create":
		return inspectExec(rule, body)
	case "volume.create":
		return inspectVolumeCreate(rule, body)
	case "network.create":
		return inspectNetworkCreate(rule, body)
	case "network.connect", "network.disconnect":
		return inspectNetworkConnect(body)
	case "image.build":
		if found := inspectBuild(rule, req.Query); found.violation != nil {
			return found
		}
		return inspectImageNames(rule, "t", req.Query["t"])
	case "image.tag":
		return inspectImageNames(rule, "repo", req.Query["repo"])
	case "image.pull":
		return inspectPull(rule, req.Query)
	case "image.commit":
		return &inspection{references: []referenced{{Field: "container", ID: req.Query.Get("container")}}}
	}
	if req.Route.Has(dockerapi.BodyInspected) {
		return inspectJSON(body)
	}
	return &inspection{}
}

// inspectBuild checks build query parameters. Every value of a repeated
// parameter is checked, although dockerd reads only the first.
//
// NOTE: the classic builder of dockerd 20.10 fetches "ADD <url>" sources
// from the daemon's own network namespace whatever networkmode is, so a
// build can read loopback-only HTTP services of the host. The Dockerfile
// travels in the uninspected context, so no rule can deny that here.
func inspectBuild(rule *Rule, query url.Values) *inspection {
	if !rule.liftAll && !rule.Lift.BuildHostNetwork {
		for _, mode := range query["networkmode"] {
			mode = strings.ToLower(strings.TrimSpace(mode))
			if mode == "host" || strings.HasPrefix(mode, "container:") {
				return deny("networkmode", "is %q", mode)
			}
		}
	}
	if !rule.liftAll && !rule.Lift.BuildRemote {
		for _, remote := range query["remote"] {
			// BuildKit sends "client-session" when the context comes
			// through the client's session, not from a URL.
			if remote != "" && remote != "client-session" {
				return deny("remote", "is a remote context %q", remote)
			}
		}
	}
	return &inspection{}
}

// inspectPull checks the pulled repository against the rule's images.
func inspectPull(rule *Rule, query url.Values) *inspection {
	if len(rule.Images) == 0 {
		return &inspection{}
	}
	for _, image := range query["fromImage"] {
		if !imageAllowed(rule.Images, image) {
			return deny("fromImage", "%q matches none of the rule's images", image)
		}
	}
	if len(query["fromImage"]) == 0 {
		return deny("fromImage", "is missing")
	}
	return &inspection{}
}

// inspectImageNames checks the names that a build or tag gives an image
// against the rule's images, so that a rule limited to some repositories
// cannot replace the image behind a name that other clients run.
//
// NOTE: image.load takes its names from the uploaded archive, which the
// gateway streams without reading, so a load can still replace any name.
func inspectImageNames(rule *Rule, parameter string, names []string) *inspection {
	if len(rule.Images) == 0 {
		return &inspection{}
	}
	for _, name := range names {
		if !imageAllowed(rule.Images, name) {
			return deny(parameter, "%q matches none of the rule's images", name)
		}
	}
	return &inspection{}
}

// VolumeDenial returns the denial of a request that mounts the existing
// volume ref, whose driver and options reason describes.
func (d Decision) VolumeDenial(client string, ref Reference, reason string) Decision {
	return Decision{
		Status:    http.StatusForbidden,
		Operation: d.Operation,
		Rule:      d.Rule,
		Field:     ref.Field,
		Message: fmt.Sprintf("dockmoat: client %q may not call %s: %s names volume %q, which %s, which rule %q does not allow",
			client, d.Operation, ref.Field, ref.ID, reason, d.Rule),
	}
}
