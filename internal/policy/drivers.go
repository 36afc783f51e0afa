package policy

import (
	"slices"

	"github.com/moby/moby/api/types/container"
)

// localLogDrivers are the log drivers that write only to files of the daemon
// or to the host's journal. The other built-in drivers of dockerd 20.10.24,
// such as syslog, gelf, fluentd, splunk or awslogs, send logs to an address
// from the container's log options, and dockerd connects to it from the
// host's network namespace. Log driver plugins are denied as well.
var localLogDrivers = []string{"json-file", "local", "journald", "none"}

// localLogOptions are the options that the local log drivers of dockerd
// 20.10.24 accept, including "mode" and "max-buffer-size", which every
// driver accepts.
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
