package policy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// confinedOperations run a process in an existing container or attach to
// its main process, so the client acts with that container's privileges.
// They are allowed only on containers that the deciding rule could create.
// exec.start is confined too, through the container of its exec instance,
// because container inspect lists the IDs of other clients' exec instances.
var confinedOperations = map[string]bool{
	"container.exec.create": true,
	"container.attach":      true,
	"exec.start":            true,
}

// ExecDenial checks an existing exec instance that an exec.start request
// would start, given dockerd's exec inspect response of it. It returns a
// denial when the rule that allowed d could not have created the instance,
// or nil. The caller then checks the instance's container with
// ContainerDenial.
func (d Decision) ExecDenial(client string, ref Reference, inspect []byte) *Decision {
	if d.rule == nil || d.rule.liftAll {
		return nil
	}
	var instance struct {
		ProcessConfig struct {
			Privileged bool `json:"privileged"`
		}
	}
	if err := json.Unmarshal(inspect, &instance); err != nil {
		return d.existingDenial(client, "exec instance", ref, violation{Field: "ProcessConfig",
			Reason: fmt.Sprintf("cannot be decoded from the exec inspect response (%v)", err)})
	}
	if instance.ProcessConfig.Privileged && !d.rule.Lift.Privileged {
		return d.existingDenial(client, "exec instance", ref, violation{Field: "Privileged", Reason: "is true"})
	}
	return nil
}

// Paths that dockerd 20.10.24 masks or makes read-only in every container
// that is not privileged, as its container inspect response lists them.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// existingContainer is the part of dockerd's container inspect response
// that the checks of confined operations read.
type existingContainer struct {
	ID         string `json:"Id"`
	HostConfig *hostConfig
	// Mounts are the container's actual mounts, including those that
	// VolumesFrom copied from other containers.
	Mounts []struct {
		Type   string
		Name   string
		Source string
	}
}

// ContainerDenial checks an existing container that the request runs a
// process in or attaches to, given dockerd's container inspect response
// of it. It returns a denial when the rule that allowed d could not have
// created that container. Otherwise it returns nil and the named volumes
// the container mounts, which the caller checks with VolumeViolation.
func (d Decision) ContainerDenial(client string, ref Reference, inspect []byte) (*Decision, []Reference) {
	if d.rule == nil || d.rule.liftAll {
		return nil, nil
	}
	var c existingContainer
	if err := json.Unmarshal(inspect, &c); err != nil {
		return d.existingDenial(client, "container", ref, violation{Field: "HostConfig",
			Reason: fmt.Sprintf("cannot be decoded from the container inspect response (%v)", err)}), nil
	}
	if c.HostConfig == nil || c.HostConfig.HostConfig == nil {
		return d.existingDenial(client, "container", ref, violation{Field: "HostConfig",
			Reason: "is missing from the container inspect response"}), nil
	}
	if v := checkExisting(d.rule, c.HostConfig); v != nil {
		return d.existingDenial(client, "container", ref, *v), nil
	}

	var volumes []Reference
	for i, m := range c.Mounts {
		field := fmt.Sprintf("Mounts[%d]", i)
		switch m.Type {
		case "bind":
			if !d.rule.bindAllowed(m.Source) {
				return d.existingDenial(client, "container", ref, violation{Field: field,
					Reason: fmt.Sprintf("binds host path %q", m.Source)}), nil
			}
		case "volume":
			volumes = append(volumes, Reference{Field: field, ID: m.Name})
		case "tmpfs":
		default:
			return d.existingDenial(client, "container", ref, violation{Field: field,
				Reason: fmt.Sprintf("has type %q, which dockmoat does not inspect", m.Type)}), nil
		}
	}
	return nil, volumes
}

