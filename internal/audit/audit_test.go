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
