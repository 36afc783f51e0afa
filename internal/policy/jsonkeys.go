package policy

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth bounds object and array nesting in inspected bodies. Docker
// request bodies nest fewer than ten levels.
const maxJSONDepth = 64

// checkJSONKeys walks one JSON value and rejects any object with two keys
// that encoding/json would map to the same struct field. encoding/json
// matches keys to fields case-insensitively (with Unicode simple folding,
// so "K" U+212A matches "k") and the last duplicate wins, so a filter that
// reads the first "Privileged" while the daemon applies a later
// "privileged" could be bypassed. Keys of maps such as Labels are checked
// the same way. Text after the value other than white space is rejected.
func checkJSONKeys(data []byte) error {
	s := keyScanner{data: data}
	s.skipSpace()
	if err := s.value(0); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return fmt.Errorf("unexpected data after the JSON value at offset %d", s.pos)
	}
	return nil
}

type keyScanner struct {
	data []byte
	pos  int
	// keys is a stack of the folded keys of the objects being scanned.
	keys []string
}

func (s *keyScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *keyScanner) value(depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("JSON nests deeper than %d levels", maxJSONDepth)
	}
	if s.pos >= len(s.data) {
		return fmt.Errorf("unexpected end of JSON")
	}
	switch s.data[s.pos] {
	case '{':
		return s.object(depth)
	case '[':
		return s.array(depth)
	case '"':
		_, _, err := s.str()
		return err
	}
	// Numbers and literals: json.Unmarshal validates them afterwards, so it
	// is enough here to find where they end.
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		s.pos++
	}
	if s.pos == start {
		return fmt.Errorf("invalid character %q at offset %d", s.data[s.pos], s.pos)
	}
	return nil
}

func (s *keyScanner) object(depth int) error {
	s.pos++ // '{'
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base] }()
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return fmt.Errorf("expected an object key at offset %d", s.pos)
		}
		keyStart := s.pos
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		key, err := decodeKey(s.data[keyStart:s.pos], raw, escaped)
		if err != nil {
			return err
		}
		folded := foldKey(key)
		for _, k := range s.keys[base:] {
			if k == folded {
				return fmt.Errorf("duplicate key %q at offset %d: keys are compared case-insensitively, as the daemon decodes them", key, keyStart)
			}
		}
		s.keys = append(s.keys, folded)

		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return fmt.Errorf("expected ':' at offset %d", s.pos)
		}
		s.pos++
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return fmt.Errorf("unexpected end of JSON")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return fmt.Errorf("expected ',' or '}' at offset %d", s.pos)
		}
	}
}

func (s *keyScanner) array(depth int) error {
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return fmt.Errorf("unexpected end of JSON")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return fmt.Errorf("expected ',' or ']' at offset %d", s.pos)
		}
	}
}

// str scans a string starting at its opening quote and returns its raw
// contents and whether they contain escapes or non-ASCII bytes.
func (s *keyScanner) str() ([]byte, bool, error) {
	start := s.pos + 1
	special := false
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			return s.data[start:i], special, nil
		case c == '\\':
			special = true
			i++
		case c >= utf8.RuneSelf:
			special = true
		}
	}
	return nil, false, fmt.Errorf("unterminated string at offset %d", s.pos)
}

// decodeKey returns the key as encoding/json decodes it: escapes resolved
// and invalid UTF-8 replaced by U+FFFD.
func decodeKey(quoted, raw []byte, special bool) (string, error) {
	if !special {
		return string(raw), nil
	}
	var key string
	if err := json.Unmarshal(quoted, &key); err != nil {
		return "", fmt.Errorf("invalid object key %s: %v", quoted, err)
	}
	return key, nil
}

// foldKey maps key to a form that is equal for every two keys that
// encoding/json treats as the same field name: ASCII letters in upper case
// and every other rune replaced by the smallest rune of its Unicode simple
// case folding orbit.
func foldKey(key string) string {
	ascii := true
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		b := []byte(key)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - ('a' - 'A')
			}
		}
		return string(b)
	}
	out := make([]rune, 0, len(key))
	for _, r := range key {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, r)
			continue
		}
		out = append(out, smallestFold(r))
	}
	return string(out)
}

// smallestFold returns the smallest rune in r's simple folding orbit. For
// U+212A (Kelvin sign) that is 'K', so the ASCII branch and this one agree.
func smallestFold(r rune) rune {
	smallest := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < smallest {
			smallest = f
		}
	}
	if 'a' <= smallest && smallest <= 'z' {
		smallest -= 'a' - 'A'
	}
	return smallest
}
