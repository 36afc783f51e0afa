package pki

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// namePattern is the form of certificate names: it is a valid subject CN and
// a safe folder name (no separators, no leading dot or dash).
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)

// maxNameLen is the upper bound for a CN (ub-common-name, RFC 5280) and for
// an OU value (ub-organizational-unit-name).
const maxNameLen = 64

// ValidateName checks that name can be the CN of a certificate and the name
// of its folder: 1 to 64 characters from letters, digits, '.', '_', '@' and
// '-', starting with a letter or digit.
func ValidateName(name string) error {
	if name == "" {
		return invalidInput(fmt.Errorf("empty certificate name: pass a name such as %q", "alice"))
	}
	if len(name) > maxNameLen || !namePattern.MatchString(name) {
		return invalidInput(fmt.Errorf("invalid certificate name %q: use 1 to %d letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name, maxNameLen))
	}
	return nil
}

// validateGroup checks that group can be an OU value.
func validateGroup(group string) error {
	if len(group) == 0 || len(group) > maxNameLen || !namePattern.MatchString(group) {
		return invalidInput(fmt.Errorf("invalid group %q: use 1 to %d letters, digits, '.', '_', '@' or '-', starting with a letter or digit", group, maxNameLen))
	}
	return nil
}

// dnsLabel is one label of a host name; a leading "*." wildcard is handled
// by normalizeSANs.
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validateDNSName checks that name is a host name or a wildcard such as
// "*.example.test".
func validateDNSName(name string) error {
	host := strings.TrimPrefix(name, "*.")
	if host == "" || len(name) > 253 {
		return invalidInput(fmt.Errorf("invalid DNS name %q", name))
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r > unicode.MaxASCII }) {
		return invalidInput(fmt.Errorf("invalid DNS name %q: write an internationalized name in its ASCII form (xn--...), as clients compare that form", name))
	}
	for _, label := range strings.Split(host, ".") {
		if !dnsLabel.MatchString(label) {
			return invalidInput(fmt.Errorf("invalid DNS name %q: labels are letters, digits and '-'", name))
		}
	}
	return nil
}

// normalizeSANs validates and deduplicates subjectAltNames. A DNS entry
// that is an IP address moves to the IP list, because clients match IP
// addresses only against IP SANs.
func normalizeSANs(dnsNames []string, ips []net.IP) ([]string, []net.IP, error) {
	var outDNS []string
	var outIPs []net.IP
	seenDNS := map[string]bool{}
	seenIP := map[string]bool{}
	addIP := func(ip net.IP) {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !seenIP[ip.String()] {
			seenIP[ip.String()] = true
			outIPs = append(outIPs, ip)
		}
	}
	for _, name := range dnsNames {
		if ip := net.ParseIP(name); ip != nil {
			addIP(ip)
			continue
		}
		if err := checkZone(name); err != nil {
			return nil, nil, err
		}
		if err := validateDNSName(name); err != nil {
			return nil, nil, err
		}
		lower := strings.ToLower(name)
		if !seenDNS[lower] {
			seenDNS[lower] = true
			outDNS = append(outDNS, lower)
		}
	}
	for _, ip := range ips {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, nil, invalidInput(fmt.Errorf("invalid IP address %v", ip))
		}
		addIP(ip)
	}
	return outDNS, outIPs, nil
}

// ParseIP parses an address for an IP SAN. An address with a zone, such
// as "fe80::1%eth0", is rejected with an error that names the zone to
// remove.
func ParseIP(s string) (net.IP, error) {
	if err := checkZone(s); err != nil {
		return nil, err
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, invalidInput(fmt.Errorf("invalid IP address %q", s))
	}
	return ip, nil
}

// checkZone rejects an IP address with a zone. Certificates have no field
// for a zone, and clients match the address without it.
func checkZone(s string) error {
	addr, zone, ok := strings.Cut(s, "%")
	if !ok || net.ParseIP(addr) == nil {
		return nil
	}
	return invalidInput(fmt.Errorf("invalid IP address %q: remove the zone %q, because a certificate cannot contain one", s, "%"+zone))
}

// DefaultServerNames returns the names a server certificate gets when the
// caller gives none. They are localhost, 127.0.0.1, ::1, the host name, its
// fully qualified name and every interface address except loopback and
// link-local ones. Link-local addresses are left out because clients cannot
// dial them without a zone.
func DefaultServerNames() (dns []string, ips []net.IP, err error) {
	dns = []string{"localhost"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	if host, herr := os.Hostname(); herr == nil && validateDNSName(host) == nil {
		dns = append(dns, host)
		if fqdn := lookupFQDN(host); fqdn != "" && validateDNSName(fqdn) == nil {
			dns = append(dns, fqdn)
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, nil, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, addr := range addrs {
		ipnet, ok := addr.(*net.IPNet)
		if !ok || ipnet.IP.IsLinkLocalUnicast() || ipnet.IP.IsLoopback() || ipnet.IP.IsMulticast() {
			continue
		}
		ips = append(ips, ipnet.IP)
	}
	dns, ips, err = normalizeSANs(dns, ips)
	return dns, ips, err
}

// lookupFQDN returns the canonical name of host from the system resolver,
// or "" when it has none other than host within two seconds.
func lookupFQDN(host string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cname, err := net.DefaultResolver.LookupCNAME(ctx, host)
	if err != nil {
		return ""
	}
	cname = strings.TrimSuffix(cname, ".")
	if cname == host || !strings.Contains(cname, ".") {
		return ""
	}
	return cname
}

// randomHex returns n random bytes as lowercase hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