// checkExisting applies the container create constraints of rule to the
// host configuration of an existing container. Two of them differ. The
// cgroup namespace is not checked, because dockerd 20.10 puts every
// container into the host's cgroup namespace on cgroup v1 hosts. Masked
// and read-only paths must include dockerd's defaults, because dockerd
// stores those in the configuration of every container.
func checkExisting(rule *Rule, hc *hostConfig) *violation {
	found := checkExistingPrivileges(rule, hc)
	if found == nil {
		found = checkExistingNamespaces(rule, hc)
	}
	if found == nil {
		found = checkExistingSecurity(rule, hc)
	}
	if found != nil {
		return found.violation
	}
	for name := range hc.Sysctls {
		if !matchAny(rule.Lift.Sysctls, name) {
			return &violation{Field: "HostConfig.Sysctls", Reason: fmt.Sprintf("sets %q, which the rule does not allow", name)}
		}
	}
	return nil
}

func checkExistingPrivileges(rule *Rule, hc *hostConfig) *inspection {
	if hc.Privileged && !rule.Lift.Privileged {
		return deny("HostConfig.Privileged", "is true")
	}
	if len(hc.Capabilities) > 0 && !rule.Lift.Privileged {
		return deny("HostConfig.Capabilities", "replaces the capability set")
	}
	if found := checkCapabilities(rule, "HostConfig.", hc.CapAdd); found != nil {
		return found
	}
	return checkDevices(rule, "HostConfig.", &hc.Resources)
}

// checkExistingNamespaces denies host namespaces and, for rules without
// ownership, "container:ID" modes, because such rules cannot create them
// and the other container may hold a host namespace.
func checkExistingNamespaces(rule *Rule, hc *hostConfig) *inspection {
	modes := []struct {
		field, namespace, mode string
	}{
		{"PidMode", "pid", string(hc.PidMode)},
		{"IpcMode", "ipc", string(hc.IpcMode)},
		{"NetworkMode", "network", string(hc.NetworkMode)},
		{"UTSMode", "uts", string(hc.UTSMode)},
		{"UsernsMode", "userns", string(hc.UsernsMode)},
	}
	for _, m := range modes {
		if rule.liftedNamespace(m.namespace) {
			continue
		}
		if strings.EqualFold(m.mode, "host") {
			return deny("HostConfig."+m.field, "is %q, the host's %s namespace", m.mode, m.namespace)
		}
		kind, _, found := strings.Cut(m.mode, ":")
		if found && strings.EqualFold(kind, "container") && !rule.Ownership {
			return deny("HostConfig."+m.field, "is %q, another container's namespace", m.mode)
		}
	}
	return nil
}

func checkExistingSecurity(rule *Rule, hc *hostConfig) *inspection {
	if rule.Lift.SecurityOptions {
		return nil
	}
	for i, opt := range hc.SecurityOpt {
		key, _, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			key, _, _ = strings.Cut(opt, ":")
		}
		if strings.TrimSpace(key) != "no-new-privileges" {
			return deny(fmt.Sprintf("HostConfig.SecurityOpt[%d]", i), "is %q", opt)
		}
	}
	if hc.Privileged {
		// Only a rule that lifts Privileged gets here, and dockerd masks
		// nothing in a privileged container.
		return nil
	}
	for _, p := range defaultMaskedPaths {
		if !slices.Contains(hc.MaskedPaths, p) {
			return deny("HostConfig.MaskedPaths", "does not mask %s", p)
		}
	}
	for _, p := range defaultReadonlyPaths {
		if !slices.Contains(hc.ReadonlyPaths, p) {
			return deny("HostConfig.ReadonlyPaths", "does not make %s read-only", p)
		}
	}
	return nil
}

// existingDenial returns the denial of a confined operation on ref, an
// existing object of kind "container" or "exec instance".
func (d Decision) existingDenial(client, kind string, ref Reference, v violation) *Decision {
	return &Decision{
		Status:    http.StatusForbidden,
		Operation: d.Operation,
		Rule:      d.Rule,
		Field:     v.Field,
		Message: fmt.Sprintf("dockmoat: client %q may not call %s on %s %q: its %s %s, which rule %q does not allow",
			client, d.Operation, kind, ref.ID, v.Field, v.Reason, d.Rule),
	}
}
