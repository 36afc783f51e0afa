package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// violation is a request field that a rule's constraints do not allow.
type violation struct {
	// Field is the JSON path or query parameter, such as
	// "HostConfig.Privileged" or "networkmode".
	Field string
	// Reason describes the value, such as "is true".
	Reason string
}

// createBody mirrors the wrapper that dockerd 20.10 decodes container
// create bodies into (runconfig.ContainerConfigWrapper): besides the
// HostConfig object, every HostConfig field is also read from the top
// level, and the daemon uses those top-level values when HostConfig is
// absent. Both sets are checked.
type createBody struct {
	*container.Config
	Inner            *hostConfig               `json:"HostConfig,omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
	*container.HostConfig
	// Capabilities is the top-level form of hostConfig.Capabilities.
	Capabilities []string
}

// hostConfig adds to the moby HostConfig the fields that dockerd 20.10
// still reads but the moby API module no longer has.
type hostConfig struct {
	*container.HostConfig
	// Capabilities replaced the whole capability set in API 1.40 and 1.41.
	Capabilities []string
}

// referenced is a container named in a request, which the rule may reach
// only when it is owned by the client or the constraint is lifted.
type referenced struct {
	Field string
	ID    string
	// Namespace is the namespace kind for a "container:ID" mode, or empty
	// for VolumesFrom and other references.
	Namespace string
}

// inspection is the result of checking a request body or query.
type inspection struct {
	violation *violation
	// references are containers that the request uses, to be checked for
	// ownership.
	references []referenced
	// volumes are named volumes that the container mounts. A volume that
	// already exists keeps its own driver options, so the gateway checks
	// them on the daemon.
	volumes []referenced
}

func deny(field, format string, args ...any) *inspection {
	return &inspection{violation: &violation{Field: field, Reason: fmt.Sprintf(format, args...)}}
}

// decodeBody checks keys and decodes data into v as dockerd does. An empty
// body decodes to the zero value.
func decodeBody(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := checkJSONKeys(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// inspectCreate checks a container create body against rule.
func inspectCreate(rule *Rule, data []byte) *inspection {
	body, err := decodeCreateBody(data)
	if err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	return checkCreate(rule, body)
}

// checkCreate checks a decoded container create body against rule.
func checkCreate(rule *Rule, body *createBody) *inspection {
	result := &inspection{}
	if len(rule.Images) > 0 {
		image := ""
		if body.Config != nil {
			image = body.Image
		}
		if !imageAllowed(rule.Images, image) {
			return deny("Image", "%q matches none of the rule's images", image)
		}
	}
	hostConfigs := []struct {
		prefix       string
		config       *container.HostConfig
		capabilities []string
	}{
		{"", body.HostConfig, body.Capabilities},
	}
	if body.Inner != nil {
		hostConfigs = append(hostConfigs, struct {
			prefix       string
			config       *container.HostConfig
			capabilities []string
		}{"HostConfig.", body.Inner.HostConfig, body.Inner.Capabilities})
	}
	for _, hc := range hostConfigs {
		if len(hc.capabilities) > 0 && !rule.liftAll && !rule.Lift.Privileged {
			return deny(hc.prefix+"Capabilities", "replaces the capability set")
		}
		if hc.config == nil {
			continue
		}
		if found := checkHostConfig(rule, hc.prefix, hc.config, result); found != nil {
			return found
		}
	}
	// NOTE: an endpoint may also name the host network by ID. dockerd
	// 20.10.24 then still gives the container its own network namespace
	// (checked by comparing /proc/PID/ns/net), so only the name is denied.
	if body.NetworkingConfig != nil {
		for name := range body.NetworkingConfig.EndpointsConfig {
			if strings.EqualFold(name, "host") && !rule.liftedNamespace("network") {
				return deny("NetworkingConfig.EndpointsConfig", "joins the host network")
			}
		}
	}
	return result
}

// checkHostConfig checks one HostConfig and adds container references to
// result. It returns a denial or nil.
func checkHostConfig(rule *Rule, prefix string, hc *container.HostConfig, result *inspection) *inspection {
	if rule.liftAll {
		return nil
	}
	if hc.Privileged && !rule.Lift.Privileged {
		return deny(prefix+"Privileged", "is true")
	}
	if found := checkCapabilities(rule, prefix, hc.CapAdd); found != nil {
		return found
	}
	if found := checkDevices(rule, prefix, &hc.Resources); found != nil {
		return found
	}
	if found := checkNamespaces(rule, prefix, hc, result); found != nil {
		return found
	}
	if found := checkSecurity(rule, prefix, hc); found != nil {
		return found
	}
	if found := checkLogConfig(rule, prefix, hc.LogConfig); found != nil {
		return found
	}

	for name := range hc.Sysctls {
		if !matchAny(rule.Lift.Sysctls, name) {
			return deny(prefix+"Sysctls", "sets %q, which the rule does not allow", name)
		}
	}
	if found := checkBinds(rule, prefix, hc.Binds, result); found != nil {
		return found
	}
	if found := checkMounts(rule, prefix, hc.Mounts, result); found != nil {
		return found
	}
	// dockerd 20.10 passes Tmpfs options through to runc, which turns a
	// bind or rbind option into a bind mount of a host path named "tmpfs"
	// relative to the container's bundle folder.
	for target, options := range hc.Tmpfs {
		if flag := bindFlag(options); flag != "" {
			return deny(prefix+"Tmpfs", "mounts %q with option %q", target, flag)
		}
	}

	// Legacy links copy the linked container's environment into the new
	// one, so under ownership they may name only the client's containers.
	for i, link := range hc.Links {
		name, _, _ := strings.Cut(link, ":")
		result.references = append(result.references,
			referenced{Field: fmt.Sprintf("%sLinks[%d]", prefix, i), ID: strings.TrimPrefix(name, "/")})
	}
	for i, from := range hc.VolumesFrom {
		id, _, _ := strings.Cut(from, ":")
		if !rule.Lift.VolumesFrom {
			result.references = append(result.references,
				referenced{Field: fmt.Sprintf("%sVolumesFrom[%d]", prefix, i), ID: id})
		}
	}
	return nil
}

// defaultCapabilities is the capability set dockerd grants containers by
// default (moby oci/caps/defaults.go), so adding one of them changes nothing.
var defaultCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// normalizeCapability converts a capability name to dockerd's comparison
// form without the prefix: upper case, "CAP_" removed.
func normalizeCapability(name string) string {
	upper := strings.ToUpper(strings.TrimSpace(name))
	return strings.TrimPrefix(upper, "CAP_")
}

func checkCapabilities(rule *Rule, prefix string, capAdd []string) *inspection {
	for i, c := range capAdd {
		name := normalizeCapability(c)
		if slices.Contains(rule.Lift.Capabilities, "ALL") || slices.Contains(rule.Lift.Capabilities, name) {
			continue
		}
		if name != "ALL" && slices.Contains(defaultCapabilities, name) {
			continue
		}
		return deny(fmt.Sprintf("%sCapAdd[%d]", prefix, i), "adds %s", c)
	}
	return nil
}

func checkDevices(rule *Rule, prefix string, resources *container.Resources) *inspection {
	if rule.liftAll || rule.Lift.Devices {
		return nil
	}
	switch {
	case len(resources.Devices) > 0:
		return deny(prefix+"Devices", "maps host devices")
	case len(resources.DeviceCgroupRules) > 0:
		return deny(prefix+"DeviceCgroupRules", "adds device cgroup rules")
	case len(resources.DeviceRequests) > 0:
		return deny(prefix+"DeviceRequests", "requests host devices")
	}
	return nil
}

// checkNamespaces denies host namespace modes and records "container:ID"
// modes as references.
func checkNamespaces(rule *Rule, prefix string, hc *container.HostConfig, result *inspection) *inspection {
	modes := []struct {
		field, namespace, mode string
	}{
		{"PidMode", "pid", string(hc.PidMode)},
		{"IpcMode", "ipc", string(hc.IpcMode)},
		{"NetworkMode", "network", string(hc.NetworkMode)},
		{"UTSMode", "uts", string(hc.UTSMode)},
		{"UsernsMode", "userns", string(hc.UsernsMode)},
		{"CgroupnsMode", "cgroup", string(hc.CgroupnsMode)},
		{"Cgroup", "cgroup", string(hc.Cgroup)},
	}
	for _, m := range modes {
		if rule.liftedNamespace(m.namespace) {
			continue
		}
		if strings.EqualFold(strings.TrimSpace(m.mode), "host") {
			return deny(prefix+m.field, "is %q, the host's %s namespace", m.mode, m.namespace)
		}
		kind, id, found := strings.Cut(m.mode, ":")
		if found && strings.EqualFold(strings.TrimSpace(kind), "container") {
			result.references = append(result.references,
				referenced{Field: prefix + m.field, ID: id, Namespace: m.namespace})
		}
	}
	return nil
}

// checkSecurity denies security option overrides. Only no-new-privileges,
// which tightens confinement, passes without the lift.
func checkSecurity(rule *Rule, prefix string, hc *container.HostConfig) *inspection {
	if rule.Lift.SecurityOptions {
		return nil
	}
	for i, opt := range hc.SecurityOpt {
		key, _, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			key, _, _ = strings.Cut(opt, ":")
		}
		if strings.TrimSpace(key) != "no-new-privileges" {
			return deny(fmt.Sprintf("%sSecurityOpt[%d]", prefix, i), "is %q", opt)
		}
	}
	// A non-nil list, even an empty one, replaces the default masked and
	// read-only paths; only null or absent keeps them.
	if hc.MaskedPaths != nil {
		return deny(prefix+"MaskedPaths", "overrides the default masked paths")
	}
	if hc.ReadonlyPaths != nil {
		return deny(prefix+"ReadonlyPaths", "overrides the default read-only paths")
	}
	return nil
}

// checkBinds checks "source:destination[:options]" bind specifications.
// dockerd on Linux splits them at every colon and treats an absolute
// source as a host path, anything else as a volume name.
func checkBinds(rule *Rule, prefix string, binds []string, result *inspection) *inspection {
	for i, bind := range binds {
		field := fmt.Sprintf("%sBinds[%d]", prefix, i)
		parts := strings.Split(bind, ":")
		if len(parts) > 3 {
			return deny(field, "%q has more than three colon-separated parts", bind)
		}
		if len(parts) == 1 {
			continue // an anonymous volume at that path
		}
		source := parts[0]
		if !strings.HasPrefix(source, "/") {
			result.volumes = append(result.volumes, referenced{Field: field, ID: source})
			continue
		}
		if !rule.bindAllowed(source) {
			return deny(field, "binds host path %q", path.Clean(source))
		}
	}
	return nil
}

func checkMounts(rule *Rule, prefix string, mounts []mount.Mount, result *inspection) *inspection {
	for i, m := range mounts {
		field := fmt.Sprintf("%sMounts[%d]", prefix, i)
		switch strings.ToLower(string(m.Type)) {
		case string(mount.TypeBind):
			if !rule.bindAllowed(m.Source) {
				return deny(field, "binds host path %q", path.Clean(m.Source))
			}
		case string(mount.TypeVolume):
			if m.Source != "" {
				result.volumes = append(result.volumes, referenced{Field: field, ID: m.Source})
			}
			if m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil {
				driver := m.VolumeOptions.DriverConfig
				if reason := rule.localVolumeViolation(driver.Name, driver.Options); reason != "" {
					return deny(field+".VolumeOptions.DriverConfig", "%s", reason)
				}
			}
		case string(mount.TypeTmpfs), string(mount.TypeImage), string(mount.TypeCluster):
		default:
			return deny(field+".Type", "is %q, which dockmoat does not inspect", m.Type)
		}
	}
	return nil
}

// VolumeViolation returns why the rule that allowed d does not allow an
// existing volume with driver and options, or "" when it does.
func (d Decision) VolumeViolation(driver string, options map[string]string) string {
	if d.rule == nil {
		return ""
	}
	return d.rule.localVolumeViolation(driver, options)
}

// localVolumeOptions are the option keys that dockerd's local volume driver
// accepts. dockerd 20.10.24 compares them exactly and rejects "Device".
var localVolumeOptions = []string{"type", "device", "o", "size"}

// localVolumeViolation returns why a volume of driver with options would
// mount something of the host that the rule does not allow, or "" when it
// would not. Only the local driver ("" or "local") is judged. dockerd mounts
// such a volume with mount(2) in the host's mount namespace, so every file
// system type but tmpfs can reach the host. Examples are a bind of device,
// an overlay with host folders as lowerdir and upperdir, the host's proc or
// sysfs, and a block device named by a relative path. A bind passes when
// device lies under the rule's bind paths, and other types need a rule that
// lifts every constraint.
func (r *Rule) localVolumeViolation(driver string, options map[string]string) string {
	if r.liftAll || (driver != "" && driver != "local") {
		return ""
	}
	for key := range options {
		if !slices.Contains(localVolumeOptions, key) {
			return fmt.Sprintf("sets option %q, which the local driver does not take", key)
		}
	}
	mountType, device := options["type"], options["device"]
	if flag := bindFlag(options["o"]); flag != "" {
		if !r.bindAllowed(strings.TrimSpace(device)) {
			return fmt.Sprintf("uses mount option %q on host path %q", flag, device)
		}
		return ""
	}
	if mountType == "tmpfs" || (mountType == "" && device == "" && options["o"] == "") {
		return ""
	}
	return fmt.Sprintf("mounts file system type %q from %q, and only tmpfs and binds under the rule's bind paths are allowed",
		mountType, device)
}

// bindFlag returns "bind" or "rbind" when the comma-separated mount options
// contain one of them, compared case-insensitively, or "".
func bindFlag(options string) string {
	for _, opt := range strings.Split(options, ",") {
		opt = strings.ToLower(strings.TrimSpace(opt))
		if opt == "bind" || opt == "rbind" {
			return opt
		}
	}
	return ""
}

// bindAllowed reports whether the rule allows a bind of host path source.
//
// NOTE: dockerd follows symbolic links in source when it mounts it (seen
// with dockerd 20.10.24), so a link under an allowed prefix binds whatever
// it points to. Paths are compared as text only, so allowed prefixes must
// not be writable by the clients, for example through an allowed bind.
func (r *Rule) bindAllowed(source string) bool {
	if r.liftAll {
		return true
	}
	if !strings.HasPrefix(source, "/") {
		return false
	}
	cleaned := path.Clean(source)
	for _, prefix := range r.Lift.BindPaths {
		if cleaned == prefix || strings.HasPrefix(cleaned, prefix+"/") {
			return true
		}
	}
	return false
}

func (r *Rule) liftedNamespace(namespace string) bool {
	return r.liftAll || slices.Contains(r.Lift.Namespaces, namespace)
}

// inspectUpdate checks a container update body. dockerd 20.10.24 decodes it
// into container.UpdateConfig, which has resources and the restart policy
// but no LogConfig, and leaves the log driver unchanged when the body has
// one.
func inspectUpdate(rule *Rule, data []byte) *inspection {
	var body container.UpdateConfig
	if err := decodeBody(data, &body); err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	if found := checkDevices(rule, "", &body.Resources); found != nil {
		return found
	}
	return &inspection{}
}

// inspectExec checks an exec create body.
func inspectExec(rule *Rule, data []byte) *inspection {
	var body container.ExecCreateRequest
	if err := decodeBody(data, &body); err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	if body.Privileged && !rule.liftAll && !rule.Lift.Privileged {
		return deny("Privileged", "is true")
	}
	return &inspection{}
}

// inspectVolumeCreate checks a volume create body.
func inspectVolumeCreate(rule *Rule, data []byte) *inspection {
	var body volume.CreateRequest
	if err := decodeBody(data, &body); err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	if reason := rule.localVolumeViolation(body.Driver, body.DriverOpts); reason != "" {
		return deny("DriverOpts", "%s", reason)
	}
	return &inspection{}
}

// inspectNetworkConnect checks a network connect or disconnect body and
// records the container it names.
func inspectNetworkConnect(data []byte) *inspection {
	var body network.ConnectRequest
	if err := decodeBody(data, &body); err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	return &inspection{references: []referenced{{Field: "Container", ID: body.Container}}}
}

// inspectJSON checks that an otherwise unchecked JSON body decodes without
// duplicate keys, so that no inspected route forwards ambiguous JSON.
func inspectJSON(data []byte) *inspection {
	var body any
	if err := decodeBody(data, &body); err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	return &inspection{}
}

// imageAllowed reports whether reference's repository matches a pattern.
// The tag or digest is ignored.
func imageAllowed(patterns []string, reference string) bool {
	repository := reference
	if at := strings.IndexByte(repository, '@'); at >= 0 {
		repository = repository[:at]
	}
	if colon := strings.LastIndexByte(repository, ':'); colon > strings.LastIndexByte(repository, '/') {
		repository = repository[:colon]
	}
	return matchAny(patterns, repository)
}
