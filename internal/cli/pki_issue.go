package cli

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockmoat/dockmoat/internal/pki"
	"github.com/spf13/cobra"
)

func newPKIIssueCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue a server or client certificate",
	}
	cmd.AddCommand(newPKIIssueServerCommand(), newPKIIssueClientCommand())
	return cmd
}

func newPKIIssueServerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Issue a server certificate for dockerd or the gateway",
		Long: `server issues a server certificate (extended key usage serverAuth) into
DIR/servers/NAME: ca.pem, server-cert.pem and server-key.pem.

Every name clients dial must be a subjectAltName. With no --dns and no --ip
the certificate names localhost, 127.0.0.1, ::1, this host's name and fully
qualified name and its non-link-local addresses, and prints them. An
address given to --dns is written as an IP SAN.`,
		Args: cobra.NoArgs,
		RunE: runPKIIssueServer,
	}
	cmd.Flags().String("name", "server", `certificate name; dockmoat up uses "gateway", daemon-config "dockerd"`)
	cmd.Flags().StringArray("dns", nil, "DNS subjectAltName (repeatable)")
	cmd.Flags().StringArray("ip", nil, "IP subjectAltName (repeatable)")
	cmd.Flags().Int("days", pki.DefaultServerDays, "validity in days, cut to the CA's expiry")
	cmd.Flags().String("key-type", string(pki.DefaultServerKeyType), "key type: "+keyTypeNames())
	cmd.Flags().String("out", "", "also copy ca.pem, server-cert.pem and server-key.pem into this folder")
	return cmd
}

func runPKIIssueServer(cmd *cobra.Command, _ []string) error {
	name, _ := cmd.Flags().GetString("name")
	dnsNames, _ := cmd.Flags().GetStringArray("dns")
	ipFlags, _ := cmd.Flags().GetStringArray("ip")
	var ips []net.IP
	for _, s := range ipFlags {
		ip, err := pki.ParseIP(s)
		if err != nil {
			return usageError(fmt.Errorf("invalid --ip: %w", err), "pass an IPv4 or IPv6 address such as 192.0.2.10, or use --dns for a host name")
		}
		ips = append(ips, ip)
	}

	req := pki.ServerRequest{Name: name, DNSNames: dnsNames, IPs: ips}
	var err error
	if req.KeyType, err = keyTypeFlag(cmd); err != nil {
		return err
	}
	if req.Days, err = daysFlag(cmd); err != nil {
		return err
	}
	if err := pki.ValidateName(name); err != nil {
		return usageError(fmt.Errorf("invalid --name: %w", err), "")
	}
	out, err := outDirFlag(cmd)
	if err != nil {
		return err
	}

	if len(dnsNames) == 0 && len(ips) == 0 {
		if req.DNSNames, req.IPs, err = pki.DefaultServerNames(); err != nil {
			return failure(err, "pass the names clients dial with --dns and --ip")
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "no --dns or --ip given, so the certificate names this host: %s\n",
			strings.Join(sanList(req.DNSNames, req.IPs), ", "))
	}

	a, out, err := openCAForIssue(cmd, out, pki.KindServer, name)
	if err != nil {
		return err
	}
	rec, err := a.IssueServer(req)
	if err != nil {
		return caError(err)
	}
	return reportIssued(cmd, a, rec, out, "issued")
}

func newPKIIssueClientCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client NAME",
		Short: "Issue a client certificate",
		Long: `client issues a client certificate (extended key usage clientAuth) with
subject CN=NAME and one OU per --group into DIR/clients/NAME: ca.pem,
cert.pem and key.pem. The gateway uses the CN as the client's identity and
the OUs as its groups.

The default key is RSA 2048 in PKCS#1 PEM ("RSA PRIVATE KEY"), which every
Docker client loads, including Java clients such as the Spotify
docker-client behind older docker-maven-plugin versions and older
docker-java, which reject EC keys. The docker CLI, Go and Python clients,
curl and Testcontainers also accept ecdsa-p256 and ecdsa-p384.

A NAME that already has a valid certificate is rejected: renew or revoke it.`,
		Args: exactArgs(1, "NAME"),
		RunE: runPKIIssueClient,
	}
	cmd.Flags().StringArray("group", nil, "group, written as a subject OU (repeatable)")
	cmd.Flags().Int("days", pki.DefaultClientDays, "validity in days, cut to the CA's expiry")
	cmd.Flags().String("key-type", string(pki.DefaultClientKeyType), "key type: "+keyTypeNames())
	cmd.Flags().String("out", "", "also copy ca.pem, cert.pem and key.pem into this folder")
	return cmd
}

