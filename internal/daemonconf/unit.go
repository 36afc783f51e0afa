package daemonconf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Installed unit locations, in the order systemd prefers them.
var (
	// ServiceUnitPaths are where distributions install docker.service.
	ServiceUnitPaths = []string{
		"/etc/systemd/system/docker.service",
		"/usr/lib/systemd/system/docker.service",
		"/lib/systemd/system/docker.service",
	}
	// SocketUnitPaths are where distributions install docker.socket.
	SocketUnitPaths = []string{
		"/etc/systemd/system/docker.socket",
		"/usr/lib/systemd/system/docker.socket",
		"/lib/systemd/system/docker.socket",
	}
)

// DropInName is the file name of the drop-ins daemon-config writes, inside
// docker.service.d/ and docker.socket.d/.
const DropInName = "dockmoat-tls.conf"

// Unit is the subset of a systemd unit and its drop-ins that daemon-config
// reads.
type Unit struct {
	// Files are the unit files read, in order.
	Files []string
	// ExecStart is the effective command line split into words, after
	// every "ExecStart=" reset. It keeps systemd's prefix characters such
	// as "-" on the first word.
	ExecStart []string
	// Requires and After list the units named in those [Unit] settings.
	Requires, After []string
	// EnvironmentFiles lists the EnvironmentFile= paths, which may expand
	// into the command line through variables such as $DOCKER_OPTS.
	EnvironmentFiles []string
	// ListenStream lists the socket unit's listeners, after resets.
	ListenStream []string
}

// FindInstalled returns the first of paths that exists, plus the drop-ins
// in /etc/systemd/system/NAME.d and /run/systemd/system/NAME.d sorted by
// file name as systemd applies them, leaving out dockmoat's own drop-in. It
// returns nil when no unit is installed.
func FindInstalled(paths []string) []string {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		files := []string{p}
		name := filepath.Base(p)
		var dropIns []string
		for _, dir := range []string{"/etc/systemd/system", "/run/systemd/system"} {
			matches, _ := filepath.Glob(filepath.Join(dir, name+".d", "*.conf"))
			for _, m := range matches {
				if filepath.Base(m) != DropInName {
					dropIns = append(dropIns, m)
				}
			}
		}
		sort.Slice(dropIns, func(i, j int) bool {
			return filepath.Base(dropIns[i]) < filepath.Base(dropIns[j])
		})
		return append(files, dropIns...)
	}
	return nil
}

// LoadUnit reads a unit file and its drop-ins in order.
func LoadUnit(files []string) (*Unit, error) {
	u := &Unit{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read unit: %w", err)
		}
		if err := u.Parse(f, data); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Parse applies one unit file or drop-in to u, as systemd would after the
// files already applied. It understands sections, comments, line
// continuations and the empty assignments that reset a list.
func (u *Unit) Parse(name string, data []byte) error {
	u.Files = append(u.Files, name)
	section := ""
	for n, line := range logicalLines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s: line %d: invalid section header %q", name, n+1, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s: line %d: %q is not KEY=VALUE", name, n+1, line)
		}
		if err := u.set(section, strings.TrimSpace(key), strings.TrimSpace(value)); err != nil {
			return fmt.Errorf("%s: line %d: %w", name, n+1, err)
		}
	}
	return nil
}

func (u *Unit) set(section, key, value string) error {
	switch section + "." + key {
	case "Service.ExecStart":
		if value == "" {
			u.ExecStart = nil
			return nil
		}
		words, err := SplitCommand(value)
		if err != nil {
			return err
		}
		u.ExecStart = words
	case "Service.EnvironmentFile":
		if value == "" {
			u.EnvironmentFiles = nil
		} else {
			// With a leading "-", systemd ignores a missing file.
			u.EnvironmentFiles = append(u.EnvironmentFiles, strings.TrimPrefix(value, "-"))
		}
	case "Unit.Requires":
		u.Requires = appendList(u.Requires, value)
	case "Unit.After":
		u.After = appendList(u.After, value)
	case "Socket.ListenStream":
		if value == "" {
			u.ListenStream = nil
		} else {
			u.ListenStream = append(u.ListenStream, value)
		}
	}
	return nil
}

func appendList(list []string, value string) []string {
	if value == "" {
		return nil
	}
	return append(list, strings.Fields(value)...)
}

// logicalLines joins lines that end in a backslash with the next line, as
// systemd does.
func logicalLines(text string) []string {
	var lines []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// SplitCommand splits an ExecStart= value into words with systemd's quoting
// rules: words are separated by white space, and single or double quotes
// group a word. A backslash escapes the next character.
func SplitCommand(value string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range value {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in ExecStart=%s", value)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// quoteWord quotes w for an ExecStart= line when it needs quoting.
func quoteWord(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\"'\\") {
		return w
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(w) + `"`
}

// usesSocketActivation reports whether the unit depends on docker.socket.
func (u *Unit) usesSocketActivation() bool {
	return slices.Contains(u.Requires, "docker.socket")
}
