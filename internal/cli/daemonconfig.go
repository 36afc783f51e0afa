package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/dockmoat/dockmoat/internal/daemonconf"
	"github.com/dockmoat/dockmoat/internal/pki"
	"github.com/spf13/cobra"
)

// dockerdCertName is the name of the server certificate daemon-config
// issues for dockerd in the state directory.
const dockerdCertName = "dockerd"

type daemonConfigOptions struct {
	listen     []string
	sans       []string
	socket     string
	tlsDir     string
	daemonJSON string
	unit       string
	socketUnit string
	out        string
	reissue    bool
}

func addDaemonConfigCommand(root *cobra.Command) {
	var o daemonConfigOptions
	cmd := &cobra.Command{
		Use:   "daemon-config",
		Short: "Write daemon.json and a systemd drop-in that make dockerd serve mutual TLS",
		Long: `daemon-config configures dockerd's own TLS listener with mutual TLS.

It issues a server certificate named "dockerd" from the state directory's CA
(or reuses it) and copies it with the CA certificate to --tls-dir as ca.pem,
server-cert.pem and server-key.pem. It merges "tlsverify": true, the three
paths and "hosts" into the existing daemon.json, keeping every other key, and
writes a systemd drop-in that clears ExecStart= and starts dockerd without -H,
because -H on the command line together with "hosts" in daemon.json stops
dockerd at start. It reads the installed docker.service and docker.socket and
explains each clash they would have caused.

dockerd reads no CRL, so a client certificate revoked with 'dockmoat pki
revoke' still connects to this listener until it expires. Only the dockmoat
gateway (dockmoat serve) rejects revoked certificates.

Without --out it prints the files and the commands that install them.`,
		Example: `  dockmoat daemon-config --listen tcp://0.0.0.0:2376 --san docker.example.test --san 10.0.0.5
  dockmoat daemon-config --listen tcp://10.0.0.5:2376 --out ./dockerd-tls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemonConfig(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.listen, "listen", []string{"tcp://0.0.0.0:2376"},
		"TCP listener tcp://ADDR:PORT for dockerd, repeatable; each requires a client certificate")
	f.StringArrayVar(&o.sans, "san", nil,
		"DNS name or IP address clients dial, written into the server certificate, repeatable\n"+
			"(default: the listeners' addresses, else localhost, the host names and interface addresses)")
	f.StringVar(&o.socket, "socket", daemonconf.DefaultSocket, "unix socket dockerd keeps serving locally")
	f.StringVar(&o.tlsDir, "tls-dir", "/etc/docker/tls", "folder dockerd reads ca.pem, server-cert.pem and server-key.pem from")
	f.StringVar(&o.daemonJSON, "daemon-json", daemonconf.DefaultDaemonJSON,
		"existing daemon.json to merge into; a missing file counts as empty")
	f.StringVar(&o.unit, "unit", "", "docker.service unit file to read (default: the installed unit and its drop-ins)")
	f.StringVar(&o.socketUnit, "socket-unit", "", "docker.socket unit file to read (default: the installed unit)")
	f.StringVar(&o.out, "out", "", "folder to write daemon.json and the drop-ins to, instead of printing them")
	f.BoolVar(&o.reissue, "reissue", false,
		"revoke the existing dockerd certificate and issue a new one when it lacks a requested name")
	f.String("passphrase-file", "", "file with the passphrase of an encrypted CA key, '-' for stdin")
	root.AddCommand(cmd)
}

func runDaemonConfig(cmd *cobra.Command, o daemonConfigOptions) error {
	for _, l := range o.listen {
		if _, _, err := daemonconf.ParseListener(l); err != nil {
			return usageError(err, "pass --listen tcp://ADDR:PORT, for example --listen tcp://0.0.0.0:2376")
		}
	}
	dns, ips, err := serverNames(o)
	if err != nil {
		return usageError(err, "pass --san NAME or --san IP")
	}
	tlsDir, err := filepath.Abs(o.tlsDir)
	if err != nil {
		return usageError(err, "pass an absolute --tls-dir")
	}

	// daemon.json and the units are checked before anything is issued or
	// copied, so rejected input leaves --tls-dir, which dockerd may be
	// reading, and the state directory as they were.
	paths := tlsPaths(tlsDir)
	merged, notes, err := mergeDaemonJSON(o, paths)
	if err != nil {
		return err
	}
	plan, err := planUnits(o, merged)
	if err != nil {
		return err
	}

	rec, reused, err := ensureServerCert(cmd, o, dns, ips)
	if err != nil {
		return err
	}
	dir, err := stateDir(cmd)
	if err != nil {
		return err
	}
	if err := installServerCert(dir, paths); err != nil {
		return err
	}

	printSetupNotes(cmd.ErrOrStderr(), rec, reused, paths, notes, plan.Findings)
	if o.out == "" {
		printDaemonConfig(cmd.OutOrStdout(), merged, plan, o)
		return nil
	}
	return writeDaemonConfig(cmd.OutOrStdout(), merged, plan, o)
}

// printSetupNotes prints to w which server certificate dockerd gets and
// where it was copied, followed by the merge notes for daemon.json and the
// warnings about the installed units.
func printSetupNotes(w io.Writer, rec pki.Record, reused bool, paths pki.Bundle, notes, findings []string) {
	verb := "issued"
	if reused {
		verb = "reusing"
	}
	fmt.Fprintf(w, "%s server certificate %q (serial %s, valid until %s) for %s\n",
		verb, rec.Name, rec.Serial, rec.NotAfter.UTC().Format("2006-01-02"), strings.Join(append(rec.DNSNames, rec.IPs...), ", "))
	fmt.Fprintf(w, "wrote %s, %s and %s\n", paths.CA, paths.Cert, paths.Key)
	for _, n := range notes {
		fmt.Fprintf(w, "daemon.json: %s\n", n)
	}
	for _, f := range findings {
		fmt.Fprintf(w, "warning: %s\n", f)
	}
}

// serverNames returns the SANs for dockerd's certificate: --san values and
// the listeners' specific addresses. Both empty means pki's defaults.
func serverNames(o daemonConfigOptions) ([]string, []net.IP, error) {
	var dns []string
	var ips []net.IP
	add := func(name string) {
		if ip := net.ParseIP(name); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(dns, name) {
			dns = append(dns, name)
		}
	}
	for _, s := range o.sans {
		if strings.TrimSpace(s) == "" {
			return nil, nil, errors.New("empty --san value")
		}
		add(s)
	}
	for _, l := range o.listen {
		host, _, _ := daemonconf.ParseListener(l)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			continue
		}
		add(host)
	}
	return dns, ips, nil
}

// ensureServerCert returns the dockerd certificate, issuing it when there
// is none, renewing it when it expired, and reissuing it with --reissue
// when it lacks a requested name.
func ensureServerCert(cmd *cobra.Command, o daemonConfigOptions, dns []string, ips []net.IP) (pki.Record, bool, error) {
	a, err := openCA(cmd)
	if err != nil {
		return pki.Record{}, false, err
	}
	if err := unlockCA(cmd, a); err != nil {
		return pki.Record{}, false, err
	}
	rec, found, err := a.Find(dockerdCertName)
	if err != nil {
		return pki.Record{}, false, err
	}
	switch {
	case !found || rec.Status == pki.StatusRevoked:
		rec, err = a.IssueServer(pki.ServerRequest{Name: dockerdCertName, DNSNames: dns, IPs: ips})
		return rec, false, caError(err)
	case len(missingNames(rec, dns, ips)) > 0 && !o.reissue:
		return pki.Record{}, false, failure(
			fmt.Errorf("server certificate %q lacks %s, which clients would dial", dockerdCertName,
				strings.Join(missingNames(rec, dns, ips), ", ")),
			"rerun with --reissue to revoke it and issue one with every name")
	case len(missingNames(rec, dns, ips)) > 0:
		if _, err := a.Revoke(dockerdCertName, "superseded"); err != nil {
			return pki.Record{}, false, caError(err)
		}
		rec, err = a.IssueServer(pki.ServerRequest{Name: dockerdCertName, DNSNames: dns, IPs: ips})
		return rec, false, caError(err)
	case rec.Status == pki.StatusExpired:
		rec, err = a.Renew(dockerdCertName)
		return rec, false, caError(err)
	}
	return rec, true, nil
}

// missingNames returns the DNS names and IPs, as "DNS:name" and "IP:addr",
// that the server certificate rec does not cover.
func missingNames(rec pki.Record, dns []string, ips []net.IP) []string {
	var missing []string
	for _, d := range dns {
		if !slices.Contains(rec.DNSNames, strings.ToLower(d)) {
			missing = append(missing, "DNS:"+d)
		}
	}
	for _, ip := range ips {
		have := slices.ContainsFunc(rec.IPs, func(s string) bool { return ip.Equal(net.ParseIP(s)) })
		if !have {
			missing = append(missing, "IP:"+ip.String())
		}
	}
	return missing
}

// tlsPaths returns the paths of dockerd's TLS files in tlsDir, the ones
// daemon.json names.
func tlsPaths(tlsDir string) pki.Bundle {
	return pki.Bundle{
		CA:   filepath.Join(tlsDir, "ca.pem"),
		Cert: filepath.Join(tlsDir, "server-cert.pem"),
		Key:  filepath.Join(tlsDir, "server-key.pem"),
	}
}

// installServerCert copies the dockerd bundle of state directory dir to
// dst, creating dst's folder when missing.
func installServerCert(dir string, dst pki.Bundle) error {
	src := pki.BundlePaths(dir, pki.KindServer, dockerdCertName)
	tlsDir := filepath.Dir(dst.Cert)
	if err := os.MkdirAll(tlsDir, 0o755); err != nil {
		return usageError(fmt.Errorf("create --tls-dir: %w", err), "pass a writable --tls-dir")
	}
	for _, f := range []struct {
		from, to string
		mode     os.FileMode
	}{{src.CA, dst.CA, 0o644}, {src.Cert, dst.Cert, 0o644}, {src.Key, dst.Key, 0o600}} {
		data, err := os.ReadFile(f.from)
		if err != nil {
			return fmt.Errorf("read issued server certificate: %w", err)
		}
		if err := pki.WriteFileAtomic(f.to, data, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.to, err)
		}
	}
	return nil
}

func mergeDaemonJSON(o daemonConfigOptions, paths pki.Bundle) ([]byte, []string, error) {
	existing, err := os.ReadFile(o.daemonJSON)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, usageError(err, "pass a readable --daemon-json")
	}
	merged, notes, err := daemonconf.Merge(existing, daemonconf.Settings{
		Socket: o.socket, Listeners: o.listen, CACert: paths.CA, Cert: paths.Cert, Key: paths.Key,
	})
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("%s: %w", o.daemonJSON, err), "fix the file or pass another --daemon-json")
	}
	return merged, notes, nil
}

func planUnits(o daemonConfigOptions, merged []byte) (daemonconf.Plan, error) {
	service, err := loadUnit(o.unit, daemonconf.ServiceUnitPaths, "--unit")
	if err != nil {
		return daemonconf.Plan{}, err
	}
	socket, err := loadUnit(o.socketUnit, daemonconf.SocketUnitPaths, "--socket-unit")
	if err != nil {
		return daemonconf.Plan{}, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(merged, &doc); err != nil {
		return daemonconf.Plan{}, err
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return daemonconf.PlanUnits(service, socket, keys), nil
}

func loadUnit(path string, installed []string, flag string) (*daemonconf.Unit, error) {
	files := installed
	if path != "" {
		files = []string{path}
	} else {
		files = daemonconf.FindInstalled(installed)
	}
	if len(files) == 0 {
		return nil, nil
	}
	u, err := daemonconf.LoadUnit(files)
	if err != nil {
		return nil, usageError(err, "pass a readable unit file with "+flag)
	}
	return u, nil
}

func printDaemonConfig(w io.Writer, merged []byte, plan daemonconf.Plan, o daemonConfigOptions) {
	serviceDropIn := "/etc/systemd/system/docker.service.d/" + daemonconf.DropInName
	socketDropIn := "/etc/systemd/system/docker.socket.d/" + daemonconf.DropInName
	fmt.Fprintf(w, "# %s\n%s\n", plan.DaemonJSONPath, merged)
	fmt.Fprintf(w, "# %s\n%s\n", serviceDropIn, plan.ServiceDropIn)
	if plan.SocketDropIn != "" {
		fmt.Fprintf(w, "# %s\n%s\n", socketDropIn, plan.SocketDropIn)
	}
	fmt.Fprintf(w, "# Write each file above to the path in its heading, then run:\n")
	fmt.Fprintf(w, "#   systemctl daemon-reload && systemctl restart docker\n")
	fmt.Fprintf(w, "#   dockmoat check %s\n", checkTarget(o.listen[0]))
}

func writeDaemonConfig(w io.Writer, merged []byte, plan daemonconf.Plan, o daemonConfigOptions) error {
	files := []struct{ rel, content, dest string }{
		{"daemon.json", string(merged), plan.DaemonJSONPath},
		{filepath.Join("docker.service.d", daemonconf.DropInName), plan.ServiceDropIn,
			"/etc/systemd/system/docker.service.d/" + daemonconf.DropInName},
	}
	if plan.SocketDropIn != "" {
		files = append(files, struct{ rel, content, dest string }{
			filepath.Join("docker.socket.d", daemonconf.DropInName), plan.SocketDropIn,
			"/etc/systemd/system/docker.socket.d/" + daemonconf.DropInName})
	}
	var install []string
	for _, f := range files {
		path := filepath.Join(o.out, f.rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return usageError(err, "pass a writable --out folder")
		}
		if err := pki.WriteFileAtomic(path, []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Fprintf(w, "wrote %s\n", path)
		install = append(install, fmt.Sprintf("install -D -m 0644 %s %s", path, f.dest))
	}
	fmt.Fprintf(w, "install them with:\n")
	for _, line := range install {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "  systemctl daemon-reload && systemctl restart docker\n")
	fmt.Fprintf(w, "  dockmoat check %s\n", checkTarget(o.listen[0]))
	return nil
}

// checkTarget turns a listener into a check target, with 127.0.0.1 for a
// listener on every address.
func checkTarget(listener string) string {
	host, port, _ := daemonconf.ParseListener(listener)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}