func runPKIIssueClient(cmd *cobra.Command, args []string) error {
	groups, _ := cmd.Flags().GetStringArray("group")
	req := pki.ClientRequest{Name: args[0], Groups: groups}
	var err error
	if req.KeyType, err = keyTypeFlag(cmd); err != nil {
		return err
	}
	if req.Days, err = daysFlag(cmd); err != nil {
		return err
	}
	if err := pki.ValidateName(req.Name); err != nil {
		return usageError(err, "")
	}
	out, err := outDirFlag(cmd)
	if err != nil {
		return err
	}
	a, out, err := openCAForIssue(cmd, out, pki.KindClient, req.Name)
	if err != nil {
		return err
	}
	rec, err := a.IssueClient(req)
	if err != nil {
		return caError(err)
	}
	return reportIssued(cmd, a, rec, out, "issued")
}

func newPKIRenewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "renew NAME",
		Short: "Renew a certificate with a new key",
		Long: `renew issues a new certificate and key for NAME with the same names,
groups, key type and validity period, and marks the old certificate
superseded. The old certificate stays valid until it expires so clients
can switch over; revoke its serial to end it at once.`,
		Args: exactArgs(1, "NAME"),
		RunE: runPKIRenew,
	}
	cmd.Flags().String("out", "", "also copy the new bundle into this folder")
	return cmd
}

func runPKIRenew(cmd *cobra.Command, args []string) error {
	out, err := outDirFlag(cmd)
	if err != nil {
		return err
	}
	a, err := openCA(cmd)
	if err != nil {
		return err
	}
	if out, err = outsideStateDir(a.Dir(), out); err != nil {
		return err
	}
	if rec, ok, err := a.Find(args[0]); err == nil && ok {
		if err := checkOutFolder(a, out, rec.Kind, rec.Name); err != nil {
			return err
		}
	}
	if err := unlockCA(cmd, a); err != nil {
		return err
	}
	rec, err := a.Renew(args[0])
	if err != nil {
		return caError(err)
	}
	return reportIssued(cmd, a, rec, out, "renewed")
}

func newPKIRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke NAME|SERIAL",
		Short: "Revoke a certificate and update the CRL",
		Long: `revoke marks certificates revoked and re-signs the CRL (DIR/crl.pem).

A NAME revokes its current certificate and every certificate of that name
that a renewal superseded and that has not expired yet, so no older key of
the client keeps working. A SERIAL (hexadecimal, as pki list prints it,
colons allowed) revokes that one certificate, for example a superseded one
once its client has switched to the renewed certificate.`,
		Args: exactArgs(1, "NAME|SERIAL"),
		RunE: runPKIRevoke,
	}
	cmd.Flags().String("reason", "unspecified", "RFC 5280 reason: keyCompromise, affiliationChanged, superseded,\ncessationOfOperation, privilegeWithdrawn or unspecified")
	return cmd
}

func runPKIRevoke(cmd *cobra.Command, args []string) error {
	reason, _ := cmd.Flags().GetString("reason")
	if _, _, err := pki.ParseReason(reason); err != nil {
		return usageError(fmt.Errorf("invalid --reason: %w", err), "")
	}
	a, err := openCA(cmd)
	if err != nil {
		return err
	}
	if err := unlockCA(cmd, a); err != nil {
		return err
	}
	revoked, err := a.Revoke(args[0], reason)
	if err != nil {
		return caError(err)
	}
	w := cmd.OutOrStdout()
	for _, rec := range revoked {
		state := ""
		if rec.Serial != revoked[0].Serial {
			state = " (superseded by a renewal, valid until " + rec.NotAfter.UTC().Format(time.DateOnly) + ")"
		}
		fmt.Fprintf(w, "revoked %s certificate %q, serial %s%s, reason %s\n", rec.Kind, rec.Name, rec.Serial, state, rec.Reason)
	}
	fmt.Fprintf(w, "CRL updated: %s\n", pki.CRLPath(a.Dir()))
	warnDockerdIgnoresCRL(cmd.ErrOrStderr(), a, revoked[0])
	return nil
}

