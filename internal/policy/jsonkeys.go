package policy

import (
	"encoding/json"
	"fmt"
	"sync"
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
// the same way. It also rejects every text that json.Unmarshal rejects as
// invalid JSON, including text after the value other than white space.
func checkJSONKeys(data []byte) error {
	buffers := scanBufferPool.Get().(*scanBuffers)
	defer scanBufferPool.Put(buffers)
	s := keyScanner{data: data, keys: buffers.keys[:0]}
	err := s.scan()
	buffers.keep(s.keys, buffers.members)
	return err
}

// scanBuffers are the slices that keyScanner and createFilter grow, reused
// across scans through scanBufferPool.
type scanBuffers struct {
	keys    []keyHash
	members []filteredMember
}

// maxPooledBuffer is the maximum capacity, in entries, of a slice that goes
// back to scanBufferPool, so that one large body does not keep its slices
// alive.
const maxPooledBuffer = 4096

var scanBufferPool = sync.Pool{New: func() any {
	return &scanBuffers{keys: make([]keyHash, 0, 128), members: make([]filteredMember, 0, 32)}
}}

// keep stores the slices that a scan grew, unless they are too large.
func (b *scanBuffers) keep(keys []keyHash, members []filteredMember) {
	if cap(keys) <= maxPooledBuffer {
		b.keys = keys
	}
	if cap(members) <= maxPooledBuffer {
		b.members = members
	}
}

type keyScanner struct {
	data []byte
	pos  int
	// keys is a stack of the hashes of the folded keys of the objects being
	// scanned. Equal hashes are compared again as folded strings.
	keys []keyHash
	// filter is the recorder of the create body members that inspectCreate
	// reads, or nil when the scan only checks the body.
	filter *createFilter
}

type keyHash struct {
	hash uint64
	// start and end locate the quoted key in data.
	start, end int
}

// scan checks that s.data is one JSON value, optionally surrounded by
// white space, that nests at most maxJSONDepth levels and has no duplicate
// keys.
func (s *keyScanner) scan() error {
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
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return fmt.Errorf("invalid character %q looking for the beginning of a value at offset %d", s.data[s.pos], s.pos)
}

func (s *keyScanner) object(depth int) error {
	objectStart := s.pos
	s.pos++ // '{'
	base := len(s.keys)
	// seen is a 256-bit Bloom filter of this object's key hashes. A key whose
	// bit is clear cannot repeat an earlier key, which spares most keys the
	// comparison with every earlier key of a large object such as HostConfig.
	var seen [4]uint64
	// names is the set of member names to record, or nil.
	var names *nameSet
	if s.filter != nil {
		names = s.filter.namesFor(depth, objectStart)
	}
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
		hash, err := s.key()
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
		if names != nil && names.contains(hash) {
			if err := s.filter.member(s, depth); err != nil {
				return err
			}
		} else if err := s.value(depth + 1); err != nil {
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
			s.keys = s.keys[:base]
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

// literal scans word, which is true, false or null.
func (s *keyScanner) literal(word string) error {
	end := s.pos + len(word)
	if end > len(s.data) || string(s.data[s.pos:end]) != word {
		return fmt.Errorf("invalid literal at offset %d: expected %s", s.pos, word)
	}
	s.pos = end
	return nil
}

// number scans a number as encoding/json accepts it: an optional minus, an
// integer part without leading zeros, then an optional fraction and an
// optional exponent.
func (s *keyScanner) number() error {
	start := s.pos
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return fmt.Errorf("invalid number at offset %d", start)
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return fmt.Errorf("invalid number at offset %d: no digit after the decimal point", start)
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return fmt.Errorf("invalid number at offset %d: no digit in the exponent", start)
		}
	}
	return nil
}

// digits skips decimal digits and returns how many it skipped.
func (s *keyScanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// Classes of the bytes inside a JSON string.
const (
	plainByte   = iota
	quoteByte   // '"' ends the string
	escapeByte  // '\\' starts an escape sequence
	controlByte // below 0x20, which JSON strings must escape
	nonASCIIByte
)

// stringBytes maps each byte to its class inside a JSON string.
var stringBytes = func() (classes [256]uint8) {
	for c := range 0x20 {
		classes[c] = controlByte
	}
	classes['"'] = quoteByte
	classes['\\'] = escapeByte
	for c := utf8.RuneSelf; c < 256; c++ {
		classes[c] = nonASCIIByte
	}
	return classes
}()

// str scans a string starting at its opening quote and reports whether it
// contains escapes or non-ASCII bytes. Like encoding/json, it accepts
// invalid UTF-8, which decoding replaces with U+FFFD.
func (s *keyScanner) str() (special bool, err error) {
	for i := s.pos + 1; i < len(s.data); i++ {
		switch stringBytes[s.data[i]] {
		case quoteByte:
			s.pos = i + 1
			return special, nil
		case escapeByte:
			special = true
			if i, err = s.escape(i); err != nil {
				return false, err
			}
		case controlByte:
			return false, fmt.Errorf("invalid control character %q in string at offset %d", s.data[i], i)
		case nonASCIIByte:
			special = true
		}
	}
	return false, fmt.Errorf("unterminated string at offset %d", s.pos)
}

// escape checks the escape sequence whose backslash is at data[i] and
// returns the offset of its last byte.
func (s *keyScanner) escape(i int) (int, error) {
	if i+1 >= len(s.data) {
		return i, fmt.Errorf("unterminated string at offset %d", s.pos)
	}
	switch s.data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1, nil
	case 'u':
		if i+5 >= len(s.data) {
			return i, fmt.Errorf("unterminated string at offset %d", s.pos)
		}
		for _, c := range s.data[i+2 : i+6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return i, fmt.Errorf("invalid escape sequence in string at offset %d", i)
			}
		}
		return i + 5, nil
	}
	return i, fmt.Errorf("invalid escape sequence in string at offset %d", i)
}

