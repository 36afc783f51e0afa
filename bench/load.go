package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Requests for /_ping. The API version prefix is left out, as the docker
// CLI does for its first ping.
var (
	pingKeepAlive = []byte("GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockmoat-bench\r\n\r\n")
	pingClose     = []byte("GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockmoat-bench\r\nConnection: close\r\n\r\n")
)

// keepAliveConcurrency lists the numbers of parallel keep-alive connections.
var keepAliveConcurrency = []int{1, 8, 64}

// newConnConcurrency is the number of clients that each open a connection,
// make one request and close it, in a loop. Eight keeps both cores busy with
// handshakes on the 2-core machines this benchmark was written for.
const newConnConcurrency = 8

// rateStat accumulates request counts and latencies over rounds.
type rateStat struct {
	requests  int
	errors    int
	firstErr  string
	elapsed   time.Duration
	latencies []time.Duration
	// curve is the key exchange group of the last TLS handshake.
	curve string
	// targetCPU is the CPU time of the target's process during the
	// measurement, and dockerdCPU that of dockerd. Both are the same for
	// the unix socket and dockerd-tls.
	targetCPU, dockerdCPU time.Duration
}

// cpuPerRequest returns CPU time per request in µs, or 0 without data.
func (s *rateStat) cpuPerRequest(cpu time.Duration) float64 {
	if s == nil || s.requests == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(s.requests)
}

func (s *rateStat) rate() float64 {
	if s == nil || s.elapsed <= 0 {
		return 0
	}
	return float64(s.requests) / s.elapsed.Seconds()
}

func (s *rateStat) percentile(p float64) time.Duration {
	if s == nil || len(s.latencies) == 0 {
		return 0
	}
	slices.Sort(s.latencies)
	i := int(p / 100 * float64(len(s.latencies)-1))
	return s.latencies[i]
}

func (s *rateStat) add(requests int, elapsed time.Duration, lat []time.Duration, errs []error) {
	s.requests += requests
	s.elapsed += elapsed
	s.latencies = append(s.latencies, lat...)
	for _, err := range errs {
		if err == nil {
			continue
		}
		if s.errors == 0 {
			s.firstErr = err.Error()
		}
		s.errors++
	}
}

// readResponse reads one HTTP/1.1 response from br and discards its body.
// It handles the two framings dockerd, nginx, HAProxy and Go's net/http
// use for /_ping: Content-Length and chunked.
func readResponse(br *bufio.Reader) (status int, err error) {
	status, length, chunked, err := readHeader(br)
	if err != nil {
		return 0, err
	}
	switch {
	case chunked:
		return status, discardChunked(br)
	case length >= 0:
		_, err = br.Discard(length)
		return status, err
	default:
		return status, errors.New("response has neither Content-Length nor chunked framing")
	}
}

