package policy

import (
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// localLogDrivers are the log drivers that write only to files of the daemon
// or to the host's journal. The other built-in drivers of dockerd 20.10.24,
// such as syslog, gelf, fluentd, splunk or awslogs, send logs to an address
// from the container's log options, and dockerd connects to it from the
// host's network namespace. Log driver plugins are denied as well.
var localLogDrivers = []string{"json-file", "local", "journald", "none"}

// localLogOptions are the options that json-file, local or journald of
// dockerd 20.10.24 accept (tried with docker create), and "mode" and
// "max-buffer-size", which dockerd reads for every driver.
var localLogOptions = []string{
	"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag",
	"mode", "max-buffer-size",
}

// checkLogConfig denies a log driver outside localLogDrivers unless the rule
// lifts it. An empty driver selects the daemon's default driver, and dockerd
// passes the container's options to that driver. Those options must then be
// ones that a local driver accepts, because a daemon whose default is syslog
// would otherwise take syslog-address from the client.
func checkLogConfig(rule *Rule, prefix string, config container.LogConfig) *inspection {
	driver := config.Type
	if driver != "" {
		if !slices.Contains(localLogDrivers, driver) && !slices.Contains(rule.Lift.LogDrivers, driver) {
			return deny(prefix+"LogConfig.Type", "is %q, a log driver other than json-file, local, journald and none", driver)
		}
		return nil
	}
	for _, key := range sortedKeys(config.Config) {
		if !slices.Contains(localLogOptions, key) {
			return deny(prefix+"LogConfig.Config", "sets option %q for the daemon's default log driver", key)
		}
	}
	return nil
}

// localNetworkDrivers are the network drivers that keep containers off the
// host's own networks. dockerd 20.10.24 treats an empty driver as bridge,
// allows only one network of the null and host drivers, and needs swarm
// mode for overlay. macvlan and ipvlan attach containers to the host
// interface named by their "parent" option.
var localNetworkDrivers = []string{"", "bridge", "overlay", "null"}

// bridgeNameOption names the Linux bridge of a bridge network. The bridge
// driver of dockerd 20.10.24 (libnetwork drivers/bridge) creates the bridge
// when no interface has that name and otherwise uses the existing bridge,
// so the option can join a host bridge that is wired to a physical network.
// The request does not show whether Docker created the interface.
const bridgeNameOption = "com.docker.network.bridge.name"

// deniedNetworkOptions are the network driver options that only a rule with
// network_options may set.
var deniedNetworkOptions = []string{bridgeNameOption}

// inspectNetworkCreate checks a network create body. Options are checked
// whatever the driver, because a config-only network stores them, and
// dockerd 20.10.24 applies them to any network created with ConfigFrom
// naming it, whatever that network's driver.
//
// NOTE: ConfigFrom is not resolved, so a client may still build a bridge
// network on a config-only network that an admin created with a bridge name.
func inspectNetworkCreate(rule *Rule, data []byte) *inspection {
	var body network.CreateRequest
	if err := decodeBody(data, &body); err != nil {
		return deny("body", "cannot be decoded (%v)", err)
	}
	if rule.liftAll {
		return &inspection{}
	}
	if !slices.Contains(localNetworkDrivers, body.Driver) && !slices.Contains(rule.Lift.NetworkDrivers, body.Driver) {
		return deny("Driver", "is %q, a network driver other than bridge, overlay and null", body.Driver)
	}
	for _, key := range sortedKeys(body.Options) {
		for _, denied := range deniedNetworkOptions {
			if strings.EqualFold(key, denied) && !slices.Contains(rule.Lift.NetworkOptions, denied) {
				return deny("Options", "sets %q, which may name an existing host interface", key)
			}
		}
	}
	return &inspection{}
}

// sortedKeys returns the keys of m in order, so that a denial names the same
// key on every run.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
