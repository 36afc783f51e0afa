package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// execWarmup round trips run before the measured ones on each session, so
// the first scheduling of cat and of the proxy's copy loops is not counted.
const execWarmup = 50

// measureExec runs "cat" in the exec container over a hijacked session on
// each target and times writing a line to its stdin until the same line
// comes back on its stdout.
func (b *bench) measureExec(ctx context.Context, targets []*target) error {
	b.results.exec = map[string]*rateStat{}
	for round := range b.opts.rounds {
		for _, t := range rotate(targets, round) {
			if b.hasFailed("exec", t) {
				continue
			}
			lat, err := execRoundTrips(ctx, t, b.opts.execTrip)
			if err != nil {
				b.fail("exec", t, err)
				continue
			}
			s := b.results.exec[t.name]
			if s == nil {
				s = &rateStat{}
				b.results.exec[t.name] = s
			}
			s.add(len(lat), 0, lat, nil)
			slog.Info("exec round trip", "target", t.name, "round", round, "p50", s.percentile(50))
		}
	}
	return nil
}

func execRoundTrips(ctx context.Context, t *target, trips int) ([]time.Duration, error) {
	client := t.httpClient()
	defer client.CloseIdleConnections()
	var created struct{ ID string }
	create := map[string]any{
		"AttachStdin":  true,
		"AttachStdout": true,
		"AttachStderr": true,
		"Cmd":          []string{"/bin/busybox", "cat"},
	}
	if err := postJSON(ctx, client, "/containers/"+execContainer+"/exec", create, &created); err != nil {
		return nil, err
	}
	conn, br, err := startExec(ctx, t, created.ID)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	// The whole session gets one deadline, far above the few hundred
	// milliseconds it takes, so a target that never echoes fails the round.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	line := []byte("dockmoat-bench 0123456789abcdef\n")
	lat := make([]time.Duration, 0, trips)
	for i := range execWarmup + trips {
		start := time.Now()
		if _, err := conn.Write(line); err != nil {
			return nil, err
		}
		if err := readStdout(br, len(line)); err != nil {
			return nil, fmt.Errorf("read exec output: %w", err)
		}
		if i >= execWarmup {
			lat = append(lat, time.Since(start))
		}
	}
	// Closing stdin ends cat, which ends the session.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return lat, nil
}

// startExec sends POST /exec/{id}/start with an upgrade request and returns
// the hijacked connection after the daemon's 101 response.
func startExec(ctx context.Context, t *target, id string) (net.Conn, *bufio.Reader, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	body := `{"Detach":false,"Tty":false}`
	req := fmt.Sprintf("POST /exec/%s/start HTTP/1.1\r\nHost: docker\r\n"+
		"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"+
		"Content-Length: %d\r\n\r\n%s", id, len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, _, _, err := readHeader(br)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("read exec start response: %w", err)
	}
	if status != 101 {
		conn.Close()
		return nil, nil, fmt.Errorf("exec start returned status %d, want 101 Switching Protocols "+
			"(200 means the Upgrade request header did not reach dockerd)", status)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, br, nil
}

// readStdout reads stream frames until n bytes of stdout have arrived.
// Without a TTY the daemon frames output as an 8-byte header (stream type,
// three zero bytes, big-endian payload length) followed by the payload.
func readStdout(br *bufio.Reader, n int) error {
	var header [8]byte
	for n > 0 {
		if _, err := io.ReadFull(br, header[:]); err != nil {
			return err
		}
		size := int(binary.BigEndian.Uint32(header[4:]))
		payload := make([]byte, size)
		if _, err := io.ReadFull(br, payload); err != nil {
			return err
		}
		switch header[0] {
		case 1:
			n -= size
		case 2:
			return fmt.Errorf("exec wrote to stderr: %q", bytes.TrimSpace(payload))
		}
	}
	return nil
}
