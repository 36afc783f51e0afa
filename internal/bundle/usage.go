package bundle

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
)

// contextNamePattern is the form the docker CLI (20.10 to 28) accepts for
// context names in `docker context create` and `docker context import`.
var contextNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`)

// ContextName returns a docker context name for client name. Client names
// may contain '@' or be one character long, which docker rejects, so '@'
// becomes '_' and a name still rejected gets the prefix "dockmoat-".
func ContextName(name string) string {
	if contextNamePattern.MatchString(name) {
		return name
	}
	name = strings.ReplaceAll(name, "@", "_")
	if contextNamePattern.MatchString(name) {
		return name
	}
	return "dockmoat-" + name
}

// Usage describes an exported bundle for WriteUsage.
type Usage struct {
	// Name is the client name. ContextName derives the docker context
	// name from it.
	Name string
	// Host is the Docker endpoint, tcp://HOST:PORT.
	Host string
	// CertPath is a folder with ca.pem, cert.pem and key.pem.
	CertPath string
	// Format is the export that was written, and File its path (empty for
	// FormatDir and for an env export written to stdout).
	Format Format
	File   string
	// PasswordFile is the file with the PKCS#12 password of a FormatP12
	// export. The printed keytool command reads the trust store password
	// from it, so the command runs without a prompt.
	PasswordFile string
}

// WriteUsage writes how to use the bundle with the docker CLI, docker
// contexts, the docker-maven-plugin, Testcontainers and, for a PKCS#12
// export, Java's JSSE.
func WriteUsage(w io.Writer, u Usage) error {
	host, port, err := ParseHost(u.Host)
	if err != nil {
		return err
	}
	ca := filepath.Join(u.CertPath, "ca.pem")
	cert := filepath.Join(u.CertPath, "cert.pem")
	key := filepath.Join(u.CertPath, "key.pem")
	context := ContextName(u.Name)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	switch u.Format {
	case FormatContext:
		p("Import the context and use it:")
		p("  docker context import %s %s", shellQuote(context), shellQuote(u.File))
		p("  docker --context %s version", shellQuote(context))
		p("")
	case FormatEnv:
		if u.File != "" {
			p("Load the environment and run the docker CLI:")
			p("  . %s && docker version", shellQuote(u.File))
			p("")
		}
	case FormatP12:
		p("Java (JSSE) clients use the PKCS#12 key store, which contains the key, the")
		p("certificate and the CA chain:")
		p("  -Djavax.net.ssl.keyStore=%s -Djavax.net.ssl.keyStoreType=PKCS12", shellQuote(u.File))
		p("  -Djavax.net.ssl.keyStorePassword=... (the password you passed)")
		p("Trust the CA with a trust store made from ca.pem:")
		keytool := "keytool -importcert -noprompt -alias dockmoat-ca -file " + shellQuote(ca) +
			" -keystore truststore.p12 -storetype PKCS12"
		if u.PasswordFile != "" {
			// keytool (checked with OpenJDK 17) prompts for the store
			// password unless -storepass or -storepass:file sets it.
			keytool += " -storepass:file " + shellQuote(u.PasswordFile)
		}
		p("  %s", keytool)
		p("")
	}

	p("The PEM files below are in %s.", u.CertPath)
	p("docker CLI flags:")
	p("  docker --tlsverify --tlscacert=%s --tlscert=%s --tlskey=%s -H=%s version",
		shellQuote(ca), shellQuote(cert), shellQuote(key), shellQuote(u.Host))
	p("docker context:")
	p("  docker context create %s --docker %s", shellQuote(context),
		shellQuote(fmt.Sprintf("host=%s,ca=%s,cert=%s,key=%s", u.Host, ca, cert, key)))
	p("Environment:")
	p("  export DOCKER_HOST=%s DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=%s", shellQuote(u.Host), shellQuote(u.CertPath))
	p("docker-maven-plugin, com.spotify's in <configuration> (io.fabric8's plugin")
	p("calls the second setting <certPath>):")
	p("  <dockerHost>https://%s</dockerHost>", net.JoinHostPort(host, port))
	p("  <dockerCertPath>%s</dockerCertPath>", u.CertPath)
	p("Testcontainers (~/.testcontainers.properties):")
	p("  docker.host=%s", u.Host)
	p("  docker.tls.verify=1")
	p("  docker.cert.path=%s", u.CertPath)
	_, err = io.WriteString(w, b.String())
	return err
}
