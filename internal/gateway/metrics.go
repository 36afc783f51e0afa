package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the gateway's Prometheus metrics. Their names, all under
// the dockmoat_ namespace, are a stable interface for dashboards and alerts.
// A nil *Metrics records nothing, which is the form used when metrics are
// disabled.
type Metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	handshakeErrors *prometheus.CounterVec
	connections     prometheus.Gauge
	hijacked        prometheus.Gauge
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	// serverNotAfter and caNotAfter are the Unix times at which the loaded
	// certificates expire, read by the expiry gauges at each scrape.
	serverNotAfter atomic.Int64
	caNotAfter     atomic.Int64
	// series maps a requestLabels to its *requestSeries. It grows with the
	// label combinations seen, as the vectors themselves do.
	series sync.Map
}

// requestLabels are the label values of one completed request.
type requestLabels struct {
	client, operation, decision, status string
}

// requestSeries are the metrics of one requestLabels, looked up once so
// that a request does not hash its label values into every vector again.
type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

// NewMetrics creates the gateway metrics and registers them with reg. It
// fails when reg already holds metrics of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns = "dockmoat"
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "requests_total",
			Help: "API requests by client common name, operation, decision and HTTP status.",
		}, []string{"client", "operation", "decision", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time from the end of the request header to the last response byte, by operation.",
			Buckets: []float64{.001, .005, .025, .1, .5, 2.5, 10, 60, 300},
		}, []string{"operation"}),
		handshakeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "tls_handshake_failures_total",
			Help: "Failed TLS handshakes by reason.",
		}, []string{"reason"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "open_connections",
			Help: "Open client connections, including hijacked ones.",
		}),
		hijacked: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "hijacked_sessions",
			Help: "Open attach and exec sessions that have switched to a raw stream.",
		}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "received_bytes_total",
			Help: "Request body and hijacked stream bytes received from clients, by client.",
		}, []string{"client"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sent_bytes_total",
			Help: "Response body and hijacked stream bytes sent to clients, by client.",
		}, []string{"client"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "reloads_total",
			Help: "Reloads of the server certificate, CA and CRL, by result (success or failure).",
		}, []string{"result"}),
	}
	serverExpiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "server_certificate_expiry_seconds",
		Help: "Seconds until the loaded server certificate expires; negative once expired.",
	}, func() float64 { return secondsUntil(m.serverNotAfter.Load()) })
	caExpiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "ca_certificate_expiry_seconds",
		Help: "Seconds until the loaded client CA certificate expires; negative once expired.",
	}, func() float64 { return secondsUntil(m.caNotAfter.Load()) })

	for _, c := range []prometheus.Collector{
		m.requests, m.duration, m.handshakeErrors, m.connections, m.hijacked,
		m.bytesIn, m.bytesOut, m.reloads, serverExpiry, caExpiry,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) request(client string, d *Decision, status int, in, out int64, elapsed time.Duration) {
	if m == nil {
		return
	}
	labels := requestLabels{client: client, operation: d.Operation, decision: "deny", status: statusLabel(status)}
	if d.Allow {
		labels.decision = "allow"
	}
	series := m.seriesFor(labels)
	series.requests.Inc()
	series.duration.Observe(elapsed.Seconds())
	if in > 0 {
		series.bytesIn.Add(float64(in))
	}
	if out > 0 {
		series.bytesOut.Add(float64(out))
	}
}

func (m *Metrics) seriesFor(labels requestLabels) *requestSeries {
	if cached, ok := m.series.Load(labels); ok {
		return cached.(*requestSeries)
	}
	series := &requestSeries{
		requests: m.requests.WithLabelValues(labels.client, labels.operation, labels.decision, labels.status),
		duration: m.duration.WithLabelValues(labels.operation),
		bytesIn:  m.bytesIn.WithLabelValues(labels.client),
		bytesOut: m.bytesOut.WithLabelValues(labels.client),
	}
	cached, _ := m.series.LoadOrStore(labels, series)
	return cached.(*requestSeries)
}

func (m *Metrics) bytes(client string, in, out int64) {
	if m == nil {
		return
	}
	if in > 0 {
		m.bytesIn.WithLabelValues(client).Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.WithLabelValues(client).Add(float64(out))
	}
}

func (m *Metrics) handshakeFailed(reason string) {
	if m != nil {
		m.handshakeErrors.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) connOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

func (m *Metrics) connClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

func (m *Metrics) hijackStarted() {
	if m != nil {
		m.hijacked.Inc()
	}
}

func (m *Metrics) hijackEnded() {
	if m != nil {
		m.hijacked.Dec()
	}
}

func (m *Metrics) reloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

func (m *Metrics) certificatesLoaded(st *tlsState) {
	if m == nil {
		return
	}
	m.serverNotAfter.Store(st.leaf.NotAfter.Unix())
	m.caNotAfter.Store(st.caCerts[0].NotAfter.Unix())
}

func secondsUntil(unix int64) float64 {
	return time.Until(time.Unix(unix, 0)).Seconds()
}

// statusLabel avoids strconv's allocation for the common statuses.
func statusLabel(status int) string {
	switch status {
	case 200:
		return "200"
	case 101:
		return "101"
	case 201:
		return "201"
	case 204:
		return "204"
	case 304:
		return "304"
	case 403:
		return "403"
	case 404:
		return "404"
	}
	return strconv.Itoa(status)
}
