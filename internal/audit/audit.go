// Package audit defines the gateway's audit record and the sinks that store
// it. A record describes one API request or one hijacked attach or exec
// session. Records never carry credentials or bodies: the gateway fills only
// the fields below, and none of them holds a header value or body bytes.
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event kinds stored in Record.Event.
const (
	// EventRequest is one completed HTTP request, allowed or denied.
	EventRequest = "request"
	// EventHijackStart is written when an attach or exec request has switched
	// to a raw two-way stream.
	EventHijackStart = "hijack_start"
	// EventHijackEnd is written when that stream has ended. Its byte counts
	// and duration cover the whole session.
	EventHijackEnd = "hijack_end"
)

// Record is one audit log entry. The JSON names are the audit log's stable
// field names.
type Record struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	RequestID  string    `json:"request_id"`
	Client     string    `json:"client"`
	Serial     string    `json:"serial"`
	Groups     []string  `json:"groups"`
	RemoteAddr string    `json:"remote_addr"`
	Method     string    `json:"method"`
	// Path is the request path as the client sent it, without the query,
	// which may hold registry or filter values that do not belong in a log.
	Path       string `json:"path"`
	APIVersion string `json:"api_version,omitempty"`
	Operation  string `json:"operation"`
	// Decision is "allow" or "deny".
	Decision string `json:"decision"`
	Rule     string `json:"rule"`
	// Status is the HTTP status sent to the client. It is 0 when the
	// gateway could not send a response, for example because the client
	// disconnected first.
	Status int `json:"status"`
	// BytesIn counts request body bytes read from the client, and for a
	// hijacked session every byte the client sent after the upgrade.
	BytesIn int64 `json:"bytes_in"`
	// BytesOut counts response body bytes sent to the client, and for a
	// hijacked session every byte sent after the upgrade.
	BytesOut int64 `json:"bytes_out"`
	// DurationSeconds runs from the end of the request header to the last
	// byte sent, or to the end of a hijacked session.
	DurationSeconds float64 `json:"duration_seconds"`
	// Error describes why a request failed in the gateway, for example an
	// unreachable Docker socket. It is empty on success and on denials.
	Error string `json:"error,omitempty"`
}

// Sink stores audit records. Write must be safe for concurrent use and must
// not keep rec after it returns.
type Sink interface {
	Write(rec *Record)
}

// Discard is a Sink that drops every record.
var Discard Sink = discard{}

type discard struct{}

func (discard) Write(*Record) {}

// JSONLines writes each record as one JSON object followed by a newline.
// Each record reaches the writer in a single Write call, so lines from
// concurrent requests never interleave.
type JSONLines struct {
	mu     sync.Mutex
	w      io.Writer
	buf    bytes.Buffer
	enc    *json.Encoder
	closer io.Closer
	// errs counts failed writes. The first failure is reported through
	// OnError, later ones only counted, so a full disk cannot flood the
	// service log.
	errs    int64
	OnError func(err error)
}

// NewJSONLines returns a sink that writes to w.
func NewJSONLines(w io.Writer) *JSONLines {
	s := &JSONLines{w: w}
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	return s
}

// OpenFile opens path for appending, creating it with mode 0640 if needed,
// and returns a sink that writes to it. Close closes the file.
func OpenFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	s := NewJSONLines(f)
	s.closer = f
	return s, nil
}

// Write encodes rec and writes it as one line.
func (s *JSONLines) Write(rec *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.buf.Reset()
	err := s.enc.Encode(rec)
	if err == nil {
		_, err = s.w.Write(s.buf.Bytes())
	}
	if err != nil {
		s.errs++
		if s.errs == 1 && s.OnError != nil {
			s.OnError(err)
		}
	}
}

// Failures returns how many records could not be written.
func (s *JSONLines) Failures() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}

// Close closes the underlying file when the sink opened it.
func (s *JSONLines) Close() error {
	if s.closer == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closer.Close()
}
