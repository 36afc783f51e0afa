package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dockmoat/dockmoat/internal/probe"
	"github.com/spf13/cobra"
)

type doctorOptions struct {
	host, certPath, context string
	explain                 string
	asJSON                  bool
	timeout                 time.Duration
}

func addDoctorCommand(root *cobra.Command) {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Explain why a Docker client cannot connect, and print the fix",
		Long: `doctor reads what a Docker client would use (DOCKER_HOST, DOCKER_TLS_VERIFY,
DOCKER_CERT_PATH, DOCKER_CONTEXT, the current docker context and its TLS
files, or --host, --cert-path and --context) and checks it: each PEM file,
the endpoint as 'dockmoat check' sees it, the client's own TLS handshake and
GET /_ping, and the host the client dials against the server certificate's
names. Each finding comes with its cause and fix.

doctor --explain MESSAGE maps an error message from the docker CLI, Java,
Python, Node or dockerd's log to its causes and the checks to run. With
--explain - it reads the message, such as a whole stack trace, from stdin.

Exit status: 0 when the client would connect or its host cannot be probed
(ssh://, npipe://, fd://, reported as not checked), 1 when it would fail (or
no known message matched --explain), 2 on invalid flags or configuration.`,
		Example: `  dockmoat doctor
  DOCKER_HOST=tcp://10.0.0.5:2376 DOCKER_TLS_VERIFY=1 dockmoat doctor
  dockmoat doctor --explain 'x509: certificate relies on legacy Common Name field'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("explain") {
				return runExplain(cmd.InOrStdin(), cmd.OutOrStdout(), o)
			}
			return runDoctor(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "Docker host to check, as DOCKER_HOST (overrides the environment and contexts)")
	f.StringVar(&o.certPath, "cert-path", "", "folder with ca.pem, cert.pem and key.pem; turns TLS verification on")
	f.StringVar(&o.context, "context", "", "docker context to check, as docker --context")
	f.StringVar(&o.explain, "explain", "", "error message to explain instead of checking a client, '-' for stdin")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "time limit for each connection")
	root.AddCommand(cmd)
}

func runDoctor(cmd *cobra.Command, o doctorOptions) error {
	cfg, envFindings, err := probe.ResolveClient(probe.ClientOptions{
		Host: o.host, CertPath: o.certPath, Context: o.context,
	})
	if err != nil {
		return usageError(err, "check DOCKER_HOST, DOCKER_CONTEXT and DOCKER_CONFIG, or pass --host")
	}
	rep := probe.Diagnose(context.Background(), cfg, envFindings, probe.Options{Timeout: o.timeout})

	out := cmd.OutOrStdout()
	if o.asJSON {
		if err := writeJSON(out, rep); err != nil {
			return err
		}
	} else {
		printReport(out, rep)
	}
	if rep.ClientFails {
		return silentExit(ExitFailure)
	}
	return nil
}

func printReport(w io.Writer, rep probe.Report) {
	c := rep.Client
	mode := "plain HTTP"
	switch {
	case c.TLSVerify:
		mode = "TLS, verifying the server"
	case c.TLS:
		mode = "TLS, without verifying the server"
	}
	fmt.Fprintf(w, "client: %s (from %s), %s\n", c.Host, c.Source, mode)
	if c.TLS {
		fmt.Fprintf(w, "files: %s, %s, %s\n", c.Files.CA, c.Files.Cert, c.Files.Key)
	}
	if r := rep.Endpoint; r != nil {
		fmt.Fprintf(w, "endpoint: %s: %s\n", r.Address, r.Verdict.Describe())
	}
	fmt.Fprintln(w)
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "%-7s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Subject, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "        fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintln(w)
	switch {
	case rep.ClientFails:
		fmt.Fprintln(w, "result: the client would fail; fix the ERROR lines above")
	case rep.Unchecked:
		fmt.Fprintf(w, "result: not checked: doctor cannot connect to %s the way the client does; "+
			"run 'docker version' to test the connection\n", rep.Client.Host)
	default:
		fmt.Fprintln(w, "result: the client would connect")
	}
}

// maxExplainStdin bounds how much of stdin --explain - reads.
const maxExplainStdin = 1 << 20

func runExplain(stdin io.Reader, w io.Writer, o doctorOptions) error {
	if o.explain == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, maxExplainStdin))
		if err != nil {
			return fmt.Errorf("read the message from stdin: %w", err)
		}
		o.explain = string(data)
	}
	if strings.TrimSpace(o.explain) == "" {
		return usageError(errors.New("empty --explain message"), "pass the error text in quotes: --explain 'MESSAGE'")
	}
	exps := probe.Explain(o.explain)
	if o.asJSON {
		if err := writeJSON(w, exps); err != nil {
			return err
		}
	} else {
		printExplanations(w, exps)
	}
	if len(exps) == 0 {
		return failure(fmt.Errorf("no known cause matches this message"),
			"run 'dockmoat doctor' to check the client's configuration directly")
	}
	return nil
}

func printExplanations(w io.Writer, exps []probe.Explanation) {
	for i, e := range exps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (matched %q)\n%s\n", e.ID, e.Matched, e.Summary)
		fmt.Fprintln(w, "causes:")
		for _, c := range e.Causes {
			fmt.Fprintf(w, "  - %s\n", c)
		}
		fmt.Fprintln(w, "checks:")
		for _, c := range e.Checks {
			fmt.Fprintf(w, "  - %s\n", c)
		}
	}
}
