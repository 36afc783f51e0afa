package daemonconf

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DefaultDaemonJSON is the path dockerd reads daemon.json from unless its
// command line has --config-file.
const DefaultDaemonJSON = "/etc/docker/daemon.json"

// DefaultDockerd is the dockerd path written into the drop-in when no
// docker.service is installed.
const DefaultDockerd = "/usr/bin/dockerd"

// Flag is one option on dockerd's command line.
type Flag struct {
	// Name is the option without dashes, such as "H" or "containerd".
	Name string
	// Value is the option's argument, empty for a boolean option.
	Value string
	// Words are the command-line words the option took, one or two.
	Words []string
}

// Key returns the daemon.json key that the option sets. dockerd stops at
// start when an option and its key are both set ("the following directives
// are specified both as a flag and in the configuration file").
func (f Flag) Key() string {
	if key, ok := flagKeys[f.Name]; ok {
		return key
	}
	return f.Name
}

// flagKeys maps dockerd options whose daemon.json key differs from their
// name: the short forms, and the repeatable options whose key is plural.
// NOTE: the list follows dockerd's daemon.json reference and may miss
// options added after dockerd 28; those map to their own name.
var flagKeys = map[string]string{
	"H": "hosts", "host": "hosts",
	"D": "debug", "l": "log-level", "G": "group", "p": "pidfile",
	"g": "data-root", "graph": "data-root", "b": "bridge", "s": "storage-driver",
	"label":                  "labels",
	"log-opt":                "log-opts",
	"storage-opt":            "storage-opts",
	"exec-opt":               "exec-opts",
	"insecure-registry":      "insecure-registries",
	"registry-mirror":        "registry-mirrors",
	"authorization-plugin":   "authorization-plugins",
	"add-runtime":            "runtimes",
	"default-ulimit":         "default-ulimits",
	"dns-opt":                "dns-opts",
	"cluster-store-opt":      "cluster-store-opts",
	"node-generic-resource":  "node-generic-resources",
	"default-address-pool":   "default-address-pools",
	"cdi-spec-dir":           "cdi-spec-dirs",
	"feature":                "features",
	"allow-nondistributable": "allow-nondistributable-artifacts",
}

// boolFlags are dockerd options that take no argument unless written as
// --name=value.
var boolFlags = map[string]bool{
	"D": true, "debug": true, "tls": true, "tlsverify": true,
	"experimental": true, "icc": true, "ip-forward": true, "ip-masq": true,
	"iptables": true, "ip6tables": true, "ipv6": true, "live-restore": true,
	"no-new-privileges": true, "selinux-enabled": true, "userland-proxy": true,
	"raw-logs": true, "init": true, "rootless": true, "validate": true,
	"userns-remap-disabled": true, "disable-legacy-registry": true,
}

// ParseFlags splits dockerd's arguments (without the program) into options.
// Words that are not options, such as an unexpanded $DOCKER_OPTS, come back
// as a Flag with an empty Name.
func ParseFlags(args []string) []Flag {
	var flags []Flag
	for i := 0; i < len(args); i++ {
		word := args[i]
		if !strings.HasPrefix(word, "-") || word == "-" || word == "--" {
			flags = append(flags, Flag{Words: []string{word}})
			continue
		}
		name := strings.TrimLeft(word, "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			flags = append(flags, Flag{Name: n, Value: v, Words: []string{word}})
			continue
		}
		// A single-dash short option may carry its value directly, as in
		// -Hfd://.
		if !strings.HasPrefix(word, "--") && len(name) > 1 && !boolFlags[name] {
			if _, known := flagKeys[name[:1]]; known {
				flags = append(flags, Flag{Name: name[:1], Value: name[1:], Words: []string{word}})
				continue
			}
		}
		if !boolFlags[name] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			flags = append(flags, Flag{Name: name, Value: args[i+1], Words: []string{word, args[i+1]}})
			i++
			continue
		}
		flags = append(flags, Flag{Name: name, Words: []string{word}})
	}
	return flags
}

// Plan is the set of systemd drop-ins daemon-config writes, with the reasons.
type Plan struct {
	// ServiceDropIn is the docker.service drop-in.
	ServiceDropIn string
	// SocketDropIn is the docker.socket drop-in, empty unless docker.socket
	// listens on TCP.
	SocketDropIn string
	// DaemonJSONPath is the path dockerd reads daemon.json from with the
	// new command line.
	DaemonJSONPath string
	// Findings explain each clash the installed units would have caused
	// with the new daemon.json, and what the drop-ins do about it.
	Findings []string
}