// Offset basis and prime of the 64-bit FNV-1a hash of folded keys.
const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// key scans an object key and returns the FNV-1a hash of its folded form.
// Plain ASCII keys, the usual case, are hashed in the same pass and without
// allocating.
func (s *keyScanner) key() (uint64, error) {
	start := s.pos
	hash := uint64(fnvOffset)
	for i := start + 1; i < len(s.data); i++ {
		c := s.data[i]
		switch stringBytes[c] {
		case plainByte:
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			hash = (hash ^ uint64(c)) * fnvPrime
			continue
		case quoteByte:
			s.pos = i + 1
			return hash, nil
		}
		// An escape or a non-ASCII byte: scan the whole key, then hash its
		// decoded and folded form.
		if _, err := s.str(); err != nil {
			return 0, err
		}
		return s.hashSpecialKey(start)
	}
	return 0, fmt.Errorf("unterminated string at offset %d", start)
}

// hashSpecialKey decodes and folds the quoted key from start to s.pos, which
// contains escapes or non-ASCII bytes, and returns its hash as key does.
func (s *keyScanner) hashSpecialKey(start int) (uint64, error) {
	key, err := decodeKey(s.data[start:s.pos])
	if err != nil {
		return 0, err
	}
	folded := foldKey(key)
	hash := uint64(fnvOffset)
	for i := 0; i < len(folded); i++ {
		hash = (hash ^ uint64(folded[i])) * fnvPrime
	}
	return hash, nil
}

// sameKey reports whether the key at k and the key that starts at start
// and ends at s.pos fold to the same name.
func (s *keyScanner) sameKey(k keyHash, start int) bool {
	return s.foldedAt(k.start, k.end) == s.foldedAt(start, s.pos)
}

// foldedAt returns the folded form of the quoted key from start to end, or
// the quoted bytes when they do not decode.
func (s *keyScanner) foldedAt(start, end int) string {
	key, err := decodeKey(s.data[start:end])
	if err != nil {
		return string(s.data[start:end])
	}
	return foldKey(key)
}

// decodeKey returns the quoted key as encoding/json decodes it: escapes
// resolved and invalid UTF-8 replaced by U+FFFD.
func decodeKey(quoted []byte) (string, error) {
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
