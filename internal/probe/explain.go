package probe

import (
	"regexp"
	"strings"
)

// Explanation maps a family of error messages to their causes and to the
// checks that tell the causes apart.
type Explanation struct {
	// ID names the family, such as "legacy-common-name".
	ID string `json:"id"`
	// Matched is the part of the message that matched.
	Matched string   `json:"matched"`
	Summary string   `json:"summary"`
	Causes  []string `json:"causes"`
	Checks  []string `json:"checks"`
}

type explainRule struct {
	id       string
	patterns []*regexp.Regexp
	summary  string
	causes   []string
	checks   []string
}

func rx(exprs ...string) []*regexp.Regexp {
	var list []*regexp.Regexp
	for _, e := range exprs {
		list = append(list, regexp.MustCompile("(?i)"+e))
	}
	return list
}

// explainRules are ordered from the most specific to the most general, so
// that a message matching several families lists the precise one first.
var explainRules = []explainRule{
	{
		id: "legacy-common-name",
		patterns: rx(`relies on legacy Common Name field`,
			`certificate is not valid for any names, but wanted to match`),
		summary: "The server certificate names the host only in its subject CN, without subjectAltName.",
		causes: []string{
			"The certificate was made with the classic openssl recipe (-subj \"/CN=HOST\") and no subjectAltName extension; Go 1.15 and later, including the docker CLI, ignore the CN.",
		},
		checks: []string{
			"openssl x509 -in server-cert.pem -noout -ext subjectAltName",
			"dockmoat doctor (compares the dialled host with the certificate's SANs)",
			"reissue with SANs, for the dockmoat gateway: dockmoat up --dns HOST --ip ADDR; " +
				"for dockerd's own TLS: dockmoat daemon-config --san HOST --san ADDR --reissue",
		},
	},
	{
		id: "hostname-mismatch",
		patterns: rx(`doesn't contain any IP SANs`, `certificate is valid for .+, not `,
			`Hostname .+ not verified`, `No subject alternative (DNS )?names? matching`,
			`No subject alternative names present`, `hostname mismatch`, `IP address mismatch`,
			`doesn't match either of`, `does not match certificate's altnames`,
			`ERR_TLS_CERT_ALTNAME_INVALID`, `Host name '.+' does not match the certificate subject`),
		summary: "The name or IP address the client dials is not among the server certificate's subjectAltNames.",
		causes: []string{
			"The client dials an IP address, but the certificate lists that address only as a DNS name, or not at all (IP addresses must be IP SANs).",
			"The client dials a name or address the certificate was not issued for, such as a new IP, a short host name (Testcontainers, Jenkins) or a load balancer.",
		},
		checks: []string{
			"openssl s_client -connect HOST:2376 </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName",
			"dockmoat doctor (prints the dialled host and the SAN list)",
			"reissue with every name clients use, for the dockmoat gateway: dockmoat up --dns NAME --ip ADDR; " +
				"for dockerd's own TLS: dockmoat daemon-config --san NAME --san ADDR --reissue (list every name, old and new)",
		},
	},
	{
		id: "expired",
		patterns: rx(`certificate has expired or is not yet valid`, `certificate has expired`,
			`certificate is not yet valid`, `CertificateExpiredException`, `CertificateNotYetValidException`,
			`CERT_HAS_EXPIRED`, `validity check failed`, `alert certificate expired`, `certificate_expired`),
		summary: "A certificate in the chain is outside its validity period, or a clock is wrong.",
		causes: []string{
			"The client certificate (cert.pem) has expired: the server rejects it.",
			"The server certificate or the CA (ca.pem) has expired: the client rejects it.",
			"The clock of the client or the server is wrong.",
		},
		checks: []string{
			"openssl x509 -in FILE -noout -dates, for ca.pem, cert.pem and server-cert.pem",
			"dockmoat doctor (names the expired file)",
			"dockmoat pki list (shows what expires soon); renew: dockmoat pki renew NAME",
		},
	},
	{
		id: "encrypted-key",
		patterns: rx(`failed to parse private key`, `x509: decryption password incorrect`,
			`bad decrypt`, `encrypted private key`, `PEM lib`, `Proc-Type: 4,ENCRYPTED`),
		summary: "The client or server key cannot be read, most often because it is encrypted with a passphrase.",
		causes: []string{
			"The key was made with openssl genrsa -aes256 or another passphrase; Docker cannot prompt for it.",
			"key.pem holds something other than a private key, or a key in a format the client cannot parse.",
		},
		checks: []string{
			"head -2 key.pem (\"ENCRYPTED\" means a passphrase)",
			"decrypt it: openssl pkey -in key.pem -out key-plain.pem && chmod 600 key-plain.pem",
			"dockmoat doctor",
		},
	},
	{
		id: "rsa-only-client",
		patterns: rx(`Invalid RSA private key`, `InvalidKeySpecException`, `algid parse error`,
			`Unsupported key type`, `unable to parse the private key`),
		summary: "A Java Docker client could not read the client key's type or format.",
		causes: []string{
			"The client key is an EC key; the Spotify docker-client (behind older docker-maven-plugin versions) and older docker-java read only RSA keys.",
			"The RSA key is in PKCS#8 form (\"BEGIN PRIVATE KEY\") and the client reads only PKCS#1 (\"BEGIN RSA PRIVATE KEY\").",
		},
		checks: []string{
			"openssl pkey -in key.pem -noout -text | head -1",
			"issue an RSA client key: dockmoat pki issue client NAME --key-type rsa-2048",
		},
	},
	{
		id:       "hosts-twice",
		patterns: rx(`specified both as a flag and in the configuration file`),
		summary:  "dockerd stopped at start because an option is set both on its command line and in daemon.json.",
		causes: []string{
			"daemon.json sets \"hosts\" while the systemd unit starts dockerd with -H fd:// (the packaged docker.service does).",
			"daemon.json sets a TLS key (tlsverify, tlscacert, tlscert, tlskey) that the command line sets too.",
		},
		checks: []string{
			"systemctl cat docker.service (look for -H or --tls on ExecStart=)",
			"dockmoat daemon-config (writes a drop-in that clears ExecStart= and starts dockerd without -H)",
		},
	},
	{
		id:       "socket-activation",
		patterns: rx(`no sockets found via socket activation`),
		summary:  "dockerd was started with -H fd:// but systemd handed it no socket.",
		causes: []string{
			"docker.socket is not enabled or not active, or dockerd was started by hand with -H fd://.",
		},
		checks: []string{
			"systemctl status docker.socket",
			"dockmoat daemon-config (starts dockerd without socket activation)",
		},
	},
	{
		id: "http-to-https",
		patterns: rx(`Client sent an HTTP request to an HTTPS server`,
			`malformed HTTP response "\\x15\\x03`, `malformed HTTP response`),
		summary: "The client speaks plain HTTP to a port that expects TLS.",
		causes: []string{
			"DOCKER_TLS_VERIFY is unset, so the docker CLI does not use TLS even with DOCKER_CERT_PATH set.",
			"A tool read only the host of a docker context and ignored its TLS material.",
			"The URL uses http:// or tcp:// where the tool needs https://.",
		},
		checks: []string{
			"env | grep DOCKER_",
			"dockmoat doctor",
			"set: export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=DIR",
		},
	},
	{
		id: "https-to-http",
		patterns: rx(`server gave HTTP response to HTTPS client`, `oversized record received`,
			`first record does not look like a TLS handshake`, `Unrecognized SSL message`,
			`plaintext connection\?`, `wrong version number`, `WRONG_VERSION_NUMBER`, `packet length too long`,
			`unknown protocol`),
		summary: "The client speaks TLS to a port that serves plain HTTP.",
		causes: []string{
			"The port is the daemon's plain listener (often 2375), which also means anyone can use it.",
			"The client points at the wrong port.",
		},
		checks: []string{
			"dockmoat check HOST:PORT",
			"dockmoat daemon-config (configures dockerd for mutual TLS)",
		},
	},
	{
		id: "no-client-certificate",
		patterns: rx(`client didn't provide a certificate`, `certificate required`, `bad certificate`,
			`alert 42`, `alert 116`, `alert number 42`, `alert number 116`, `bad_certificate`,
			`certificate_required`, `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`, `ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`,
			`Received fatal alert: certificate_unknown`),
		summary: "The server requires a client certificate and the client sent none, or one the server rejects.",
		causes: []string{
			"The client has no cert.pem and key.pem, or does not load them (DOCKER_CERT_PATH unset, a tool that ignores contexts).",
			"The client certificate is issued by a CA the server does not trust, is expired, or lacks the clientAuth extended key usage.",
			"The client certificate is revoked: the dockmoat gateway rejects certificates on its CRL with this alert, and logs the reason \"revoked\".",
		},
		checks: []string{
			"dockmoat doctor (checks cert.pem and key.pem and performs the client's handshake)",
			"openssl s_client -connect HOST:2376 -cert cert.pem -key key.pem -CAfile ca.pem </dev/null",
			"on the CA host: dockmoat pki list (a revoked certificate needs a new one: dockmoat pki issue client NAME)",
		},
	},
	{
		id: "unknown-authority",
		patterns: rx(`certificate signed by unknown authority`, `PKIX path building failed`,
			`unable to find valid certification path`, `unable to get local issuer certificate`,
			`self[- ]signed certificate`, `unable to verify the first certificate`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `SELF_SIGNED_CERT_IN_CHAIN`,
			`DEPTH_ZERO_SELF_SIGNED_CERT`, `UNABLE_TO_GET_ISSUER_CERT`, `unknown ca`, `unknown_ca`),
		summary: "The certificate's issuer is not in the verifier's trust store.",
		causes: []string{
			"The client's ca.pem is not the CA that issued the server certificate.",
			"A Java client uses its default trust store instead of the CA (import ca.pem, or use the PKCS#12 bundle with the chain).",
			"On the server side (dockerd logs it): the client certificate is from a CA that --tlscacert does not contain.",
		},
		checks: []string{
			"openssl verify -CAfile ca.pem server-cert.pem",
			"dockmoat doctor",
			"Java: dockmoat pki export NAME --format p12",
		},
	},
	{
		id: "ca-key-usage",
		patterns: rx(`CA cert does not include key usage extension`, `invalid CA certificate`,
			`key usage does not include certificate signing`),
		summary: "A strict verifier rejected the CA certificate's extensions.",
		causes: []string{
			"The CA has no keyUsage extension; OpenSSL 3 strict mode, the default in Python 3.13's ssl module, requires keyCertSign.",
		},
		checks: []string{
			"openssl x509 -in ca.pem -noout -ext keyUsage,basicConstraints",
			"dockmoat doctor",
			"a new CA with the right profile: dockmoat pki init",
		},
	},
	{
		id:       "key-usage",
		patterns: rx(`incompatible key usage`, `Extended key usage does not permit`, `unsuitable certificate purpose`),
		summary:  "A certificate lacks the extended key usage for its role.",
		causes: []string{
			"The client certificate lacks clientAuth, or the server certificate lacks serverAuth.",
		},
		checks: []string{
			"openssl x509 -in FILE -noout -ext extendedKeyUsage",
			"dockmoat doctor",
		},
	},
	{
		id:       "key-mismatch",
		patterns: rx(`private key does not match public key`, `key values mismatch`, `KEY_VALUES_MISMATCH`),
		summary:  "key.pem does not belong to cert.pem.",
		causes:   []string{"The files come from two different issuances."},
		checks: []string{
			"compare: openssl x509 -in cert.pem -noout -pubkey and openssl pkey -in key.pem -pubout",
			"dockmoat doctor",
		},
	},
	{
		id: "pem-data",
		patterns: rx(`failed to find any PEM data`, `failed to find certificate PEM data`,
			`failed to append certificates from PEM`, `no certificates? (were )?found`, `no start line`),
		summary: "A file that should hold PEM data does not.",
		causes: []string{
			"The file is DER, PKCS#12, empty, or holds the wrong block type (a key in cert.pem).",
		},
		checks: []string{"head -1 ca.pem cert.pem key.pem", "dockmoat doctor"},
	},
	{
		id: "missing-file",
		patterns: rx(`could not read CA certificate`, `open .*\.pem: no such file or directory`,
			`Could not load X509 key pair`),
		summary: "The client looks for its TLS files in a folder that does not hold them.",
		causes: []string{
			"DOCKER_CERT_PATH points at the wrong folder, or is unset and ~/.docker has no ca.pem, cert.pem and key.pem.",
		},
		checks: []string{"ls \"$DOCKER_CERT_PATH\"", "dockmoat doctor"},
	},
	{
		id: "protocol-version",
		patterns: rx(`protocol version not supported`, `unsupported protocol`, `protocol_version`,
			`No appropriate protocol`, `tlsv1 alert protocol version`),
		summary: "Client and server share no TLS protocol version.",
		causes: []string{
			"One side allows only TLS 1.0 or 1.1, which current clients and dockerd reject (dockerd requires TLS 1.2 or later).",
		},
		checks: []string{"dockmoat check HOST:PORT (lists the versions the server accepts)"},
	},
	{
		id: "cannot-connect",
		patterns: rx(`Cannot connect to the Docker daemon`, `connection refused`, `ECONNREFUSED`,
			`i/o timeout`, `no route to host`, `Is the docker daemon running`),
		summary: "Nothing answered at the address the client uses.",
		causes: []string{
			"The client uses the wrong host or port; docker:dind serves TLS on 2376, not 2375.",
			"dockerd does not listen on TCP, or a firewall drops the connection.",
		},
		checks: []string{
			"dockmoat check HOST",
			"dind in CI: DOCKER_HOST=tcp://docker:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/certs/client",
		},
	},
}

// maxExplainInput bounds how much of a pasted message Explain reads, so a
// whole log file costs bounded time.
const maxExplainInput = 64 << 10

// Explain returns the explanations whose patterns occur in message, most
// specific first. It returns nil when none matches.
func Explain(message string) []Explanation {
	if len(message) > maxExplainInput {
		message = message[:maxExplainInput]
	}
	var out []Explanation
	for _, rule := range explainRules {
		for _, p := range rule.patterns {
			if m := p.FindString(message); m != "" {
				out = append(out, Explanation{
					ID: rule.id, Matched: strings.TrimSpace(m), Summary: rule.summary,
					Causes: rule.causes, Checks: rule.checks,
				})
				break
			}
		}
	}
	return out
}