var envReference = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// PlanUnits returns the drop-ins that start dockerd with daemon.json as
// the only source of the keys in jsonKeys. service may be nil when no
// docker.service is installed, and socket nil when there is no
// docker.socket.
func PlanUnits(service, socket *Unit, jsonKeys []string) Plan {
	plan := Plan{DaemonJSONPath: DefaultDaemonJSON}
	command := []string{DefaultDockerd}
	if service != nil && len(service.ExecStart) > 0 {
		command = service.ExecStart
	}

	newCommand := []string{command[0]}
	for _, f := range ParseFlags(command[1:]) {
		if f.Name == "config-file" {
			plan.DaemonJSONPath = f.Value
		}
		if f.Name != "" && slices.Contains(jsonKeys, f.Key()) {
			plan.Findings = append(plan.Findings, explainClash(f))
			continue
		}
		newCommand = append(newCommand, f.Words...)
	}
	plan.Findings = append(plan.Findings, explainIndirect(service, newCommand)...)
	plan.ServiceDropIn = serviceDropIn(newCommand)

	if socket != nil {
		dropIn, findings := planSocket(socket)
		plan.SocketDropIn = dropIn
		plan.Findings = append(plan.Findings, findings...)
	}
	return plan
}

func explainClash(f Flag) string {
	written := strings.Join(f.Words, " ")
	msg := fmt.Sprintf("docker.service starts dockerd with %q while daemon.json sets %q: "+
		"dockerd would stop at start with \"the following directives are specified both "+
		"as a flag and in the configuration file: %s\". The drop-in leaves %q out.",
		written, f.Key(), f.Key(), written)
	if f.Key() == "hosts" && strings.HasPrefix(f.Value, "fd://") {
		msg += " " + fmt.Sprintf("%q is socket activation: dockerd takes its sockets from "+
			"docker.socket and fails with \"no sockets found via socket activation\" when "+
			"that unit is not active. The new command line binds the sockets in daemon.json itself.",
			written)
	}
	return msg
}

// explainIndirect warns about environment variables that systemd expands
// into the command line, because they may hold the same clashing options.
func explainIndirect(service *Unit, command []string) []string {
	var findings []string
	for _, w := range command[1:] {
		for _, ref := range envReference.FindAllString(w, -1) {
			where := "the unit's Environment= settings"
			if service != nil && len(service.EnvironmentFiles) > 0 {
				where = strings.Join(service.EnvironmentFiles, ", ")
			}
			findings = append(findings, fmt.Sprintf("the command line expands %s from %s: "+
				"remove any -H, --host or --tls* option there, or dockerd stops with the same clash.",
				ref, where))
		}
	}
	return findings
}

func serviceDropIn(command []string) string {
	words := make([]string, len(command))
	for i, w := range command {
		if i > 0 && envReference.MatchString(w) && !strings.ContainsAny(w, " \t\"'") {
			words[i] = w
			continue
		}
		words[i] = quoteWord(w)
	}
	return "# Written by dockmoat daemon-config. dockerd reads its listeners and TLS\n" +
		"# settings from daemon.json, and an option given both there and on the\n" +
		"# command line stops dockerd at start, so the empty ExecStart= first\n" +
		"# clears the packaged command line.\n" +
		"[Service]\n" +
		"ExecStart=\n" +
		"ExecStart=" + strings.Join(words, " ") + "\n"
}

// planSocket returns a docker.socket drop-in that keeps only the unix
// listeners, when the socket unit also listens on TCP.
func planSocket(socket *Unit) (string, []string) {
	var unix, tcp []string
	for _, l := range socket.ListenStream {
		if strings.HasPrefix(l, "/") || strings.HasPrefix(l, "@") {
			unix = append(unix, l)
		} else {
			tcp = append(tcp, l)
		}
	}
	if len(tcp) == 0 {
		return "", nil
	}
	var findings []string
	for _, l := range tcp {
		findings = append(findings, fmt.Sprintf("docker.socket has ListenStream=%s: systemd "+
			"accepts plain TCP there, on every address unless one is given, with no TLS "+
			"and no client authentication. The docker.socket drop-in removes it.", l))
	}
	var b strings.Builder
	b.WriteString("# Written by dockmoat daemon-config. dockerd serves TCP itself with\n" +
		"# mutual TLS, so the socket unit keeps only its unix sockets.\n" +
		"[Socket]\n" +
		"ListenStream=\n")
	for _, l := range unix {
		b.WriteString("ListenStream=" + l + "\n")
	}
	return b.String(), findings
}
