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
	s := keyScanner{data: data, keys: make([]keyHash, 0, 128)}
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
	// keys is a stack of the hashes of the folded keys of the objects being
	// scanned. Equal hashes are compared again as folded strings.
	keys []keyHash
}

type keyHash struct {
	hash uint64
	// start and end locate the quoted key in data.
	start, end int
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
	// seen is a 256-bit Bloom filter of this object's key hashes. A key whose
	// bit is clear cannot repeat an earlier key, which spares most keys the
	// comparison with every earlier key of a large object such as HostConfig.
	var seen [4]uint64
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
		hash, err := s.hashKey(keyStart, raw, escaped)
		if err != nil {
			return err
		}
		word, bit := (hash>>6)&3, uint64(1)<<(hash&63)
		if seen[word]&bit != 0 {
			for _, k := range s.keys[base:] {
				if k.hash == hash && s.sameKey(k, keyStart) {
					return fmt.Errorf("duplicate key %s at offset %d: keys are compared case-insensitively, as the daemon decodes them",
						s.data[keyStart:s.pos], keyStart)
				}
			}
		}
		seen[word] |= bit
		s.keys = append(s.keys, keyHash{hash: hash, start: keyStart, end: s.pos})

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

// hashKey returns the FNV-1a hash of the folded key. Plain ASCII keys,
// the usual case, are hashed without allocating.
func (s *keyScanner) hashKey(start int, raw []byte, special bool) (uint64, error) {
	const offset, prime = 14695981039346656037, 1099511628211
	hash := uint64(offset)
	if !special {
		for _, c := range raw {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			hash = (hash ^ uint64(c)) * prime
		}
		return hash, nil
	}
	key, err := decodeKey(s.data[start:s.pos], raw, special)
	if err != nil {
		return 0, err
	}
	folded := foldKey(key)
	for i := 0; i < len(folded); i++ {
		hash = (hash ^ uint64(folded[i])) * prime
	}
	return hash, nil
}

// sameKey reports whether the key at k and the key that starts at start
// and ends at s.pos fold to the same name.
func (s *keyScanner) sameKey(k keyHash, start int) bool {
	return s.foldedAt(k.start, k.end) == s.foldedAt(start, s.pos)
}

func (s *keyScanner) foldedAt(start, end int) string {
	var key string
	if err := json.Unmarshal(s.data[start:end], &key); err != nil {
		return string(s.data[start:end])
	}
	return foldKey(key)
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
// encoding/json treats as the same field name. ASCII letters become upper
// case, and every other rune becomes the smallest rune of its Unicode simple
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
