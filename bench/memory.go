package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// memorySettle is how long the benchmark waits after opening or closing
// connections before it reads resident memory, so Go's scavenger and the
// proxies' buffers have settled.
const memorySettle = 2 * time.Second

// memoryStat is the resident memory of a target's process before and with
// n open connections, in KiB.
type memoryStat struct {
	conns         int
	alive         int
	before, after int64
	// note is an observation about the target's behaviour under this load,
	// or empty.
	note string
}

type opener func(context.Context, *target) (net.Conn, error)

// confirmer runs after all connections are open and before memory is read.
type confirmer func(context.Context, []net.Conn) (string, error)

func (m *memoryStat) perConnKiB() float64 {
	if m == nil || m.conns == 0 {
		return 0
	}
	return float64(m.after-m.before) / float64(m.conns)
}

var eventsRequest = []byte("GET /events HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockmoat-bench\r\n\r\n")

// measureMemory holds memConns idle keep-alive connections, each after one
// /_ping, and reads the VmRSS of each target's process. Then it does the
// same with memConns open GET /events streams. Each of the two loads starts
// the proxies afresh, so memory that earlier loads freed but the process
// kept cannot hide the cost of the connections. dockerd is not restarted.
func (b *bench) measureMemory(ctx context.Context) error {
	b.results.idleMem = map[string]*memoryStat{}
	b.results.eventMem = map[string]*memoryStat{}
	kinds := []struct {
		name    string
		open    opener
		confirm confirmer
		stats   map[string]*memoryStat
	}{
		{"idle connections", openIdle, nil, b.results.idleMem},
		{"event streams", openEvents, b.confirmEvents, b.results.eventMem},
	}
	for _, kind := range kinds {
		proxies, err := b.startProxies(ctx, keyECDSA)
		if err != nil {
			return err
		}
		for _, t := range withoutHandshakeOnly(b.withDockerd(proxies)) {
			if err := ctx.Err(); err != nil {
				return err
			}
			m, err := b.holdConnections(ctx, t, kind.open, kind.confirm)
			if err != nil {
				b.fail(kind.name, t, err)
				continue
			}
			kind.stats[t.name] = m
			slog.Info("memory", "target", t.name, "load", kind.name,
				"kib_per_conn", fmt.Sprintf("%.1f", m.perConnKiB()), "open", m.alive)
		}
		b.stopProxies()
	}
	return nil
}

// openIdle opens a connection and completes one /_ping on it.
func openIdle(ctx context.Context, t *target) (net.Conn, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(pingKeepAlive); err != nil {
		conn.Close()
		return nil, err
	}
	status, err := readResponse(bufio.NewReader(conn))
	if err == nil && status != 200 {
		err = fmt.Errorf("/_ping returned status %d", status)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// openEvents opens a connection and sends GET /events on it. It does not
// wait for the response, because a proxy may hold the response header back
// until the first event; confirmEvents reads it.
func openEvents(ctx context.Context, t *target) (net.Conn, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(eventsRequest); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// confirmEvents makes the daemon emit an event and checks that every stream
// returns status 200. It returns a note when the first stream had no response
// header before that event, which means the target holds streaming
// response headers back.
func (b *bench) confirmEvents(ctx context.Context, conns []net.Conn) (string, error) {
	readers := make([]*bufio.Reader, len(conns))
	for i, c := range conns {
		readers[i] = bufio.NewReader(c)
	}
	note := ""
	if len(conns) > 0 {
		_ = conns[0].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := readers[0].Peek(1); errors.Is(err, os.ErrDeadlineExceeded) {
			note = "no response header on GET /events until the first event"
		}
	}
	if err := emitEvent(ctx, b.unixTarget().httpClient()); err != nil {
		return note, err
	}
	var errs []error
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, _, _, err := readHeader(readers[i])
		if err == nil && status != 200 {
			err = fmt.Errorf("/events returned status %d", status)
		}
		if err != nil && len(errs) < 3 {
			errs = append(errs, err)
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	return note, errors.Join(errs...)
}

// holdConnections opens memConns connections with open, reads the
// process's resident memory, checks how many connections the target kept
// open, and closes them all.
func (b *bench) holdConnections(ctx context.Context, t *target, open opener, confirm confirmer) (*memoryStat, error) {
	pids := t.proc().pids()
	time.Sleep(memorySettle)
	before, err := residentKiB(pids)
	if err != nil {
		return nil, err
	}
	conns, err := openMany(ctx, t, b.opts.memConns, open)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(memorySettle)
	}()
	if err != nil {
		return nil, err
	}
	note := ""
	if confirm != nil {
		if note, err = confirm(ctx, conns); err != nil {
			return nil, err
		}
	}
	time.Sleep(memorySettle)
	after, err := residentKiB(t.proc().pids())
	if err != nil {
		return nil, err
	}
	return &memoryStat{conns: len(conns), alive: countAlive(conns), before: before, after: after, note: note}, nil
}

func openMany(ctx context.Context, t *target, n int, open opener) ([]net.Conn, error) {
	const parallel = 16
	conns := make([]net.Conn, n)
	errs := make([]error, parallel)
	var wg sync.WaitGroup
	for w := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += parallel {
				c, err := open(ctx, t)
				if err != nil {
					errs[w] = err
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	var opened []net.Conn
	for _, c := range conns {
		if c != nil {
			opened = append(opened, c)
		}
	}
	return opened, errors.Join(errs...)
}

// countAlive returns how many connections the peer has not closed: a read
// that returns data or times out means open, EOF or a reset means closed.
func countAlive(conns []net.Conn) int {
	alive := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf)
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			alive++
		}
	}
	return alive
}