// readHeader reads a status line and header fields. length is -1 when the
// response has no Content-Length.
func readHeader(br *bufio.Reader) (status, length int, chunked bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, false, fmt.Errorf("invalid status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, false, fmt.Errorf("invalid status line %q", line)
	}
	length = -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, err
		}
		if len(line) <= 2 {
			return status, length, chunked, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil {
				return 0, 0, false, fmt.Errorf("invalid Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil {
			return fmt.Errorf("invalid chunk size %q", size)
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// pingOnce opens a connection to t, sends one /_ping and checks for 200.
func pingOnce(ctx context.Context, t *target) error {
	conn, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(pingClose); err != nil {
		return err
	}
	status, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("/_ping returned status %d", status)
	}
	return nil
}

// keepAliveWorker sends /_ping on one connection until deadline and returns
// the latency of each request.
func keepAliveWorker(ctx context.Context, t *target, deadline time.Time) ([]time.Duration, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	lat := make([]time.Duration, 0, 4096)
	for {
		start := time.Now()
		if start.After(deadline) {
			return lat, nil
		}
		if _, err := conn.Write(pingKeepAlive); err != nil {
			return lat, err
		}
		status, err := readResponse(br)
		if err != nil {
			return lat, err
		}
		if status != 200 {
			return lat, fmt.Errorf("/_ping returned status %d", status)
		}
		lat = append(lat, time.Since(start))
	}
}

// newConnWorker opens a connection per request until deadline.
func newConnWorker(ctx context.Context, t *target, deadline time.Time, curve *string) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, 1024)
	for {
		start := time.Now()
		if start.After(deadline) {
			return lat, nil
		}
		conn, err := t.dial(ctx)
		if err != nil {
			return lat, err
		}
		if tc, ok := conn.(*tls.Conn); ok && *curve == "" {
			*curve = tc.ConnectionState().CurveID.String()
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write(pingClose)
		var status int
		if err == nil {
			status, err = readResponse(bufio.NewReader(conn))
		}
		conn.Close()
		if err != nil {
			return lat, err
		}
		if status != 200 {
			return lat, fmt.Errorf("/_ping returned status %d", status)
		}
		lat = append(lat, time.Since(start))
	}
}

type workerFunc func(ctx context.Context, t *target, deadline time.Time, curve *string) ([]time.Duration, error)

// runMeasured runs runWorkers and adds the CPU time that t's process and
// dockerd used meanwhile to stat.
func (b *bench) runMeasured(ctx context.Context, t *target, n int, duration time.Duration, worker workerFunc, stat *rateStat) {
	targetPIDs := t.proc().pids()
	dockerdPIDs := []int{b.dockerd.pid()}
	targetStart, dockerdStart := cpuTime(targetPIDs), cpuTime(dockerdPIDs)
	runWorkers(ctx, t, n, duration, worker, stat)
	stat.targetCPU += cpuTime(targetPIDs) - targetStart
	stat.dockerdCPU += cpuTime(dockerdPIDs) - dockerdStart
}

// runWorkers runs n copies of worker against t for duration and adds the
// counts to stat.
func runWorkers(ctx context.Context, t *target, n int, duration time.Duration, worker workerFunc, stat *rateStat) {
	var wg sync.WaitGroup
	lats := make([][]time.Duration, n)
	errs := make([]error, n)
	curves := make([]string, n)
	start := time.Now()
	deadline := start.Add(duration)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats[i], errs[i] = worker(ctx, t, deadline, &curves[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	var all []time.Duration
	for _, l := range lats {
		total += len(l)
		all = append(all, l...)
	}
	stat.add(total, elapsed, all, errs)
	if curves[0] != "" {
		stat.curve = curves[0]
	}
}

func (b *bench) measureKeepAlive(ctx context.Context, targets []*target) error {
	b.results.keepAlive = map[int]map[string]*rateStat{}
	keepAlive := func(ctx context.Context, t *target, deadline time.Time, _ *string) ([]time.Duration, error) {
		return keepAliveWorker(ctx, t, deadline)
	}
	for _, c := range keepAliveConcurrency {
		stats := map[string]*rateStat{}
		b.results.keepAlive[c] = stats
		for round := range b.opts.rounds {
			for _, t := range rotate(targets, round) {
				if err := ctx.Err(); err != nil {
					return err
				}
				if stats[t.name] == nil {
					stats[t.name] = &rateStat{}
				}
				b.runMeasured(ctx, t, c, b.opts.duration, keepAlive, stats[t.name])
				slog.Info("keep-alive", "target", t.name, "concurrency", c, "round", round,
					"rate", fmt.Sprintf("%.0f/s", stats[t.name].rate()), "errors", stats[t.name].errors)
			}
		}
	}
	return nil
}

func (b *bench) measureNewConns(ctx context.Context, targets []*target, keyType string) error {
	if b.results.newConn == nil {
		b.results.newConn = map[string]map[string]*rateStat{}
	}
	stats := map[string]*rateStat{}
	b.results.newConn[keyType] = stats
	for round := range b.opts.rounds {
		for _, t := range rotate(targets, round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if stats[t.name] == nil {
				stats[t.name] = &rateStat{}
			}
			b.runMeasured(ctx, t, newConnConcurrency, b.opts.duration, newConnWorker, stats[t.name])
			slog.Info("new connections", "target", t.name, "key", keyType, "round", round,
				"rate", fmt.Sprintf("%.0f/s", stats[t.name].rate()), "errors", stats[t.name].errors)
		}
	}
	return nil
}