// warnDockerdIgnoresCRL warns that dockerd's own TLS listener still
// accepts the revoked client certificate rec, because dockerd (tested with
// 20.10) has no option to read a CRL. It warns only when the state
// directory has a valid server certificate named like the one
// daemon-config issues.
func warnDockerdIgnoresCRL(w io.Writer, a *pki.Authority, rec pki.Record) {
	if rec.Kind != pki.KindClient {
		return
	}
	server, ok, err := a.Find(dockerdCertName)
	if err != nil || !ok || server.Kind != pki.KindServer || server.Status != pki.StatusValid {
		return
	}
	fmt.Fprintf(w, "warning: dockerd does not check the CRL, so a dockerd serving TLS with the %q certificate "+
		"(as 'dockmoat daemon-config' sets it up) still accepts %q until it expires on %s. "+
		"The dockmoat gateway rejects it now. To lock it out of dockerd at once, replace the CA with "+
		"'dockmoat pki init --force' and reissue every certificate.\n",
		server.Name, rec.Name, rec.NotAfter.UTC().Format(time.DateOnly))
}

func newPKICRLCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crl",
		Short: "Print or write the certificate revocation list",
		Long: `crl prints the PEM CRL that revoke keeps in DIR/crl.pem, or writes it to
--out. With --update it first re-signs the CRL with a new number and a
next update one year ahead, for verifiers that reject a stale CRL.`,
		Args: cobra.NoArgs,
		RunE: runPKICRL,
	}
	cmd.Flags().String("out", "", "write the CRL to this file instead of stdout")
	cmd.Flags().Bool("update", false, "re-sign the CRL first (needs the CA key)")
	return cmd
}

func runPKICRL(cmd *cobra.Command, _ []string) error {
	a, err := openCA(cmd)
	if err != nil {
		return err
	}
	out, _ := cmd.Flags().GetString("out")
	if out, err = outsideStateDir(a.Dir(), out); err != nil {
		return err
	}
	if update, _ := cmd.Flags().GetBool("update"); update {
		if err := unlockCA(cmd, a); err != nil {
			return err
		}
		if err := a.UpdateCRL(); err != nil {
			return caError(err)
		}
	}
	crl, data, err := a.CRL()
	if err != nil {
		return failure(err, "re-sign it with 'dockmoat pki crl --update'")
	}
	if out == "" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if err := pki.WriteFileAtomic(out, data, 0o644); err != nil {
		return failure(err, "")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote CRL number %s with %d revoked certificates to %s, next update %s\n",
		crl.Number, len(crl.RevokedCertificateEntries), out, formatTime(crl.NextUpdate))
	return nil
}

// openCAForIssue opens and unlocks the CA for issuing a certificate of kind
// and name. It first checks that the --out folder out lies outside the state
// directory and would not lose another certificate's key, so that a bad
// --out fails before the passphrase prompt. It returns out resolved to an
// absolute path without symlinks.
func openCAForIssue(cmd *cobra.Command, out string, kind pki.Kind, name string) (*pki.Authority, string, error) {
	a, err := openCA(cmd)
	if err != nil {
		return nil, "", err
	}
	if out, err = outsideStateDir(a.Dir(), out); err != nil {
		return nil, "", err
	}
	if err := checkOutFolder(a, out, kind, name); err != nil {
		return nil, "", err
	}
	if err := unlockCA(cmd, a); err != nil {
		return nil, "", err
	}
	return a, out, nil
}

// outDirFlag returns --out, after checking that it is a folder or missing.
func outDirFlag(cmd *cobra.Command) (string, error) {
	out, _ := cmd.Flags().GetString("out")
	if out == "" {
		return "", nil
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return "", usageError(fmt.Errorf("--out %q is a file, not a folder", out), "pass a folder, which is created when missing")
	}
	return filepath.Abs(out)
}

