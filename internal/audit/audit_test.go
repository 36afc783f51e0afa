package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJSONLinesFieldNames(t *testing.T) {
	var buf bytes.Buffer
	sink := NewJSONLines(&buf)
	sink.Write(&Record{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Event: EventRequest, RequestID: "r1",
		Client: "alice", Serial: "1a", Groups: []string{"admin"}, RemoteAddr: "127.0.0.1:5",
		Method: "GET", Path: "/v1.41/containers/json", APIVersion: "1.41", Operation: "container.list",
		Decision: "allow", Rule: "admins", Status: 200, BytesIn: 1, BytesOut: 2, DurationSeconds: 0.5,
	})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("line %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"time": "2026-01-02T03:04:05Z", "event": "request", "request_id": "r1", "client": "alice",
		"serial": "1a", "remote_addr": "127.0.0.1:5", "method": "GET", "path": "/v1.41/containers/json",
		"api_version": "1.41", "operation": "container.list", "decision": "allow", "rule": "admins",
		"status": 200.0, "bytes_in": 1.0, "bytes_out": 2.0, "duration_seconds": 0.5,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["error"]; ok {
		t.Error("field error present on a record without an error, want it left out")
	}
	if !strings.HasSuffix(buf.String(), "}\n") || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("output = %q, want exactly one line", buf.String())
	}
}

func TestJSONLinesConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	sink := NewJSONLines(&buf)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sink.Write(&Record{Event: EventRequest, Path: strings.Repeat("x", 500)})
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("lines = %d, want 50", len(lines))
	}
	for i, line := range lines {
		var rec Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not one JSON record: %v", i, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJSONLinesReportsFirstFailure(t *testing.T) {
	sink := NewJSONLines(failingWriter{})
	var reported []error
	sink.OnError = func(err error) { reported = append(reported, err) }
	for i := 0; i < 3; i++ {
		sink.Write(&Record{})
	}
	if len(reported) != 1 {
		t.Errorf("OnError calls = %d, want 1", len(reported))
	}
	if sink.Failures() != 3 {
		t.Errorf("Failures = %d, want 3", sink.Failures())
	}
}

func TestOpenFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for i := 0; i < 2; i++ {
		sink, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sink.Write(&Record{Event: EventRequest})
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Errorf("lines after two opens = %d, want 2", n)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o640 {
		t.Errorf("mode = %o, want 640", perm)
	}
}

// lockedBuffer is a bytes.Buffer that the flush timer's goroutine and the
// test may use at the same time.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() (lines, writes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), "\n"), b.writes
}

func TestBufferedJSONLinesBatches(t *testing.T) {
	var out lockedBuffer
	sink := NewBufferedJSONLines(&out, time.Hour)
	for i := 0; i < 10; i++ {
		sink.Write(&Record{Event: EventRequest})
	}
	if lines, _ := out.lines(); lines != 0 {
		t.Errorf("lines before the flush interval = %d, want 0", lines)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	lines, writes := out.lines()
	if lines != 10 {
		t.Errorf("lines after Close = %d, want 10", lines)
	}
	if writes != 1 {
		t.Errorf("Write calls for 10 records = %d, want 1", writes)
	}
}

func TestBufferedJSONLinesFlushInterval(t *testing.T) {
	var out lockedBuffer
	sink := NewBufferedJSONLines(&out, 10*time.Millisecond)
	defer sink.Close()
	for round := 1; round <= 2; round++ {
		sink.Write(&Record{Event: EventRequest})
		deadline := time.Now().Add(5 * time.Second)
		for {
			lines, _ := out.lines()
			if lines == round {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: lines after 5 s = %d, want %d", round, lines, round)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestBufferedJSONLinesWritesFullBuffer(t *testing.T) {
	var out lockedBuffer
	sink := NewBufferedJSONLines(&out, time.Hour)
	defer sink.Close()
	path := strings.Repeat("x", 1000)
	for i := 0; i < 40; i++ {
		sink.Write(&Record{Event: EventRequest, Path: path})
	}
	if lines, _ := out.lines(); lines == 0 {
		t.Error("lines after 40 KiB of records = 0, want the first 32 KiB written")
	}
}

func TestBufferedJSONLinesCountsFailedBatch(t *testing.T) {
	sink := NewBufferedJSONLines(failingWriter{}, time.Hour)
	var reported []error
	sink.OnError = func(err error) { reported = append(reported, err) }
	for i := 0; i < 3; i++ {
		sink.Write(&Record{})
	}
	sink.Flush()
	sink.Write(&Record{})
	sink.Flush()
	if len(reported) != 1 {
		t.Errorf("OnError calls = %d, want 1", len(reported))
	}
	if sink.Failures() != 4 {
		t.Errorf("Failures = %d, want 4", sink.Failures())
	}
}

func TestOpenFileCloseWritesPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	sink, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		sink.Write(&Record{Event: EventRequest})
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 100 {
		t.Errorf("lines after Close = %d, want 100", n)
	}
}
