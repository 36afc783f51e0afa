// Package bundle exports an issued client certificate in the forms Docker
// clients read: a folder of PEM files, a docker context archive, a PKCS#12
// key store for Java, and DOCKER_* environment variables. It also prints
// how to use each form with the docker CLI, docker contexts, the
// docker-maven-plugin and Testcontainers.
package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockmoat/dockmoat/internal/pki"
	"software.sslmate.com/src/go-pkcs12"
)

// Format is an export format.
type Format string

// Export formats.
const (
	FormatDir     Format = "dir"
	FormatContext Format = "context"
	FormatP12     Format = "p12"
	FormatEnv     Format = "env"
)

// Formats lists every export format.
var Formats = []Format{FormatDir, FormatContext, FormatP12, FormatEnv}

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown export format %q: use dir, context, p12 or env", s)
}

// Files is the PEM content of a client bundle.
type Files struct {
	CA, Cert, Key []byte
}

// Load reads the bundle of client name from state directory dir and checks
// that each file contains exactly one PEM block of the expected type and that
// the key matches the certificate.
func Load(dir, name string) (Files, error) {
	paths := pki.BundlePaths(dir, pki.KindClient, name)
	var f Files
	var err error
	if f.CA, err = os.ReadFile(paths.CA); err != nil {
		return Files{}, err
	}
	if f.Cert, err = os.ReadFile(paths.Cert); err != nil {
		return Files{}, err
	}
	if f.Key, err = os.ReadFile(paths.Key); err != nil {
		return Files{}, err
	}
	if _, err := tlsPair(f); err != nil {
		return Files{}, fmt.Errorf("client bundle %s: %w", filepath.Dir(paths.Cert), err)
	}
	if _, err := parseCert(f.CA); err != nil {
		return Files{}, fmt.Errorf("%s: %w", paths.CA, err)
	}
	return f, nil
}

// Certificate parses the client certificate of f.
func (f Files) Certificate() (*x509.Certificate, error) {
	cert, err := parseCert(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("cert.pem: %w", err)
	}
	return cert, nil
}

// parseCert parses data that must hold exactly one CERTIFICATE block.
func parseCert(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("want exactly one CERTIFICATE PEM block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// ParseHost checks a DOCKER_HOST value of the form tcp://HOST:PORT and
// returns its host and port.
func ParseHost(host string) (string, string, error) {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "tcp" || u.Host == "" || u.Path != "" || u.User != nil {
		return "", "", fmt.Errorf("invalid Docker host %q: use tcp://HOST:PORT, for example tcp://docker.example.test:2376", host)
	}
	h, port, err := net.SplitHostPort(u.Host)
	if err != nil || h == "" {
		return "", "", fmt.Errorf("invalid Docker host %q: use tcp://HOST:PORT, for example tcp://docker.example.test:2376", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("invalid port %q in Docker host %q: use 1 to 65535", port, host)
	}
	return h, port, nil
}

// WriteDir writes ca.pem, cert.pem and key.pem (mode 0600) to folder out,
// creating it with mode 0700 when missing.
func WriteDir(f Files, out string) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	for _, file := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"ca.pem", f.CA, 0o644},
		{"key.pem", f.Key, 0o600},
		{"cert.pem", f.Cert, 0o644},
	} {
		if err := pki.WriteFileAtomic(filepath.Join(out, file.name), file.data, file.perm); err != nil {
			return err
		}
	}
	return nil
}

// contextMeta is meta.json of a docker context archive, in the form
// `docker context export` writes (docker CLI 20.10 to 28).
type contextMeta struct {
	Name      string                     `json:"Name"`
	Metadata  contextMetadata            `json:"Metadata"`
	Endpoints map[string]contextEndpoint `json:"Endpoints"`
}

type contextMetadata struct {
	Description string `json:"Description,omitempty"`
}

type contextEndpoint struct {
	Host          string `json:"Host"`
	SkipTLSVerify bool   `json:"SkipTLSVerify"`
}

// ContextArchive returns a tar archive that `docker context import NAME
// FILE` accepts: meta.json with the docker endpoint host and the context
// name ContextName(name), and the TLS files under tls/docker/.
func ContextArchive(f Files, name, host string) ([]byte, error) {
	if _, _, err := ParseHost(host); err != nil {
		return nil, err
	}
	meta, err := json.Marshal(contextMeta{
		Name:     ContextName(name),
		Metadata: contextMetadata{Description: "dockmoat client " + name},
		Endpoints: map[string]contextEndpoint{
			"docker": {Host: host},
		},
	})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Now().UTC().Truncate(time.Second)
	for _, d := range []string{"tls", "tls/docker"} {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o700, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
	}
	for _, file := range []struct {
		name string
		data []byte
		mode int64
	}{
		{"meta.json", meta, 0o644},
		{"tls/docker/ca.pem", f.CA, 0o600},
		{"tls/docker/cert.pem", f.Cert, 0o600},
		{"tls/docker/key.pem", f.Key, 0o600},
	} {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: file.name, Mode: file.mode, Size: int64(len(file.data)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(file.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// p12Iterations is the PBKDF2 work factor for the PKCS#12 key and MAC.
// go-pkcs12's default of 2048 protects little against guessing a weak
// password.
const p12Iterations = 100_000

// PKCS12 returns a PKCS#12 key store with the client key, its certificate
// and the CA certificate as its chain, encrypted with password. It uses
// PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC and an HMAC-SHA256 MAC,
// which Java 12 and later, and OpenSSL 1.1.1 and later, read.
func PKCS12(f Files, password string) ([]byte, error) {
	if password == "" {
		return nil, errors.New("empty PKCS#12 password: Java key stores need one, pass --password-file")
	}
	pair, err := tlsPair(f)
	if err != nil {
		return nil, err
	}
	ca, err := parseCert(f.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return pkcs12.Modern2023.WithIterations(p12Iterations).Encode(pair.key, pair.cert, []*x509.Certificate{ca}, password)
}

// Env returns shell lines that export DOCKER_HOST, DOCKER_TLS_VERIFY=1 and
// DOCKER_CERT_PATH. DOCKER_TLS_VERIFY is always "1": the docker CLI turns
// verification on when the variable is set at all, even to "0", while
// other SDKs parse the value, so only "1" means the same to every client.
func Env(host, certPath string) (string, error) {
	if _, _, err := ParseHost(host); err != nil {
		return "", err
	}
	return fmt.Sprintf("export DOCKER_HOST=%s\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH=%s\n",
		shellQuote(host), shellQuote(certPath)), nil
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._:@-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
