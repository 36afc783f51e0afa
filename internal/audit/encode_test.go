package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// encodeWithJSON returns rec as the encoder of NewJSONLines used to write
// it, without the trailing newline.
func encodeWithJSON(rec *Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func TestAppendRecord(t *testing.T) {
	full := Record{
		Time: time.Date(2026, 12, 4, 16, 21, 5, 123456789, time.UTC), Event: EventRequest, RequestID: "1a2b3c4d-17",
		Client: "alice", Serial: "5f3a", Groups: []string{"admin", "ci"}, RemoteAddr: "127.0.0.1:50123",
		Method: "GET", Path: "/v1.41/containers/json", APIVersion: "1.41", Operation: "container.list",
		Decision: "allow", Rule: "admins", Status: 200, BytesIn: 12, BytesOut: 3456, DurationSeconds: 0.000123,
		Error: "dial unix /var/run/docker.sock: connect: no such file or directory",
	}
	withPath := func(path string) Record { r := full; r.Path = path; return r }
	withDuration := func(d float64) Record { r := full; r.DurationSeconds = d; return r }
	tests := []struct {
		name string
		rec  Record
	}{
		{"zero", Record{}},
		{"full", full},
		{"empty groups", Record{Groups: []string{}}},
		{"quote and backslash", withPath(`/a"b\c`)},
		{"control characters", withPath("/a\nb\tc\x00d\x1f\b\f\r")},
		{"html characters", withPath("/<a>&b")},
		{"html characters with a quote", withPath("/<a>&\"b")},
		{"non-ASCII", withPath("/bücher/ß/日本")},
		{"invalid UTF-8", withPath("/a\xffb\xc3")},
		{"line separators", withPath("/a\u2028b\u2029c")},
		{"delete character", withPath("/a\x7fb")},
		{"local time", Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))}},
		{"whole seconds", Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"tiny duration", withDuration(1e-9)},
		{"small duration", withDuration(1e-6)},
		{"large duration", withDuration(1e21)},
		{"negative duration", withDuration(-2.5)},
		{"integral duration", withDuration(300)},
		{"negative status", Record{Status: -1, BytesIn: math.MaxInt64, BytesOut: math.MinInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := encodeWithJSON(&tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendRecord(nil, &tt.rec)
			if err != nil {
				t.Fatalf("appendRecord error = %v, want nil", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("appendRecord =\n%s\nwant (encoding/json)\n%s", got, want)
			}
		})
	}
}

func TestAppendRecordRejectsNaN(t *testing.T) {
	if _, err := appendRecord(nil, &Record{DurationSeconds: math.NaN()}); err == nil {
		t.Error("appendRecord of a NaN duration succeeded, want an error as encoding/json returns")
	}
}

func FuzzAppendRecord(f *testing.F) {
	f.Add("/v1.41/_ping", "alice", "1.41", 0.5, int64(2026))
	f.Add("/a\"b\\\n\xff\u2028", "", "", 1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, path, client, version string, duration float64, year int64) {
		rec := Record{
			Time: time.Date(int(year%12000), 1, 2, 3, 4, 5, 6, time.UTC),
			Path: path, Client: client, APIVersion: version, Groups: []string{client, path},
			DurationSeconds: duration, Error: version,
		}
		want, wantErr := encodeWithJSON(&rec)
		got, gotErr := appendRecord(nil, &rec)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("appendRecord error = %v, want %v", gotErr, wantErr)
		}
		if wantErr == nil && !bytes.Equal(got, want) {
			t.Errorf("appendRecord =\n%s\nwant (encoding/json)\n%s", got, want)
		}
	})
}

func BenchmarkEncodeRecord(b *testing.B) {
	rec := &Record{
		Time: time.Now().UTC(), Event: EventRequest, RequestID: "1a2b3c4d-17", Client: "alice", Serial: "5f3a",
		Groups: []string{"admin"}, RemoteAddr: "127.0.0.1:50123", Method: "GET", Path: "/v1.41/_ping",
		APIVersion: "1.41", Operation: "system.ping", Decision: "allow", Rule: "admins", Status: 200,
		BytesOut: 2, DurationSeconds: 0.000123,
	}
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendRecord(buf[:0], rec)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for b.Loop() {
			buf.Reset()
			enc.Encode(rec)
		}
	})
}
