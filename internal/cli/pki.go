package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dockmoat/dockmoat/internal/pki"
	"github.com/spf13/cobra"
)

// addPKICommands adds `dockmoat pki` and its subcommands to root.
func addPKICommands(root *cobra.Command) {
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Run the certificate authority for Docker TLS",
		Long: `pki runs a small certificate authority for Docker TLS. It creates the CA,
issues server certificates (for dockerd or the gateway) and named client
certificates, lists, renews and revokes them, signs the CRL and exports
client bundles.

Key types: ecdsa-p256 (default for the CA and servers), ecdsa-p384,
rsa-2048 (default for clients, written as PKCS#1 because several Java
Docker clients load only RSA keys), rsa-3072, rsa-4096.

Everything lives in the state directory (see --dir).`,
	}
	cmd.PersistentFlags().String("passphrase-file", "",
		"file with the CA key passphrase, or '-' for stdin (init encrypts the new CA key\n"+
			"with it, and the commands that sign decrypt the key with it)")
	cmd.AddCommand(
		newPKIInitCommand(),
		newPKIIssueCommand(),
		newPKIListCommand(),
		newPKIRenewCommand(),
		newPKIRevokeCommand(),
		newPKICRLCommand(),
		newPKIExportCommand(),
	)
	root.AddCommand(cmd)
}

func newPKIInitCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the certificate authority",
		Long: `init creates the CA: its certificate (ca.pem), its key (ca-key.pem, mode
0600, encrypted when --passphrase-file is given), an empty CRL (crl.pem)
and an empty index of issued certificates. It rejects replacing an
existing CA unless --force is given.`,
		Args: cobra.NoArgs,
		RunE: runPKIInit,
	}
	cmd.Flags().String("name", "dockmoat CA", "CA name; a random suffix makes the subject unique")
	cmd.Flags().String("key-type", string(pki.DefaultCAKeyType), "CA key type: "+keyTypeNames())
	cmd.Flags().Int("days", pki.DefaultCADays, "validity in days")
	cmd.Flags().Bool("force", false, "replace an existing CA; certificates it issued stop being accepted")
	return cmd
}

func runPKIInit(cmd *cobra.Command, _ []string) error {
	name, _ := cmd.Flags().GetString("name")
	force, _ := cmd.Flags().GetBool("force")
	keyType, err := keyTypeFlag(cmd)
	if err != nil {
		return err
	}
	days, err := daysFlag(cmd)
	if err != nil {
		return err
	}
	passphrase, err := readPassphrase(cmd)
	if err != nil {
		return err
	}
	dir, err := stateDir(cmd)
	if err != nil {
		return err
	}
	if err := checkStateDirIsFolder(dir); err != nil {
		return err
	}

	a, err := pki.Init(dir, pki.InitOptions{Name: name, KeyType: keyType, Days: days, Passphrase: passphrase, Force: force})
	if errors.Is(err, pki.ErrExists) {
		return failure(err, "keep using it, or pass --force to replace it (certificates it issued stop being accepted)")
	}
	if errors.Is(err, pki.ErrInvalidInput) {
		return usageError(err, "run 'dockmoat pki init --help' for usage")
	}
	if err != nil {
		return failure(err, "")
	}

	ca := a.Certificate()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "created CA %q in %s\n", ca.Subject.CommonName, dir)
	fmt.Fprintf(out, "  key type     %s\n", keyType)
	fmt.Fprintf(out, "  expires      %s\n", formatTime(ca.NotAfter))
	fmt.Fprintf(out, "  certificate  %s\n", pki.CACertPath(dir))
	encrypted := "unencrypted"
	if a.KeyEncrypted() {
		encrypted = "encrypted"
	}
	fmt.Fprintf(out, "  key          %s (%s, mode 0600)\n", pki.CAKeyPath(dir), encrypted)
	fmt.Fprintf(out, "  CRL          %s\n", pki.CRLPath(dir))
	return nil
}

func newPKIListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List issued certificates",
		Long: fmt.Sprintf(`list prints every issued certificate: name, kind, groups, serial,
subjectAltNames, expiry and status (valid, expired, revoked or superseded).
Certificates that expire within %d days are marked "expires soon".`, int(pki.ExpiryWarning.Hours()/24)),
		Args: cobra.NoArgs,
		RunE: runPKIList,
	}
	cmd.Flags().Bool("json", false, "print a JSON array instead of a table")
	return cmd
}

// listEntry is one certificate as `pki list --json` prints it.
type listEntry struct {
	pki.Record
	ExpiresSoon bool `json:"expiresSoon"`
}

func runPKIList(cmd *cobra.Command, _ []string) error {
	a, err := openCA(cmd)
	if err != nil {
		return err
	}
	records, err := a.List()
	if err != nil {
		return failure(err, "")
	}
	now := time.Now()
	entries := make([]listEntry, len(records))
	for i, r := range records {
		soon := r.Status == pki.StatusValid && r.ExpiresWithin(pki.ExpiryWarning, now)
		entries[i] = listEntry{Record: r, ExpiresSoon: soon}
	}
	if ok, _ := cmd.Flags().GetBool("json"); ok {
		return writeJSON(cmd.OutOrStdout(), entries)
	}
	return writeListTable(cmd.OutOrStdout(), entries, now)
}

func writeListTable(w io.Writer, entries []listEntry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tGROUPS\tSERIAL\tSANS\tEXPIRES\tSTATUS")
	for _, e := range entries {
		status := e.Status
		if e.ExpiresSoon {
			days := int(math.Ceil(e.NotAfter.Sub(now).Hours() / 24))
			status = fmt.Sprintf("valid, expires soon (in %d days)", days)
		}
		if e.Status == pki.StatusRevoked {
			status = fmt.Sprintf("revoked %s (%s)", e.RevokedAt.UTC().Format(time.DateOnly), e.Reason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, dash(strings.Join(e.Groups, ",")),
			e.Serial, dash(formatSANs(e.Record)), e.NotAfter.UTC().Format(time.DateOnly), status)
	}
	return tw.Flush()
}

// openCA opens the CA in the state directory without loading its key. A
// missing or corrupt CA is a failure whose hint names the fix.
func openCA(cmd *cobra.Command) (*pki.Authority, error) {
	dir, err := stateDir(cmd)
	if err != nil {
		return nil, err
	}
	if err := checkStateDirIsFolder(dir); err != nil {
		return nil, err
	}
	a, err := pki.Open(dir)
	if errors.Is(err, pki.ErrNoCA) {
		return nil, failure(err, "create one with 'dockmoat pki init', or pass --dir DIR or set DOCKMOAT_DIR to the folder that contains ca.pem")
	}
	if errors.Is(err, pki.ErrInvalidIndex) {
		return nil, failure(err, fmt.Sprintf("restore %s from a backup; the CA certificate and key are intact, so keep them", pki.IndexPath(dir)))
	}
	if err != nil {
		return nil, failure(err, "restore the state directory from a backup, or create a new CA with 'dockmoat pki init --force'")
	}
	return a, nil
}

// checkStateDirIsFolder rejects a state directory path that exists and is
// not a folder. A missing one is fine: init creates it.
func checkStateDirIsFolder(dir string) error {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return usageError(fmt.Errorf("state directory %s is a file, not a folder", dir),
			"pass --dir DIR or set DOCKMOAT_DIR to a folder")
	}
	return nil
}

// unlockCA loads the CA key of a, decrypting it with the passphrase from
// --passphrase-file when the key is encrypted.
func unlockCA(cmd *cobra.Command, a *pki.Authority) error {
	if !a.KeyEncrypted() {
		return nil
	}
	passphrase, err := readPassphrase(cmd)
	if err != nil {
		return err
	}
	return caError(a.Unlock(passphrase))
}

