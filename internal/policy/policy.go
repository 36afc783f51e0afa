// Package policy decides which Docker API calls each gateway client may
// make. A policy is a list of rules read from a YAML file. Each rule selects
// clients by certificate CN pattern and group, grants operations named in
// the dockerapi route table, and limits what container, exec, volume,
// network and build requests may ask for. Everything not granted is denied.
package policy

import (
	"path"
	"strings"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/identity"
)

// OwnerLabel is the container label that records which client created a
// container when its rule sets ownership. The value is the client's CN.
const OwnerLabel = "dockmoat.owner"

// Policy is a validated set of rules. It is immutable and safe for
// concurrent use.
type Policy struct {
	// Source names the file the policy was read from, for messages.
	Source string
	Rules  []*Rule
}

// Rule grants operations to the clients it selects.
type Rule struct {
	// Name identifies the rule in denials and audit records.
	Name string
	// Clients are CN patterns in path.Match syntax, such as "ci-*". An
	// empty list selects any CN.
	Clients []string
	// Groups select clients that carry at least one of these groups (OU
	// values). An empty list selects any group. A rule must set Clients,
	// Groups or both.
	Groups []string
	// Presets are preset names: admin, readonly, ci.
	Presets []string
	// Operations are operation names or "prefix.*" patterns.
	Operations []string
	// Ownership labels the containers this rule creates with OwnerLabel and
	// limits the client to containers that carry its own CN there.
	Ownership bool
	// Images are repository patterns in path.Match syntax that container
	// create, image pull and the names given by build and tag must match.
	// An empty list allows any image.
	Images []string
	// Lift relaxes the container constraints for this rule.
	Lift Lift

	// granted is the set of operations from Presets and Operations.
	granted map[string]bool
	// liftAll is set by the admin preset, which lifts every constraint.
	liftAll bool
}

// Lift lists the container constraints a rule relaxes. The zero value
// enforces all of them.
type Lift struct {
	// Privileged allows privileged containers and privileged exec.
	Privileged bool
	// Capabilities are capabilities that CapAdd may name beyond Docker's
	// default set, without the CAP_ prefix, or "ALL".
	Capabilities []string
	// Devices allows Devices, DeviceCgroupRules and DeviceRequests.
	Devices bool
	// Namespaces are host namespaces the container may join: pid, ipc,
	// network, uts, userns, cgroup. They also allow "container:ID" modes of
	// the same kind without an ownership check.
	Namespaces []string
	// SecurityOptions allows SecurityOpt values other than
	// no-new-privileges, and MaskedPaths or ReadonlyPaths overrides.
	SecurityOptions bool
	// Sysctls are sysctl name patterns in path.Match syntax.
	Sysctls []string
	// BindPaths are host path prefixes that bind mounts may use, compared
	// after cleaning the source path.
	BindPaths []string
	// VolumesFrom allows VolumesFrom of any container.
	VolumesFrom bool
	// BuildHostNetwork allows image builds with networkmode=host.
	BuildHostNetwork bool
	// BuildRemote allows image builds from a remote context URL.
	BuildRemote bool
	// LogDrivers are log drivers that containers may use beyond json-file,
	// local, journald and none, such as syslog or gelf. dockerd connects
	// from the host's network to the address in such a driver's options.
	LogDrivers []string
	// NetworkDrivers are network drivers that network create may name
	// beyond bridge, overlay and null, such as macvlan or ipvlan, which
	// attach containers to a host interface.
	NetworkDrivers []string
	// NetworkOptions are network driver options that network create may
	// set although they are denied by default. The only such option is
	// com.docker.network.bridge.name.
	NetworkOptions []string
}

// selects reports whether the rule applies to id.
func (r *Rule) selects(id identity.Identity) bool {
	if len(r.Clients) > 0 && !matchAny(r.Clients, id.Name) {
		return false
	}
	if len(r.Groups) > 0 && !inAnyGroup(id, r.Groups) {
		return false
	}
	return true
}

// grants reports whether the rule grants operation.
func (r *Rule) grants(operation string) bool {
	return r.granted[operation]
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func inAnyGroup(id identity.Identity, groups []string) bool {
	for _, g := range groups {
		if id.InGroup(g) {
			return true
		}
	}
	return false
}

// expandOperations returns the operations that pattern names: itself when
// it is an operation, or every operation under prefix for "prefix.*".
func expandOperations(pattern string) []string {
	prefix, isPattern := strings.CutSuffix(pattern, ".*")
	var ops []string
	for _, op := range dockerapi.Operations() {
		if op == pattern || (isPattern && (op == prefix || strings.HasPrefix(op, prefix+"."))) {
			ops = append(ops, op)
		}
	}
	return ops
}
