package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dockmoat/dockmoat/internal/bundle"
	"github.com/dockmoat/dockmoat/internal/pki"
	"github.com/spf13/cobra"
)

func newPKIExportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export NAME --format dir|context|p12|env",
		Short: "Export a client bundle for Docker clients",
		Long: `export writes the client certificate NAME in a form clients read, then
prints how to use it with the docker CLI, docker context, the
docker-maven-plugin and Testcontainers.

  dir      ca.pem, cert.pem and key.pem in a folder (default ./NAME)
  context  an archive for 'docker context import' (default ./NAME.dockercontext)
  p12      a PKCS#12 key store with key, certificate and CA chain for Java
           clients, protected by --password-file (default ./NAME.p12)
  env      DOCKER_HOST, DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH as shell
           exports (default stdout)`,
		Args: exactArgs(1, "NAME"),
		RunE: runPKIExport,
	}
	cmd.Flags().String("format", "", "export format: dir, context, p12 or env (required)")
	cmd.Flags().String("host", "", "Docker endpoint clients dial, tcp://HOST:PORT (default tcp://<this host's name>:2376)")
	cmd.Flags().String("password-file", "", "file with the PKCS#12 password (p12 only)")
	cmd.Flags().String("out", "", "output folder (dir) or file (context, p12, env)")
	cmd.Flags().String("cert-path", "", "DOCKER_CERT_PATH for env and the printed usage\n(default the client's folder in the state directory)")
	return cmd
}

func runPKIExport(cmd *cobra.Command, args []string) error {
	name := args[0]
	formatName, _ := cmd.Flags().GetString("format")
	if formatName == "" {
		return usageError(fmt.Errorf("missing --format"), "pass --format dir, context, p12 or env")
	}
	format, err := bundle.ParseFormat(formatName)
	if err != nil {
		return usageError(err, "")
	}
	host, err := exportHost(cmd)
	if err != nil {
		return err
	}
	password, err := exportPassword(cmd, format)
	if err != nil {
		return err
	}
	a, err := openCA(cmd)
	if err != nil {
		return err
	}
	files, out, err := loadExportBundle(cmd, a, name, format)
	if err != nil {
		return err
	}

	certPath, _ := cmd.Flags().GetString("cert-path")
	if certPath == "" {
		certPath = pki.ClientDir(a.Dir(), name)
	}
	usage := bundle.Usage{Name: name, Host: host, CertPath: certPath, Format: format}
	if format == bundle.FormatP12 {
		passwordFile, _ := cmd.Flags().GetString("password-file")
		if usage.PasswordFile, err = filepath.Abs(passwordFile); err != nil {
			return failure(err, "")
		}
	}
	if usage.File, err = writeExport(cmd, files, format, usage, out, password); err != nil {
		return err
	}
	if format == bundle.FormatDir {
		usage.CertPath = usage.File
	}
	// The env export on stdout is data; the usage goes to stderr so that
	// `eval "$(dockmoat pki export NAME --format env)"` works.
	w := cmd.OutOrStdout()
	if format == bundle.FormatEnv && out == "" {
		w = cmd.ErrOrStderr()
	}
	return bundle.WriteUsage(w, usage)
}

// loadExportBundle loads the files of client name and returns them with
// the path the export writes to, from exportOut. It rejects a client
// without a valid certificate, a dir export into a folder with another
// certificate's key, and a bundle whose certificate is not the one the
// index lists.
func loadExportBundle(cmd *cobra.Command, a *pki.Authority, name string, format bundle.Format) (bundle.Files, string, error) {
	rec, err := checkExportable(a, name)
	if err != nil {
		return bundle.Files{}, "", err
	}
	out, err := exportOut(cmd, a, name, format)
	if err != nil {
		return bundle.Files{}, "", err
	}
	if format == bundle.FormatDir {
		if err := checkOutFolder(a, out, pki.KindClient, name); err != nil {
			return bundle.Files{}, "", err
		}
	}
	files, err := bundle.Load(a.Dir(), name)
	if err != nil {
		return bundle.Files{}, "", failure(err, fmt.Sprintf("reissue it with 'dockmoat pki renew %s'", name))
	}
	if err := checkBundleSerial(files, rec); err != nil {
		return bundle.Files{}, "", err
	}
	return files, out, nil
}

// exportHost returns --host, or tcp://HOSTNAME:2376 for this host.
func exportHost(cmd *cobra.Command) (string, error) {
	host, _ := cmd.Flags().GetString("host")
	if host == "" {
		name, err := os.Hostname()
		if err != nil {
			return "", usageError(fmt.Errorf("failed to read this host's name: %w", err), "pass --host tcp://HOST:2376")
		}
		host = "tcp://" + name + ":2376"
	}
	if _, _, err := bundle.ParseHost(host); err != nil {
		return "", usageError(fmt.Errorf("invalid --host: %w", err), "")
	}
	return host, nil
}

