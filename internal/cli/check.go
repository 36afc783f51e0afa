package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dockmoat/dockmoat/internal/probe"
	"github.com/spf13/cobra"
)

func addCheckCommand(root *cobra.Command) {
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check TARGET...",
		Short: "Report whether Docker endpoints are open to anyone",
		Long: `check reports, for each port, whether it serves the Docker API over plain
HTTP (exposed: anyone is root on the host), over TLS without client
authentication (exposed), with mutual TLS required (protected), something
that is not a Docker API, or nothing (closed or filtered). For TLS it also
prints the server certificate's names, key type, issuer and expiry, and
protocol versions older than TLS 1.2 that the server accepts.

TARGET is HOST:PORT, HOST (then ports 2375 and 2376) or a URL with scheme
tcp, http or https. check sends nothing but TLS handshakes, GET /_ping and
GET /version, and changes nothing on the target.

Exit status: 0 when every target is protected, closed, filtered or not a
Docker API; 1 when any is exposed; 2 when checking failed for a target and
none is exposed.`,
		Example: `  dockmoat check docker.example.test
  dockmoat check 10.0.0.5:2376 tcp://10.0.0.6 --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, args, asJSON, timeout)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as a JSON array")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "time limit for each connection")
	root.AddCommand(cmd)
}

func runCheck(cmd *cobra.Command, args []string, asJSON bool, timeout time.Duration) error {
	var endpoints []probe.Endpoint
	for _, a := range args {
		eps, err := probe.ParseTarget(a)
		if err != nil {
			return usageError(err, "run 'dockmoat check --help' for the target forms")
		}
		endpoints = append(endpoints, eps...)
	}
	results := make([]probe.Result, 0, len(endpoints))
	for _, ep := range endpoints {
		results = append(results, probe.Check(context.Background(), ep, probe.Options{Timeout: timeout}))
	}

	out := cmd.OutOrStdout()
	if asJSON {
		if err := writeJSON(out, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			printCheckResult(out, r)
		}
	}
	return silentExit(checkExitCode(results))
}

// checkExitCode returns 1 when any result is exposed, else 2 when checking
// failed for any, else 0. An exposed port is the finding that matters
// most, so it wins over a failure elsewhere.
func checkExitCode(results []probe.Result) int {
	code := ExitOK
	for _, r := range results {
		if r.Exposed {
			return ExitFailure
		}
		if r.Verdict == probe.VerdictError {
			code = ExitUsage
		}
	}
	return code
}

func printCheckResult(w io.Writer, r probe.Result) {
	label := map[probe.Verdict]string{
		probe.VerdictPlainAPI:        "EXPOSED",
		probe.VerdictTLSNoClientAuth: "EXPOSED",
		probe.VerdictMutualTLS:       "protected",
		probe.VerdictNotDocker:       "other",
		probe.VerdictClosed:          "closed",
		probe.VerdictFiltered:        "closed",
		probe.VerdictError:           "error",
	}[r.Verdict]
	fmt.Fprintf(w, "%s\t%s\t%s\n", r.Address, label, r.Verdict.Describe())
	if r.Reason != "" {
		fmt.Fprintf(w, "\t\treason: %s\n", r.Reason)
	}
	if r.HTTP != "" {
		fmt.Fprintf(w, "\t\tanswer: %s\n", r.HTTP)
	}
	if d := r.Docker; d != nil {
		fmt.Fprintf(w, "\t\tdocker: %s\n", describeDocker(d))
	}
	if t := r.TLS; t != nil {
		printTLSInfo(w, t)
	}
}

// describeDocker returns the known parts of d, such as "version 20.10.24,
// API 1.41, linux/amd64". Without GET /version only the /_ping headers
// describe the daemon, so version and architecture may be missing.
func describeDocker(d *probe.DockerInfo) string {
	var parts []string
	if d.Version != "" {
		parts = append(parts, "version "+d.Version)
	}
	if d.APIVersion != "" {
		parts = append(parts, "API "+d.APIVersion)
	}
	platform := d.OS
	if d.Arch != "" {
		platform += "/" + d.Arch
	}
	if platform != "" {
		parts = append(parts, platform)
	}
	return strings.Join(parts, ", ")
}

func printTLSInfo(w io.Writer, t *probe.TLSInfo) {
	if t.Version != "" {
		fmt.Fprintf(w, "\t\ttls: %s", t.Version)
		if t.CipherSuite != "" {
			fmt.Fprintf(w, ", %s", t.CipherSuite)
		}
		fmt.Fprintf(w, ", client certificate requested: %v\n", t.ClientCertRequested)
	}
	if len(t.AcceptableCAs) > 0 {
		fmt.Fprintf(w, "\t\taccepts client certificates from: %s\n", strings.Join(t.AcceptableCAs, "; "))
	}
	for i, c := range t.Certificates {
		role := "certificate"
		if i > 0 {
			role = "chain"
		}
		names := append(append([]string{}, prefixAll("DNS:", c.DNSNames)...), prefixAll("IP:", c.IPAddresses)...)
		if len(names) == 0 {
			names = []string{"no subjectAltName"}
		}
		expiry := "expires " + c.NotAfter.UTC().Format("2006-01-02")
		if c.Expired {
			expiry = "EXPIRED or not yet valid: " + c.NotBefore.UTC().Format("2006-01-02") + " to " + c.NotAfter.UTC().Format("2006-01-02")
		}
		fmt.Fprintf(w, "\t\t%s: %s [%s], %s, issuer %s, %s\n", role, c.Subject, strings.Join(names, ", "), c.KeyType, c.Issuer, expiry)
	}
	if len(t.WeakVersions) > 0 {
		fmt.Fprintf(w, "\t\tWEAK: accepts %s\n", strings.Join(t.WeakVersions, ", "))
	}
}

func prefixAll(prefix string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = prefix + s
	}
	return out
}
