// Package daemonconf writes the configuration that makes dockerd itself
// serve mutual TLS: a daemon.json merged into the existing one, and systemd
// drop-ins that start dockerd without the command-line flags that would
// clash with that file. It also reads the installed docker.service and
// docker.socket units and explains what would have gone wrong with them.
package daemonconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// DefaultSocket is the unix socket dockerd listens on by default.
const DefaultSocket = "unix:///var/run/docker.sock"

// Settings are the values written into daemon.json.
type Settings struct {
	// Socket is the local unix socket, such as DefaultSocket. Empty means
	// DefaultSocket.
	Socket string
	// Listeners are the TCP addresses, each "tcp://HOST:PORT". dockerd
	// applies tlsverify to every TCP listener, so each of them requires a
	// client certificate.
	Listeners []string
	// CACert, Cert and Key are the absolute paths dockerd reads its CA
	// certificate, server certificate and server key from.
	CACert, Cert, Key string
}

// Merge returns existing, a daemon.json document, with the TLS settings and
// hosts of s set and every other key kept as it was. The result always has
// "tlsverify": true, so every TCP listener in it requires a client
// certificate. Notes describe each value Merge replaced or dropped, for the
// operator. An empty existing document counts as {}.
func Merge(existing []byte, s Settings) (merged []byte, notes []string, err error) {
	hosts, err := s.hosts()
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkPaths(); err != nil {
		return nil, nil, err
	}

	// dockerd strips a UTF-8 byte order mark, which Windows editors add.
	existing = bytes.TrimPrefix(existing, []byte("\xef\xbb\xbf"))
	doc := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(existing)) > 0 {
		if err := json.Unmarshal(existing, &doc); err != nil {
			return nil, nil, fmt.Errorf("existing daemon.json is not a JSON object: %w", err)
		}
		if doc == nil {
			return nil, nil, fmt.Errorf("existing daemon.json is null, want a JSON object")
		}
	}
	notes = describeReplaced(doc, hosts, s)

	set := map[string]any{
		"hosts":     hosts,
		"tlsverify": true,
		"tlscacert": s.CACert,
		"tlscert":   s.Cert,
		"tlskey":    s.Key,
	}
	delete(doc, "tls")
	for key, value := range set {
		raw, err := json.Marshal(value)
		if err != nil {
			return nil, nil, err
		}
		doc[key] = raw
	}

	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode daemon.json: %w", err)
	}
	return append(out, '\n'), notes, nil
}

// hosts returns the "hosts" value: the unix socket first, then every TCP
// listener in order, without duplicates.
func (s Settings) hosts() ([]string, error) {
	socket := s.Socket
	if socket == "" {
		socket = DefaultSocket
	}
	if err := checkSocket(socket); err != nil {
		return nil, err
	}
	if len(s.Listeners) == 0 {
		return nil, fmt.Errorf("no TCP listener given: pass at least one tcp://HOST:PORT")
	}
	hosts := []string{socket}
	for _, l := range s.Listeners {
		if _, _, err := ParseListener(l); err != nil {
			return nil, err
		}
		if !slices.Contains(hosts, l) {
			hosts = append(hosts, l)
		}
	}
	return hosts, nil
}

func (s Settings) checkPaths() error {
	for _, p := range []struct{ name, path string }{
		{"CA certificate", s.CACert}, {"server certificate", s.Cert}, {"server key", s.Key},
	} {
		if !strings.HasPrefix(p.path, "/") {
			return fmt.Errorf("%s path %q is not absolute: dockerd needs an absolute path", p.name, p.path)
		}
	}
	return nil
}

func checkSocket(socket string) error {
	path, ok := strings.CutPrefix(socket, "unix://")
	if !ok || !strings.HasPrefix(path, "/") {
		return fmt.Errorf("invalid socket %q: want unix:///ABSOLUTE/PATH", socket)
	}
	return nil
}

// ParseListener splits a TCP listener "tcp://HOST:PORT" into host and port.
// HOST may be empty or an unspecified address (0.0.0.0, ::), which makes
// dockerd listen on every address.
func ParseListener(listener string) (host string, port int, err error) {
	u, err := url.Parse(listener)
	if err != nil || u.Scheme != "tcp" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", 0, fmt.Errorf("invalid listener %q: want tcp://HOST:PORT, for example tcp://0.0.0.0:2376", listener)
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("invalid listener %q: want tcp://HOST:PORT with an explicit port: %v", listener, err)
	}
	port, err = strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q in listener %q: want 1 to 65535", portText, listener)
	}
	return host, port, nil
}

// describeReplaced lists the values of owned keys in doc that the merge
// changes, so the operator sees what the old file did.
func describeReplaced(doc map[string]json.RawMessage, hosts []string, s Settings) []string {
	var notes []string
	if raw, ok := doc["hosts"]; ok {
		var old []string
		if err := json.Unmarshal(raw, &old); err != nil {
			notes = append(notes, fmt.Sprintf("replaced \"hosts\": %s, which is not a list of strings", compact(raw)))
		}
		for _, h := range old {
			if slices.Contains(hosts, h) {
				continue
			}
			switch {
			case strings.HasPrefix(h, "fd://"):
				notes = append(notes, fmt.Sprintf("dropped host %q: socket activation is not used, dockerd binds its socket itself", h))
			case strings.HasPrefix(h, "tcp://"):
				notes = append(notes, fmt.Sprintf("dropped host %q: pass it with --listen to keep it, and it will then require mutual TLS", h))
			default:
				notes = append(notes, fmt.Sprintf("dropped host %q: pass it with --socket to keep it", h))
			}
		}
	}
	if raw, ok := doc["tlsverify"]; ok && string(compact(raw)) != "true" {
		notes = append(notes, fmt.Sprintf("replaced \"tlsverify\": %s with true: without it any client may connect", compact(raw)))
	}
	if raw, ok := doc["tls"]; ok {
		notes = append(notes, fmt.Sprintf("removed \"tls\": %s: \"tlsverify\": true turns TLS on by itself", compact(raw)))
	}
	paths := map[string]string{"tlscacert": s.CACert, "tlscert": s.Cert, "tlskey": s.Key}
	for _, key := range []string{"tlscacert", "tlscert", "tlskey"} {
		raw, ok := doc[key]
		if !ok {
			continue
		}
		var old string
		if json.Unmarshal(raw, &old) != nil || old != paths[key] {
			notes = append(notes, fmt.Sprintf("replaced %q: %s", key, compact(raw)))
		}
	}
	return notes
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
