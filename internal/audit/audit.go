// Package audit defines the gateway's audit record and the sinks that store
// it. A record describes one API request or one hijacked attach or exec
// session. Records never carry credentials or bodies: the gateway fills only
// the fields below, and none of them holds a header value or body bytes.
package audit

import (
	"bytes"
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

// DefaultFlushInterval is the longest time OpenFile's sink keeps a record in
// memory before writing it to the file.
const DefaultFlushInterval = 50 * time.Millisecond

// maxBuffered is the buffer size at which a buffered sink writes at once
// instead of waiting for its flush timer.
const maxBuffered = 32 << 10

// JSONLines writes each record as one JSON object followed by a newline.
// Records are written whole, so lines from concurrent requests never
// interleave. A sink from NewJSONLines writes each record in its own Write
// call before Write returns. A buffered sink (NewBufferedJSONLines,
// OpenFile) collects records and writes them in one call when the oldest
// has waited for the flush interval, when 32 KiB are pending, or on Flush
// or Close. Close therefore loses no record; a crash or SIGKILL loses the
// records of at most the last flush interval.
type JSONLines struct {
	mu     sync.Mutex
	w      io.Writer
	buf    bytes.Buffer
	closer io.Closer
	// interval is the flush interval of a buffered sink, 0 for one that
	// writes every record at once.
	interval time.Duration
	timer    *time.Timer
	// pending counts the records in buf, which are counted as failures
	// if writing them fails.
	pending int64
	closed  bool
	// errs counts records that could not be written. The first failure is
	// reported through OnError, later ones only counted, so a full disk
	// cannot flood the service log.
	errs    int64
	OnError func(err error)
}

// NewJSONLines returns a sink that writes each record to w before Write
// returns.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{w: w}
}

// NewBufferedJSONLines returns a sink that writes to w at most flushInterval
// after each record, in batches, which saves a write system call per
// record. Call Close or Flush before w is closed so no record is lost.
func NewBufferedJSONLines(w io.Writer, flushInterval time.Duration) *JSONLines {
	s := NewJSONLines(w)
	s.interval = flushInterval
	return s
}

// OpenFile opens path for appending, creating it with mode 0640 if needed,
// and returns a buffered sink that writes to it every DefaultFlushInterval.
// Close writes the remaining records and closes the file.
func OpenFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	s := NewBufferedJSONLines(f, DefaultFlushInterval)
	s.closer = f
	return s, nil
}

// Write encodes rec and writes it as one line, at once or, for a buffered
// sink, within the flush interval.
func (s *JSONLines) Write(rec *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()

	buffered := s.interval > 0 && !s.closed
	if !buffered {
		s.buf.Reset()
	}
	line, err := appendRecord(s.buf.AvailableBuffer(), rec)
	if err != nil {
		s.failed(err, 1)
		return
	}
	s.buf.Write(append(line, '\n'))
	s.pending++
	switch {
	case !buffered || s.buf.Len() >= maxBuffered:
		s.flushLocked()
	case s.timer == nil:
		s.timer = time.AfterFunc(s.interval, s.Flush)
	case s.pending == 1:
		s.timer.Reset(s.interval)
	}
}

// Flush writes the records that a buffered sink has not written yet.
func (s *JSONLines) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

func (s *JSONLines) flushLocked() {
	if s.buf.Len() == 0 {
		return
	}
	_, err := s.w.Write(s.buf.Bytes())
	if err != nil {
		s.failed(err, s.pending)
	}
	s.buf.Reset()
	s.pending = 0
}

func (s *JSONLines) failed(err error, records int64) {
	s.errs += records
	if s.errs == records && s.OnError != nil {
		s.OnError(err)
	}
}

// Failures returns how many records could not be written.
func (s *JSONLines) Failures() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}

// Close writes the pending records and closes the underlying
// file when the sink opened it. Records written after Close are written at
// once, and fail when the file is closed.
func (s *JSONLines) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.flushLocked()
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}
