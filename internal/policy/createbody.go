package policy

import (
	"bytes"
	"encoding/json"
	"slices"
)

// inspectedHostConfigFields are the JSON names of the container.HostConfig
// fields that checkHostConfig reads. A check of another field must add its
// name here, or decodeCreateBody leaves that field at its zero value.
var inspectedHostConfigFields = []string{
	"Privileged", "CapAdd", "Devices", "DeviceCgroupRules", "DeviceRequests",
	"PidMode", "IpcMode", "NetworkMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup",
	"SecurityOpt", "MaskedPaths", "ReadonlyPaths", "LogConfig", "Sysctls",
	"Binds", "Mounts", "Tmpfs", "Links", "VolumesFrom",
}

// inspectedTopLevelFields are the JSON names of the other top-level fields
// of a create body that checkCreate reads.
var inspectedTopLevelFields = []string{"Image", "HostConfig", "NetworkingConfig", "Capabilities"}

var (
	// topLevelNames is the set of the inspected top-level field names.
	topLevelNames = newNameSet(slices.Concat(inspectedTopLevelFields, inspectedHostConfigFields))
	// hostConfigNames is the set of the inspected hostConfig field names.
	hostConfigNames = newNameSet(slices.Concat([]string{"Capabilities"}, inspectedHostConfigFields))
	hostConfigHash  = nameHash("HostConfig")
)

// decodeCreateBody checks a container create body as decodeBody does and
// decodes the fields of createBody that checkCreate reads. Those fields get
// the values that json.Unmarshal of the whole body would give them, and the
// other fields stay zero. An empty body decodes to the zero value.
//
// One pass over the body checks its syntax and keys and keeps the members
// of the body and of its HostConfig object whose keys fold to inspected
// field names, because only such keys can set those fields. It leaves out a
// kept member whose value is null, false or "", because such a value leaves
// a field of the inspected types zero or fails to decode (see
// TestCreateBodyDropsOnlyZeroLiterals). json.Unmarshal then decodes an
// object of the kept members only. That is cheaper than decoding the whole
// body, because json.Unmarshal runs its byte-by-byte syntax scanner over all
// of its input before decoding, and again over each object or array value
// that it skips (Go 1.26 encoding/json, decode.go).
//
// NOTE: a body with a left-out member that does not fit its field type,
// such as {"Hostname":1} or {"Privileged":""}, decodes here although
// json.Unmarshal of the whole body fails, so the gateway forwards it.
// dockerd then rejects the body when it decodes it.
func decodeCreateBody(data []byte) (*createBody, error) {
	body := &createBody{}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return body, nil
	}
	buffers := scanBufferPool.Get().(*scanBuffers)
	defer scanBufferPool.Put(buffers)
	filter := createFilter{hostConfigStart: -1, members: buffers.members[:0]}
	s := keyScanner{data: data, keys: buffers.keys[:0], filter: &filter}
	err := s.scan()
	buffers.keep(s.keys, filter.members)
	if err != nil {
		return nil, err
	}
	// A top-level null decodes to the zero value, and any other value that is
	// not an object fails as it fails in the whole body.
	document := data
	if trimmed[0] == '{' {
		document = filter.document(data)
	}
	if err := json.Unmarshal(document, body); err != nil {
		return nil, err
	}
	return body, nil
}

// createFilter records, during a keyScanner pass over a container create
// body, the members that decodeCreateBody keeps.
type createFilter struct {
	members []filteredMember
	// hostConfigStart is the offset of the '{' that opens the value of the
	// top-level HostConfig member, or -1.
	hostConfigStart int
}

// filteredMember is a kept member of the top-level object or of its
// HostConfig object.
type filteredMember struct {
	// start and end locate the member in the body, from its key to the end
	// of its value. For the HostConfig member whose value is an object, end
	// is just after the '{' that opens the value, and the kept members of
	// that object follow this one in createFilter.members.
	start, end int
	// inHostConfig is set for members of the HostConfig object.
	inHostConfig bool
	// opensHostConfig is set for the HostConfig member itself.
	opensHostConfig bool
}

// namesFor returns the names of the members to record for the object at
// depth that starts at offset start. It returns nil for the objects that
// the filter does not rebuild, which a kept member copies whole.
func (f *createFilter) namesFor(depth, start int) *nameSet {
	switch {
	case depth == 0:
		return &topLevelNames
	case depth == 1 && start == f.hostConfigStart:
		return &hostConfigNames
	}
	return nil
}

