package cli

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/dockmoat/dockmoat/internal/pki"
)

// adminClientName and adminGroup name the client that up creates when the
// state directory has no client yet.
const (
	adminClientName = "admin"
	adminGroup      = "admin"
)

func newUpCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the CA and certificates if missing, then run the gateway",
		Long: `Set up a Docker host in one command, then run the gateway.

up creates, each only if missing: the CA; the gateway's server certificate
"gateway" for the host's names and addresses, localhost, 127.0.0.1 and any
--dns and --ip; and, when no client certificate exists yet, a client "admin"
in group "admin". It prints where the admin bundle is and the docker
commands that connect with it, then serves like 'dockmoat serve'. Running it
again reuses everything.

A CA key encrypted by 'dockmoat pki init --passphrase-file' is decrypted
with --passphrase-file, which up reads only when it has to sign.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := readServeOptions(cmd)
			if err != nil {
				return err
			}
			dnsNames, _ := cmd.Flags().GetStringArray("dns")
			ipFlags, _ := cmd.Flags().GetStringArray("ip")
			ips, err := parseIPs(ipFlags)
			if err != nil {
				return usageError(err, "pass --ip with an IPv4 or IPv6 address, such as --ip 192.0.2.10")
			}
			if err := setUp(cmd, opts, dnsNames, ips); err != nil {
				return err
			}
			return runGateway(cmd, opts)
		},
	}
	addServeFlags(cmd)
	cmd.Flags().StringArray("dns", nil, "extra DNS name for the gateway's server certificate (repeatable)")
	cmd.Flags().StringArray("ip", nil, "extra IP address for the gateway's server certificate (repeatable)")
	cmd.Flags().String("passphrase-file", "",
		"file with the passphrase of an encrypted CA key, or '-' for stdin; read only when up issues or reissues a certificate")
	return cmd
}

func parseIPs(values []string) ([]net.IP, error) {
	ips := make([]net.IP, 0, len(values))
	for _, v := range values {
		ip, err := pki.ParseIP(v)
		if err != nil {
			return nil, fmt.Errorf("invalid --ip: %w", err)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// setUp creates what is missing of the CA, the gateway certificate and the
// admin client, reports each step on stderr, and prints how to connect on
// stdout.
func setUp(cmd *cobra.Command, opts *serveOptions, dnsNames []string, ips []net.IP) error {
	stderr := cmd.ErrOrStderr()
	ca, err := openOrInitCA(opts.dir, stderr)
	if err != nil {
		return err
	}
	// An encrypted CA key is unlocked at most once, and only before the
	// first signature, so runs that reuse everything need no passphrase.
	unlock := sync.OnceValue(func() error { return unlockCA(cmd, ca) })
	if err := ensureGatewayCert(ca, unlock, dnsNames, ips, stderr); err != nil {
		return err
	}
	admin, err := ensureAdminClient(ca, unlock, stderr)
	if err != nil {
		return err
	}
	printConnectHelp(cmd.OutOrStdout(), opts, admin, dnsNames)
	return nil
}

func openOrInitCA(dir string, stderr io.Writer) (*pki.Authority, error) {
	if pki.Exists(dir) {
		ca, err := pki.Open(dir)
		if err != nil {
			return nil, failure(fmt.Errorf("open CA in %s: %w", dir, err), "")
		}
		fmt.Fprintf(stderr, "Using the CA in %s\n", dir)
		return ca, nil
	}
	ca, err := pki.Init(dir, pki.InitOptions{})
	if err != nil {
		return nil, failure(fmt.Errorf("create CA in %s: %w", dir, err), "")
	}
	fmt.Fprintf(stderr, "Created a CA in %s, valid until %s\n", dir, ca.Certificate().NotAfter.Format("2006-01-02"))
	return ca, nil
}

// ensureGatewayCert issues the gateway's server certificate unless a valid
// one exists. The names are the host's automatic ones plus dnsNames and ips;
// pki.DefaultServerNames always includes localhost and 127.0.0.1.
func ensureGatewayCert(ca *pki.Authority, unlock func() error, dnsNames []string, ips []net.IP, stderr io.Writer) error {
	rec, found, err := ca.Find(gatewayServerName)
	if err != nil {
		return failure(fmt.Errorf("read the certificate index: %w", err), "")
	}
	if found && rec.Kind == pki.KindServer && rec.Status == pki.StatusValid {
		missing := missingNames(rec, dnsNames, ips)
		if len(missing) == 0 {
			fmt.Fprintf(stderr, "Using server certificate %q (serial %s), valid until %s\n",
				gatewayServerName, rec.Serial, rec.NotAfter.Format("2006-01-02"))
			return nil
		}
		if err := unlock(); err != nil {
			return err
		}
		return reissueGatewayCert(ca, rec, dnsNames, ips, missing, stderr)
	}
	if found && rec.Kind != pki.KindServer {
		return usageError(fmt.Errorf("a %s certificate is named %q, the name of the gateway's server certificate", rec.Kind, gatewayServerName),
			"revoke it and issue the client under another name")
	}

	autoDNS, autoIPs, err := pki.DefaultServerNames()
	if err != nil {
		return failure(fmt.Errorf("find the host's names: %w", err), "pass the names clients dial with --dns and --ip")
	}
	if err := unlock(); err != nil {
		return err
	}
	rec, err = ca.IssueServer(pki.ServerRequest{
		Name:     gatewayServerName,
		DNSNames: append(autoDNS, dnsNames...),
		IPs:      append(autoIPs, ips...),
	})
	if err != nil {
		return failure(fmt.Errorf("issue the gateway server certificate: %w", err), "")
	}
	fmt.Fprintf(stderr, "Issued server certificate %q for %s, valid until %s\n",
		gatewayServerName, strings.Join(append(rec.DNSNames, rec.IPs...), ", "), rec.NotAfter.Format("2006-01-02"))
	return nil
}

// reissueGatewayCert replaces the gateway's server certificate rec with one
// that also covers the new names, because clients dialling a name that is
// not in the certificate reject it. The old certificate is revoked as
// superseded, and a running gateway picks up the new files on its own.
func reissueGatewayCert(ca *pki.Authority, rec pki.Record, dnsNames []string, ips []net.IP, missing []string, stderr io.Writer) error {
	fmt.Fprintf(stderr, "Server certificate %q (serial %s) does not cover %s; reissuing it\n",
		gatewayServerName, rec.Serial, strings.Join(missing, ", "))
	allDNS := append(slices.Clone(rec.DNSNames), dnsNames...)
	allIPs := slices.Clone(ips)
	for _, s := range rec.IPs {
		if ip := net.ParseIP(s); ip != nil {
			allIPs = append(allIPs, ip)
		}
	}
	if _, err := ca.Revoke(rec.Serial, "superseded"); err != nil {
		return failure(fmt.Errorf("revoke the old gateway server certificate: %w", err), "")
	}
	next, err := ca.IssueServer(pki.ServerRequest{Name: gatewayServerName, DNSNames: allDNS, IPs: allIPs})
	if err != nil {
		return failure(fmt.Errorf("reissue the gateway server certificate: %w", err),
			"issue it with 'dockmoat pki issue server --name gateway --dns NAME --ip ADDR'")
	}
	fmt.Fprintf(stderr, "Issued server certificate %q for %s, valid until %s\n",
		gatewayServerName, strings.Join(append(next.DNSNames, next.IPs...), ", "), next.NotAfter.Format("2006-01-02"))
	return nil
}

// ensureAdminClient issues client "admin" in group "admin" when no client
// certificate exists. It returns the admin's record, or nil when other
// clients exist and admin was not created.
func ensureAdminClient(ca *pki.Authority, unlock func() error, stderr io.Writer) (*pki.Record, error) {
	records, err := ca.List()
	if err != nil {
		return nil, failure(fmt.Errorf("read the certificate index: %w", err), "")
	}
	var admin *pki.Record
	clients := 0
	for i := range records {
		if records[i].Kind != pki.KindClient {
			continue
		}
		clients++
		if records[i].Name == adminClientName && records[i].Status != pki.StatusSuperseded {
			admin = &records[i]
		}
	}
	if clients > 0 {
		return admin, nil
	}
	if err := unlock(); err != nil {
		return nil, err
	}
	rec, err := ca.IssueClient(pki.ClientRequest{Name: adminClientName, Groups: []string{adminGroup}})
	if err != nil {
		return nil, failure(fmt.Errorf("issue the admin client certificate: %w", err), "")
	}
	fmt.Fprintf(stderr, "Issued client certificate %q in group %q, valid until %s\n",
		adminClientName, adminGroup, rec.NotAfter.Format("2006-01-02"))
	return &rec, nil
}

// printConnectHelp prints the admin bundle's folder and the docker command,
// context and environment lines that use it.
func printConnectHelp(w io.Writer, opts *serveOptions, admin *pki.Record, dnsNames []string) {
	host := connectHost(opts.listen, dnsNames)
	if admin == nil || admin.Status != pki.StatusValid {
		fmt.Fprintf(w, "Client bundles are in %s/clients/NAME; connect to tcp://%s with one of them.\n",
			opts.dir, host)
		return
	}
	b := pki.BundlePaths(opts.dir, pki.KindClient, adminClientName)
	certDir := pki.ClientDir(opts.dir, adminClientName)
	fmt.Fprintf(w, "Admin client bundle: %s (ca.pem, cert.pem, key.pem)\n\n", certDir)
	fmt.Fprintf(w, "Connect with:\n  docker --tlsverify --tlscacert=%s --tlscert=%s --tlskey=%s -H tcp://%s version\n\n",
		b.CA, b.Cert, b.Key, host)
	fmt.Fprintf(w, "Or create a context:\n  docker context create dockmoat --docker \"host=tcp://%s,ca=%s,cert=%s,key=%s\"\n\n",
		host, b.CA, b.Cert, b.Key)
	fmt.Fprintf(w, "Or set the environment:\n  export DOCKER_HOST=tcp://%s\n  export DOCKER_TLS_VERIFY=1\n  export DOCKER_CERT_PATH=%s\n\n",
		host, certDir)
}

// connectHost returns HOST:PORT for clients: the listen address, with a
// wildcard host replaced by the first --dns name or localhost.
func connectHost(listen string, dnsNames []string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
		if len(dnsNames) > 0 {
			host = dnsNames[0]
		}
	}
	return net.JoinHostPort(host, port)
}