// caError maps a pki error to an exit code and a hint. It returns nil for a
// nil error.
func caError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pki.ErrPassphraseRequired):
		return usageError(err, "pass --passphrase-file FILE with the passphrase given to 'dockmoat pki init'")
	case errors.Is(err, pki.ErrWrongPassphrase):
		return usageError(err, "check the file passed to --passphrase-file")
	case errors.Is(err, pki.ErrInvalidInput):
		return usageError(err, "")
	case errors.Is(err, pki.ErrCAExpired):
		return failure(err, "create a new CA with 'dockmoat pki init --force' and reissue every certificate")
	case errors.Is(err, pki.ErrNotFound):
		return failure(err, "")
	}
	return failure(err, "")
}

// readPassphrase returns the passphrase from --passphrase-file without its
// final line break, or nil when the flag is not set.
func readPassphrase(cmd *cobra.Command) ([]byte, error) {
	path, _ := cmd.Flags().GetString("passphrase-file")
	if path == "" {
		return nil, nil
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usageError(fmt.Errorf("failed to read --passphrase-file %q: %w", path, err), "pass a readable file that contains the passphrase")
	}
	data = []byte(strings.TrimRight(string(data), "\r\n"))
	if len(data) == 0 {
		return nil, usageError(fmt.Errorf("--passphrase-file %q is empty", path), "write the passphrase into the file")
	}
	return data, nil
}

// keyTypeFlag returns the parsed --key-type flag.
func keyTypeFlag(cmd *cobra.Command) (pki.KeyType, error) {
	s, _ := cmd.Flags().GetString("key-type")
	kt, err := pki.ParseKeyType(s)
	if err != nil {
		return "", usageError(fmt.Errorf("invalid --key-type: %w", err), "")
	}
	return kt, nil
}

// daysFlag returns --days, which must be at least 1.
func daysFlag(cmd *cobra.Command) (int, error) {
	days, _ := cmd.Flags().GetInt("days")
	if days < 1 {
		return 0, usageError(fmt.Errorf("invalid --days %d: a certificate must be valid for at least 1 day", days), "pass --days N with N >= 1")
	}
	return days, nil
}

func keyTypeNames() string {
	names := make([]string, len(pki.KeyTypes))
	for i, k := range pki.KeyTypes {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

func formatSANs(r pki.Record) string {
	var sans []string
	for _, d := range r.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range r.IPs {
		sans = append(sans, "IP:"+ip)
	}
	return strings.Join(sans, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// outsideStateDir returns out with symlinks resolved, and rejects it when
// it is the state directory or a path inside it, where a written export, CRL
// or bundle copy could replace ca-key.pem, ca.pem, the index or another
// certificate's files. Callers write to the returned path, so the check and
// the write see the same folder. An empty out stays empty.
func outsideStateDir(stateDir, out string) (string, error) {
	if out == "" {
		return "", nil
	}
	resolved, err := resolvePath(out)
	if err != nil {
		return "", usageError(fmt.Errorf("invalid --out %q: %w", out, err), "")
	}
	state, err := resolvePath(stateDir)
	if err != nil {
		return "", failure(fmt.Errorf("failed to resolve the state directory %s: %w", stateDir, err), "")
	}
	rel, err := filepath.Rel(state, resolved)
	inside := err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	if inside {
		return "", usageError(
			fmt.Errorf("--out %q is inside the state directory %s, where it could replace the CA or issued certificates", out, stateDir),
			"pass a folder or file outside the state directory")
	}
	return resolved, nil
}

// resolvePath returns path as an absolute path without symlinks or "..".
// Existing components are resolved as the kernel resolves them, one by one,
// so "link/.." means the parent of the link's target. Components from the
// first missing one on are appended as they are.
func resolvePath(path string) (string, error) {
	cur := string(filepath.Separator)
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		if cur, err = filepath.EvalSymlinks(wd); err != nil {
			return "", err
		}
	}
	parts := strings.Split(path, string(filepath.Separator))
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		if _, err := os.Lstat(next); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			return filepath.Join(append([]string{cur}, parts[i:]...)...), nil
		}
		resolved, err := filepath.EvalSymlinks(next)
		if err != nil {
			return "", err
		}
		cur = resolved
	}
	return cur, nil
}
