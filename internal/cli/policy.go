package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/identity"
	"github.com/dockmoat/dockmoat/internal/policy"
)

func addPolicyCommands(root *cobra.Command) {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate, explain and print gateway authorization policies",
		Long:  policyHelp,
	}
	cmd.AddCommand(newPolicyCheckCommand(), newPolicyExplainCommand(),
		newPolicyDefaultCommand(), newPolicyOperationsCommand())
	root.AddCommand(cmd)
}

const policyHelp = `Validate, explain and print gateway authorization policies.

A policy file is YAML with one key, rules. Rules are tried in order, and the
first rule that selects the client, grants the operation and whose
constraints the request meets allows it. Everything else is denied, except
_ping and version, which every client with a valid certificate may call.

  rules:
    - name: ci                  # named in denials and audit records
      clients: ["ci-*"]         # CN patterns (path.Match); empty: any CN
      groups: [ci]              # certificate OU values; empty: any group
      presets: [ci]             # admin, ci, readonly
      operations: [image.save, "volume.*"]   # see 'dockmoat policy operations'
      ownership: true           # label created containers, hide others' (404)
      images: ["registry.example/*"]   # repositories for create, pull, build, tag
      lift:                     # constraints this rule relaxes
        privileged: false       # privileged containers and exec
        capabilities: [NET_ADMIN]           # CapAdd beyond Docker's defaults
        devices: false          # Devices, DeviceCgroupRules, DeviceRequests
        namespaces: [pid]       # host pid, ipc, network, uts, userns, cgroup
        security_options: false # seccomp, AppArmor, SELinux, masked paths
        sysctls: ["net.ipv4.*"]
        bind_paths: [/srv/ci]   # host path prefixes for bind mounts
        volumes_from: false     # VolumesFrom without an ownership check
        log_drivers: [syslog]   # beyond json-file, local, journald, none
        network_drivers: [macvlan]          # beyond bridge, overlay, null
        network_options: [com.docker.network.bridge.name]
        build_host_network: false
        build_remote: false

The admin preset grants every operation and lifts every constraint. The
readonly preset lists and inspects containers, images, networks and volumes
and reads info, version, events and disk usage. The ci preset adds builds,
pulls, pushes, tags, loads, running containers, logs, attach, exec, and
volume and network management, under the constraints.

Exec, exec start and attach are allowed only on containers that the rule
could create, so a ci client cannot exec into another client's privileged
container. Local volumes may be tmpfs or a bind under bind_paths; other file
system types, such as overlay or proc, need the admin preset. Bind paths are
compared as text and dockerd follows symbolic links under them, so clients
must not be able to write there.

Log drivers other than json-file, local, journald and none, such as syslog,
gelf or fluentd, make dockerd connect from the host's network to the
address in the log options. Without a driver, only the options of those
four may be set. Network drivers other than bridge, overlay and null, such
as macvlan and ipvlan, attach containers to a host interface, and so can
the bridge option com.docker.network.bridge.name, which may name an
existing host bridge. log_drivers, network_drivers and network_options
lift these limits.`

func newPolicyCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPolicy(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid, rules: %d\n", args[0], len(p.Rules))
			return nil
		},
	}
}

// loadPolicy loads a policy file and marks its errors as usage errors.
func loadPolicy(name string) (*policy.Policy, error) {
	p, err := policy.Load(name)
	if err == nil {
		return p, nil
	}
	var parseErr *policy.ParseError
	if errors.As(err, &parseErr) {
		return nil, usageError(err, "fix the line named above, then run 'dockmoat policy check "+name+"'")
	}
	return nil, usageError(err, "pass the path of a policy file; 'dockmoat policy default' prints an example")
}

