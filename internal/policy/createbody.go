package policy

import (
	"bytes"
	"encoding/json"
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

var (
	// topLevelNames are the folded names of the createBody fields that
	// inspectCreate reads: its own fields and the top-level HostConfig form.
	topLevelNames = newNameSet(append([]string{"Image", "HostConfig", "NetworkingConfig", "Capabilities"},
		inspectedHostConfigFields...))
	// hostConfigNames are the folded names of the hostConfig fields that
	// inspectCreate reads.
	hostConfigNames = newNameSet(append([]string{"Capabilities"}, inspectedHostConfigFields...))
	hostConfigHash  = nameHash("HostConfig")
)

// decodeCreateBody checks a container create body as decodeBody does and
// decodes the fields of createBody that inspectCreate reads. Those fields get
// the values that json.Unmarshal of the whole body would give them, and the
// other fields stay zero. An empty body decodes to the zero value.
//
// A single pass over the body checks its syntax and keys and builds a
// smaller JSON object for json.Unmarshal. That object keeps every member of
// the body and of its HostConfig object whose key folds to the name of an
// inspected field, because only such a key can set that field. It leaves
// out a kept member whose value is null, false or "", because decoding
// that value leaves a field of the inspected types zero or fails (see
// TestCreateBodyDropsOnlyZeroLiterals). Skipping the other members here
// is cheaper than in encoding/json, which steps its scanner over every byte
// of a value it skips.
//
// NOTE: a body with a left-out member that does not fit its field type,
// such as {"Hostname":1} or {"Privileged":""}, decodes here although
// json.Unmarshal of the whole body fails, so the gateway forwards it.
// dockerd then rejects the body when it decodes it.
func decodeCreateBody(data []byte) (*createBody, error) {
	body := &createBody{}
	if len(bytes.TrimSpace(data)) == 0 {
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
	document := data
	if bytes.TrimSpace(data)[0] == '{' {
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

// member scans the value of a member whose key hash is in the object's
// name set and records the member. The key is the last entry of s.keys,
// and s.pos is at the value.
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
	if len(raw) == len(folded) {
		same := true
		for i, c := range raw {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			same = same && c == folded[i]
		}
		if same {
			return true
		}
	}
	// Keys with escapes or non-ASCII runes, such as "\u0048ostConfig".
	return s.foldedAt(key.start, key.end) == folded
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
	topLevel, inner, innerOpen := 0, 0, false
	for _, m := range f.members {
		if m.inHostConfig {
			if inner > 0 {
				out = append(out, ',')
			}
			out = append(out, data[m.start:m.end]...)
			inner++
			continue
		}
		if innerOpen {
			out = append(out, '}')
			innerOpen = false
		}
		if topLevel > 0 {
			out = append(out, ',')
		}
		out = append(out, data[m.start:m.end]...)
		topLevel++
		if m.opensHostConfig {
			innerOpen, inner = true, 0
		}
	}
	if innerOpen {
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