// member scans the value of the member whose key is the last entry of
// s.keys and whose key hash is in the object's name set. s.pos is at the
// value. It records the member unless its value is a zero literal. For the
// top-level HostConfig object it records the key and the '{' instead, and
// then the object's own kept members.
func (f *createFilter) member(s *keyScanner, depth int) error {
	valueStart := s.pos
	key := s.keys[len(s.keys)-1]
	opensObject := valueStart < len(s.data) && s.data[valueStart] == '{'
	if depth == 0 && key.hash == hostConfigHash && opensObject && s.keyFoldsTo(key, "HOSTCONFIG") {
		f.hostConfigStart = valueStart
		f.members = append(f.members, filteredMember{start: key.start, end: valueStart + 1, opensHostConfig: true})
		return s.value(depth + 1)
	}
	if err := s.value(depth + 1); err != nil {
		return err
	}
	if isZeroLiteral(s.data[valueStart:s.pos]) {
		return nil
	}
	f.members = append(f.members, filteredMember{start: key.start, end: s.pos, inHostConfig: depth == 1})
	return nil
}

// keyFoldsTo reports whether key folds to folded, an upper-case ASCII name.
func (s *keyScanner) keyFoldsTo(key keyHash, folded string) bool {
	raw := s.data[key.start+1 : key.end-1]
	if equalFoldASCII(raw, folded) {
		return true
	}
	// Keys with escapes or non-ASCII runes, such as "\u0048ostConfig".
	return s.foldedAt(key.start, key.end) == folded
}

// equalFoldASCII reports whether raw with its ASCII letters in upper case
// equals folded.
func equalFoldASCII(raw []byte, folded string) bool {
	if len(raw) != len(folded) {
		return false
	}
	for i, c := range raw {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// document returns the JSON object of the kept members of data, whose
// top-level value is an object.
func (f *createFilter) document(data []byte) []byte {
	size := 2
	for _, m := range f.members {
		size += m.end - m.start + 2
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	inHostConfig := false
	for _, m := range f.members {
		if inHostConfig && !m.inHostConfig {
			out = append(out, '}')
			inHostConfig = false
		}
		// Only an object's first member follows its '{', because no member
		// but the HostConfig member ends with '{'.
		if out[len(out)-1] != '{' {
			out = append(out, ',')
		}
		out = append(out, data[m.start:m.end]...)
		if m.opensHostConfig {
			inHostConfig = true
		}
	}
	if inHostConfig {
		out = append(out, '}')
	}
	return append(out, '}')
}

// isZeroLiteral reports whether value is null, false or "".
func isZeroLiteral(value []byte) bool {
	switch string(value) {
	case "null", "false", `""`:
		return true
	}
	return false
}

// nameSet is a set of folded field name hashes, as keyScanner.key computes
// them, in an open addressing table. A hash of another key can match by
// chance, which only keeps a member that decodeCreateBody could leave out.
type nameSet struct {
	slots [128]uint64
}

func newNameSet(names []string) nameSet {
	var set nameSet
	if len(names) > len(set.slots)/2 {
		panic("policy: too many field names for a nameSet")
	}
	for _, name := range names {
		hash := nameHash(name)
		if hash == 0 {
			panic("policy: field name " + name + " hashes to the empty slot")
		}
		i := hash % uint64(len(set.slots))
		for set.slots[i] != 0 && set.slots[i] != hash {
			i = (i + 1) % uint64(len(set.slots))
		}
		set.slots[i] = hash
	}
	return set
}

func (set *nameSet) contains(hash uint64) bool {
	for i := hash % uint64(len(set.slots)); set.slots[i] != 0; i = (i + 1) % uint64(len(set.slots)) {
		if set.slots[i] == hash {
			return true
		}
	}
	return false
}

// nameHash returns the hash that keyScanner.key computes for an ASCII key.
func nameHash(name string) uint64 {
	quoted, err := json.Marshal(name)
	if err != nil {
		panic(err)
	}
	s := keyScanner{data: quoted}
	hash, err := s.key()
	if err != nil {
		panic(err)
	}
	return hash
}