func newPolicyExplainCommand() *cobra.Command {
	var policyFile, client string
	var groups []string
	cmd := &cobra.Command{
		Use:   "explain [--policy FILE] --client NAME [--group G]... METHOD PATH [BODY_FILE]",
		Short: "Show how a policy decides one request",
		Long: `Show the operation, decision and rule for one request by a client.

PATH is the request target as the client sends it, with an optional /vX.Y
prefix and query, for example /v1.41/containers/create. BODY_FILE is the
JSON request body, or - for standard input. Without --policy the default
policy of dockmoat up is used. The exit code is 0 when the request is
allowed and 1 when it is denied or rejected.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if client == "" {
				return usageError(errors.New("missing --client"), "name the client certificate's CN with --client NAME")
			}
			p := policy.Default()
			if policyFile != "" {
				var err error
				if p, err = loadPolicy(policyFile); err != nil {
					return err
				}
			}
			var body []byte
			if len(args) == 3 {
				var err error
				if body, err = readBodyFile(cmd.InOrStdin(), args[2]); err != nil {
					return err
				}
			}
			id := identity.Identity{Name: client, Groups: groups}
			return explain(cmd.OutOrStdout(), p, id, strings.ToUpper(args[0]), args[1], body)
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file (default: the built-in default policy)")
	cmd.Flags().StringVar(&client, "client", "", "client certificate CN")
	cmd.Flags().StringArrayVar(&groups, "group", nil, "client group (certificate OU), repeatable")
	return cmd
}

func readBodyFile(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	body, err := os.ReadFile(name)
	if err != nil {
		return nil, usageError(fmt.Errorf("read body: %w", err), "pass a JSON file, or - for standard input")
	}
	return body, nil
}

// explain prints the decision for one request and returns a silent exit
// code 1 when it is not allowed.
func explain(out io.Writer, p *policy.Policy, id identity.Identity, method, target string, body []byte) error {
	req, err := dockerapi.ClassifyTarget(method, target)
	if err != nil {
		var apiErr *dockerapi.Error
		if !errors.As(err, &apiErr) {
			return err
		}
		fmt.Fprintf(out, "operation: (none)\ndecision:  reject with status %d\nmessage:   dockmoat: %s\n",
			apiErr.Status, apiErr.Message)
		return silentExit(ExitFailure)
	}

	d := p.Decide(id, req, body)
	fmt.Fprintf(out, "operation: %s\n", d.Operation)
	if d.Allow {
		fmt.Fprintf(out, "decision:  allow\nrule:      %s\n", d.Rule)
		if d.Owner != "" {
			fmt.Fprintf(out, "ownership: containers must carry label %s=%s\n", policy.OwnerLabel, d.Owner)
		}
		for _, ref := range d.Confined {
			fmt.Fprintf(out, "confined:  the gateway inspects %s %q and denies unless rule %s could create it\n",
				confinedKind(ref), ref.ID, d.Rule)
		}
		for _, ref := range d.Volumes {
			fmt.Fprintf(out, "volume:    %s names volume %q, whose driver options the gateway checks if it exists\n",
				ref.Field, ref.ID)
		}
		return nil
	}
	fmt.Fprintf(out, "decision:  deny with status %d\nrule:      %s\n", d.Status, d.Rule)
	if d.Field != "" {
		fmt.Fprintf(out, "field:     %s\n", d.Field)
	}
	fmt.Fprintf(out, "message:   %s\n", d.Message)
	return silentExit(ExitFailure)
}

// confinedKind names what a confined reference of a decision points at.
func confinedKind(ref policy.Reference) string {
	if ref.Field == "exec" {
		return "the container of exec instance"
	}
	return "container"
}

func newPolicyDefaultCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "default",
		Short: "Print the default policy that serve and up use without --policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), policy.DefaultYAML)
			return err
		},
	}
}

func newPolicyOperationsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "operations",
		Short: "List the operation names that rules may grant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, op := range dockerapi.Operations() {
				fmt.Fprintln(cmd.OutOrStdout(), op)
			}
			return nil
		},
	}
}
