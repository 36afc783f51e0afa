package gateway

import (
	"io"
	"net/http"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetricNames(t *testing.T) {
	files := newTestFiles(t)
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, files, fakeDaemon(t, pingHandler()), func(c *Config) { c.Metrics = metrics })
	admin := files.ca.issue(t, leafOptions{name: "alice", groups: []string{"admin"}})
	resp, err := g.client(admin).Get(g.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	handshakeAndRead(g.addr, files.clientTLS(nil))
	if err := g.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, files.crlFile, files.ca.crlPEM(t, admin.cert))
	if err := g.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "request metric", func() bool { return gathered(t, reg)["dockmoat_requests_total"] })

	names := gathered(t, reg)
	for _, want := range []string{
		"dockmoat_requests_total",
		"dockmoat_request_duration_seconds",
		"dockmoat_tls_handshake_failures_total",
		"dockmoat_open_connections",
		"dockmoat_hijacked_sessions",
		"dockmoat_sent_bytes_total",
		"dockmoat_reloads_total",
		"dockmoat_server_certificate_expiry_seconds",
		"dockmoat_ca_certificate_expiry_seconds",
	} {
		if !names[want] {
			t.Errorf("metric %s missing; have %v", want, sortedKeys(names))
		}
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("second NewMetrics on the same registry succeeded, want a duplicate registration error")
	}
}

func gathered(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestNilMetricsRecordNothing fails by panicking if a recording method of
// the disabled form dereferences its receiver.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.request("alice", &Decision{Allow: true, Operation: "system.ping"}, http.StatusOK, 1, 2, 0)
	m.handshakeFailed(reasonExpired)
	m.connOpened()
	m.connClosed()
	m.hijackStarted()
	m.hijackEnded()
	m.reloaded(true)
	m.bytes("alice", 1, 1)
}

func TestRequestMetricsPerLabels(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ping := &Decision{Allow: true, Operation: "system.ping"}
	m.request("alice", ping, http.StatusOK, 0, 3, 0)
	m.request("alice", ping, http.StatusOK, 5, 4, 0)
	m.request("alice", ping, http.StatusBadGateway, 0, 0, 0)
	m.request("bob", &Decision{Operation: "system.ping"}, http.StatusForbidden, 0, 0, 0)

	tests := []struct {
		name string
		got  prometheus.Counter
		want float64
	}{
		{"alice allow 200", m.requests.WithLabelValues("alice", "system.ping", "allow", "200"), 2},
		{"alice allow 502", m.requests.WithLabelValues("alice", "system.ping", "allow", "502"), 1},
		{"bob deny 403", m.requests.WithLabelValues("bob", "system.ping", "deny", "403"), 1},
		{"alice received bytes", m.bytesIn.WithLabelValues("alice"), 5},
		{"alice sent bytes", m.bytesOut.WithLabelValues("alice"), 7},
	}
	for _, tt := range tests {
		var got dto.Metric
		if err := tt.got.Write(&got); err != nil {
			t.Fatal(err)
		}
		if v := got.GetCounter().GetValue(); v != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, v, tt.want)
		}
	}
	var duration dto.Metric
	if err := m.duration.WithLabelValues("system.ping").(prometheus.Histogram).Write(&duration); err != nil {
		t.Fatal(err)
	}
	if n := duration.GetHistogram().GetSampleCount(); n != 4 {
		t.Errorf("system.ping duration samples = %d, want 4", n)
	}
}