// reportIssued prints what an issuance wrote and copies the bundle to out.
// action is the past-tense verb of the first line, "issued" or "renewed".
func reportIssued(cmd *cobra.Command, a *pki.Authority, rec pki.Record, out, action string) error {
	paths := pki.BundlePaths(a.Dir(), rec.Kind, rec.Name)
	files := []string{paths.CA, paths.Cert, paths.Key}
	if out != "" {
		copied, err := copyBundle(paths, out)
		if err != nil {
			return failure(fmt.Errorf("%s serial %s but failed to copy it to --out: %w", action, rec.Serial, err),
				fmt.Sprintf("the files are in %s", filepath.Dir(paths.Cert)))
		}
		files = append(files, copied...)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s %s certificate %q\n", action, rec.Kind, rec.Name)
	fmt.Fprintf(w, "  serial    %s\n", rec.Serial)
	if rec.Kind == pki.KindServer {
		fmt.Fprintf(w, "  names     %s\n", formatSANs(rec))
	} else {
		fmt.Fprintf(w, "  groups    %s\n", dash(strings.Join(rec.Groups, ", ")))
	}
	fmt.Fprintf(w, "  key type  %s\n", rec.KeyType)
	fmt.Fprintf(w, "  expires   %s\n", formatTime(rec.NotAfter))
	fmt.Fprintf(w, "  files     %s\n", strings.Join(files, "\n            "))
	if rec.NotAfter.Equal(a.Certificate().NotAfter) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the validity was cut to the CA's expiry on %s\n", formatTime(rec.NotAfter))
	}
	return nil
}

// checkOutFolder rejects an --out folder that already contains a key file
// of kind's bundle, unless the certificate next to it is an earlier one of
// name from this CA. Writing the bundle would replace the key, which may
// belong to another client or another Docker host, as in ~/.docker.
func checkOutFolder(a *pki.Authority, out string, kind pki.Kind, name string) error {
	if out == "" {
		return nil
	}
	names := pki.BundlePaths("", kind, name)
	keyPath := filepath.Join(out, filepath.Base(names.Key))
	if _, err := os.Lstat(keyPath); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	certPath := filepath.Join(out, filepath.Base(names.Cert))
	if isEarlierCertificate(a, certPath, name) {
		return nil
	}
	return usageError(
		fmt.Errorf("--out %q already contains %s, which is not from an earlier certificate of %q, and writing the bundle would replace it",
			out, filepath.Base(keyPath), name),
		"pass an empty or new folder, or move the existing files away first")
}

// isEarlierCertificate reports whether the file at path is a certificate
// that a issued to name.
func isEarlierCertificate(a *pki.Authority, path, name string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.CheckSignatureFrom(a.Certificate()) != nil {
		return false
	}
	records, err := a.List()
	if err != nil {
		return false
	}
	serial := fmt.Sprintf("%x", cert.SerialNumber)
	for _, r := range records {
		if r.Serial == serial && r.Name == name {
			return true
		}
	}
	return false
}

// copyBundle copies the three files of paths into folder out, keeping their
// names, and returns the new paths.
func copyBundle(paths pki.Bundle, out string) ([]string, error) {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	var copied []string
	for _, src := range []string{paths.CA, paths.Key, paths.Cert} {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		perm := os.FileMode(0o644)
		if src == paths.Key {
			perm = 0o600
		}
		dst := filepath.Join(out, filepath.Base(src))
		if err := pki.WriteFileAtomic(dst, data, perm); err != nil {
			return nil, err
		}
		copied = append(copied, dst)
	}
	return copied, nil
}

func sanList(dnsNames []string, ips []net.IP) []string {
	var out []string
	out = append(out, dnsNames...)
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

// exactArgs is cobra.ExactArgs with a usage error that names the argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(fmt.Errorf("%s takes %d argument (%s), got %d", cmd.CommandPath(), n, names, len(args)),
				fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()))
		}
		return nil
	}
}
