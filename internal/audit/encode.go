package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends rec to b as one JSON object, byte for byte as
// encoding/json (Go 1.26) encodes it with SetEscapeHTML(false), without a
// trailing newline. It avoids reflection, which took about 5 % of the
// gateway's CPU on keep-alive requests. Strings that need escaping, and
// times outside UTC or outside years 0 to 9999, are encoded by
// encoding/json itself. TestAppendRecord and FuzzAppendRecord compare the
// two.
func appendRecord(b []byte, rec *Record) ([]byte, error) {
	b = append(b, `{"time":`...)
	_, offset := rec.Time.Zone()
	if year := rec.Time.Year(); year < 0 || year > 9999 || offset != 0 {
		t, err := json.Marshal(rec.Time)
		if err != nil {
			return b, err
		}
		b = append(b, t...)
	} else {
		b = append(b, '"')
		b = rec.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}

	b = appendField(b, "event", rec.Event)
	b = appendField(b, "request_id", rec.RequestID)
	b = appendField(b, "client", rec.Client)
	b = appendField(b, "serial", rec.Serial)
	b = append(b, `,"groups":`...)
	if rec.Groups == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, g := range rec.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, g)
		}
		b = append(b, ']')
	}

	b = appendField(b, "remote_addr", rec.RemoteAddr)
	b = appendField(b, "method", rec.Method)
	b = appendField(b, "path", rec.Path)
	if rec.APIVersion != "" {
		b = appendField(b, "api_version", rec.APIVersion)
	}
	b = appendField(b, "operation", rec.Operation)
	b = appendField(b, "decision", rec.Decision)
	b = appendField(b, "rule", rec.Rule)

	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, rec.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, rec.BytesOut, 10)
	b = append(b, `,"duration_seconds":`...)
	b, err := appendFloat(b, rec.DurationSeconds)
	if err != nil {
		return b, err
	}

	if rec.Error != "" {
		b = appendField(b, "error", rec.Error)
	}
	return append(b, '}'), nil
}

// appendField appends ,"name":value. name must need no escaping.
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendString appends s as a JSON string. A string of printable ASCII
// without '"' and '\' is copied as it is. Any other string goes through
// encoding/json, which escapes control characters and U+2028 and U+2029
// and replaces invalid UTF-8.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendEncoded(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendEncoded appends s as encoding/json encodes it without HTML
// escaping, which json.Marshal would apply to '<', '>' and '&'.
func appendEncoded(b []byte, s string) []byte {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// appendFloat appends f as encoding/json encodes a float64: the shortest
// decimal form, in exponent form below 1e-6 and from 1e21 up.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