// exportPassword reads --password-file, which p12 needs and the other
// formats reject.
func exportPassword(cmd *cobra.Command, format bundle.Format) (string, error) {
	path, _ := cmd.Flags().GetString("password-file")
	if format != bundle.FormatP12 {
		if path != "" {
			return "", usageError(fmt.Errorf("--password-file applies to --format p12 only"), "drop --password-file")
		}
		return "", nil
	}
	if path == "" {
		return "", usageError(fmt.Errorf("--format p12 needs --password-file: Java key stores are password protected"),
			"write a password to a file (for example 'openssl rand -hex 16 > p12.pass') and pass --password-file p12.pass")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", usageError(fmt.Errorf("failed to read --password-file %q: %w", path, err), "")
	}
	password := strings.TrimRight(string(data), "\r\n")
	if password == "" {
		return "", usageError(fmt.Errorf("--password-file %q is empty", path), "write the password into the file")
	}
	return password, nil
}

// checkExportable returns the current record of name and rejects names
// that have no valid client certificate.
func checkExportable(a *pki.Authority, name string) (pki.Record, error) {
	rec, ok, err := a.Find(name)
	if err != nil {
		return pki.Record{}, failure(err, "")
	}
	if !ok || rec.Kind != pki.KindClient {
		return pki.Record{}, failure(fmt.Errorf("no client certificate named %q", name),
			fmt.Sprintf("issue one with 'dockmoat pki issue client %s', or see 'dockmoat pki list'", name))
	}
	if rec.Status != pki.StatusValid {
		return pki.Record{}, failure(fmt.Errorf("client certificate %q (serial %s) is %s", name, rec.Serial, rec.Status),
			fmt.Sprintf("issue a new one with 'dockmoat pki issue client %s' or 'dockmoat pki renew %s'", name, name))
	}
	return rec, nil
}

// checkBundleSerial rejects a bundle whose certificate is not the one the
// index lists for rec. Issuance writes the bundle before the index, so a
// renewal killed in between leaves a new certificate on disk under an old
// record. Revoking the name would not revoke that certificate, so it must
// not be handed out.
func checkBundleSerial(files bundle.Files, rec pki.Record) error {
	cert, err := files.Certificate()
	if err != nil {
		return failure(err, "")
	}
	if got := fmt.Sprintf("%x", cert.SerialNumber); got != rec.Serial {
		return failure(
			fmt.Errorf("cert.pem of client %q has serial %s, but the index lists serial %s: an issuance or renewal was interrupted", rec.Name, got, rec.Serial),
			fmt.Sprintf("issue a fresh bundle with 'dockmoat pki renew %s'", rec.Name))
	}
	return nil
}

// exportOut returns the path an export writes to: --out, else the default
// of format in the current folder, with symlinks resolved. It returns "" for
// an env export to stdout and rejects paths inside the state directory.
func exportOut(cmd *cobra.Command, a *pki.Authority, name string, format bundle.Format) (string, error) {
	out, _ := cmd.Flags().GetString("out")
	if out == "" {
		switch format {
		case bundle.FormatDir:
			out = name
		case bundle.FormatContext:
			out = name + ".dockercontext"
		case bundle.FormatP12:
			out = name + ".p12"
		case bundle.FormatEnv:
			return "", nil
		}
	}
	return outsideStateDir(a.Dir(), out)
}

// writeExport writes the export to out, which exportOut returned, and
// returns the path it wrote, or "" for an env export to stdout.
func writeExport(cmd *cobra.Command, files bundle.Files, format bundle.Format, usage bundle.Usage, out, password string) (string, error) {
	var data []byte
	var err error
	switch format {
	case bundle.FormatDir:
		if err := bundle.WriteDir(files, out); err != nil {
			return "", failure(err, "")
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s, %s and %s\n",
			filepath.Join(out, "ca.pem"), filepath.Join(out, "cert.pem"), filepath.Join(out, "key.pem"))
		return out, nil
	case bundle.FormatContext:
		data, err = bundle.ContextArchive(files, usage.Name, usage.Host)
	case bundle.FormatP12:
		data, err = bundle.PKCS12(files, password)
	case bundle.FormatEnv:
		var env string
		env, err = bundle.Env(usage.Host, usage.CertPath)
		data = []byte(env)
		if out == "" && err == nil {
			_, err = cmd.OutOrStdout().Write(data)
			return "", err
		}
	}
	if err != nil {
		return "", failure(err, "")
	}
	// Context archives and key stores contain the private key.
	if err := pki.WriteFileAtomic(out, data, 0o600); err != nil {
		return "", failure(err, "")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
	return out, nil
}
