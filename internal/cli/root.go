// Package cli is dockmoat's command tree. Each command group lives in a file
// of its own. This file contains the root command, the state directory rule
// and the mapping from errors to exit codes.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Exit codes. The README lists them for users.
const (
	// ExitOK means the command did what it was asked.
	ExitOK = 0
	// ExitFailure means the command ran and failed, or, for check and
	// doctor, that it found an exposed endpoint or a failing client.
	ExitFailure = 1
	// ExitUsage means invalid flags, arguments or configuration, or, for
	// check, that checking itself failed.
	ExitUsage = 2
)

// exitError carries an exit code and an optional hint line through cobra.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as a usage or input error (exit code 2) and attaches
// a hint that names the fix, for example the corrected command.
func usageError(err error, hint string) error {
	return &exitError{code: ExitUsage, err: err, hint: hint}
}

// failure marks err as a failure with exit code 1 and attaches a hint.
func failure(err error, hint string) error {
	return &exitError{code: ExitFailure, err: err, hint: hint}
}

// silentExit ends the command with code and no message, for commands that
// have already printed their findings.
func silentExit(code int) error {
	return &exitError{code: code}
}

// Main runs dockmoat with args and returns the process exit code. It is the
// only place that turns errors into exit codes.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}

	var exit *exitError
	if !errors.As(err, &exit) {
		fmt.Fprintf(stderr, "dockmoat: %v\n", err)
		return ExitFailure
	}
	if exit.err != nil {
		fmt.Fprintf(stderr, "dockmoat: %v\n", exit.err)
	}
	if exit.hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", exit.hint)
	}
	return exit.code
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "dockmoat",
		Short: "Secure remote access to a Docker daemon with mutual TLS",
		Long: `dockmoat secures remote access to a Docker daemon.

It runs a certificate authority for Docker TLS (dockmoat pki), an mTLS
gateway in front of the local Docker socket that authorizes every API call
per client (dockmoat serve, dockmoat up), and tools that configure dockerd's
own TLS and diagnose clients that cannot connect.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError(err, fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()))
	})
	root.PersistentFlags().String("dir", "",
		"state directory with the CA, issued certificates and CRL\n"+
			"(default $DOCKMOAT_DIR, else /etc/dockmoat as root, else $XDG_CONFIG_HOME/dockmoat)")

	addPKICommands(root)
	addServeCommands(root)
	addPolicyCommands(root)
	addDaemonConfigCommand(root)
	addCheckCommand(root)
	addDoctorCommand(root)
	root.Version = version()
	markUsageErrors(root)
	return root
}

// markUsageErrors makes wrong arguments exit with ExitUsage and a hint, on
// cmd and every command below it. cobra returns argument errors as plain
// errors, which would otherwise exit 1, the code check and policy explain
// use for a finding. A command that only groups subcommands prints its help
// when run alone and rejects any argument, because cobra would otherwise
// print the help and exit 0 for a mistyped subcommand.
func markUsageErrors(cmd *cobra.Command) {
	validate := cmd.Args
	if cmd.HasSubCommands() && !cmd.Runnable() {
		validate = cobra.NoArgs
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	if validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				return usageError(err, fmt.Sprintf("run '%s --help' for usage", c.CommandPath()))
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		markUsageErrors(sub)
	}
}

// version returns the module version dockmoat was built from, or "devel"
// for a build from a source tree.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "devel"
	}
	return info.Main.Version
}

// writeJSON writes v to w as JSON indented by two spaces, for the --json
// output of check, doctor and pki list.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stateDir returns the state directory for cmd: the --dir flag, else
// $DOCKMOAT_DIR, else /etc/dockmoat when running as root, else
// $XDG_CONFIG_HOME/dockmoat (~/.config/dockmoat when XDG_CONFIG_HOME is unset).
func stateDir(cmd *cobra.Command) (string, error) {
	if dir, _ := cmd.Flags().GetString("dir"); dir != "" {
		return filepath.Abs(dir)
	}
	if dir := os.Getenv("DOCKMOAT_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	if os.Geteuid() == 0 {
		return "/etc/dockmoat", nil
	}
	config, err := os.UserConfigDir()
	if err != nil {
		return "", usageError(fmt.Errorf("cannot find a state directory: %w", err),
			"pass --dir DIR or set DOCKMOAT_DIR")
	}
	return filepath.Join(config, "dockmoat"), nil
}
