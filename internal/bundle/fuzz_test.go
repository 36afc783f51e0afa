package bundle

import (
	"net"
	"strconv"
	"testing"
)

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"tcp://docker.example.test:2376", "tcp://[::1]:2376", "https://x:1", "tcp://:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		h, port, err := ParseHost(host)
		if err != nil {
			return
		}
		if h == "" {
			t.Fatalf("ParseHost(%q) accepted an empty host", host)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			t.Fatalf("ParseHost(%q) accepted port %q", host, port)
		}
		if _, _, err := net.SplitHostPort(net.JoinHostPort(h, port)); err != nil {
			t.Fatalf("ParseHost(%q) = %q, %q, which do not join: %v", host, h, port, err)
		}
	})
}
