package policy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// hostNamespaces are the namespace names Lift.Namespaces accepts.
var hostNamespaces = []string{"cgroup", "ipc", "network", "pid", "userns", "uts"}

// ParseError is an invalid policy, located by file, line and field path.
type ParseError struct {
	File  string
	Line  int
	Field string
	Err   string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Err)
}

// Load reads and validates the policy file at name.
func Load(name string) (*Policy, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(name, data)
}

// Parse validates a policy document. source names it in errors.
func Parse(source string, data []byte) (*Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(source, err)
	}
	p := &parser{source: source}
	policy := &Policy{Source: source}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ParseError{File: source, Line: 1, Err: "policy is empty: add a rules list"}
	}
	root := doc.Content[0]
	if err := p.mapping(root, "", func(key string, value *yaml.Node) error {
		if key != "rules" {
			return p.fail(value, key, "unknown field: the top level has only rules")
		}
		return p.rules(value, policy)
	}); err != nil {
		return nil, err
	}
	if len(policy.Rules) == 0 {
		return nil, p.fail(root, "rules", "no rules: every request would be denied")
	}
	return policy, nil
}

// yamlError turns a YAML syntax error, which already names its line, into
// a ParseError.
func yamlError(source string, err error) error {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		return &ParseError{File: source, Line: 1, Err: strings.Join(typeErr.Errors, "; ")}
	}
	// yaml.v3 syntax errors read "yaml: line N: message".
	line := 1
	text := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(text, "line "); ok {
		number, message, found := strings.Cut(rest, ": ")
		if _, scanErr := fmt.Sscanf(number, "%d", &line); scanErr == nil && found {
			text = message
		}
	}
	return &ParseError{File: source, Line: line, Err: text}
}

type parser struct {
	source string
}

func (p *parser) fail(node *yaml.Node, field, format string, args ...any) error {
	return &ParseError{File: p.source, Line: node.Line, Field: field, Err: fmt.Sprintf(format, args...)}
}

// mapping calls each for every key of a mapping node, in file order, and
// rejects duplicate keys, which decoding into a yaml.Node does not.
func (p *parser) mapping(node *yaml.Node, field string, each func(key string, value *yaml.Node) error) error {
	if node.Kind != yaml.MappingNode {
		return p.fail(node, field, "expected a mapping")
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key := node.Content[i].Value
		if line, dup := seen[key]; dup {
			return p.fail(node.Content[i], join(field, key), "duplicate key, first set on line %d", line)
		}
		seen[key] = node.Content[i].Line
		if err := each(key, node.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (p *parser) rules(node *yaml.Node, policy *Policy) error {
	if node.Kind != yaml.SequenceNode {
		return p.fail(node, "rules", "expected a list of rules")
	}
	names := map[string]int{}
	for i, item := range node.Content {
		field := fmt.Sprintf("rules[%d]", i)
		rule, err := p.rule(item, field)
		if err != nil {
			return err
		}
		if line, dup := names[rule.Name]; dup {
			return p.fail(item, field+".name", "rule name %q is already used on line %d", rule.Name, line)
		}
		names[rule.Name] = item.Line
		policy.Rules = append(policy.Rules, rule)
	}
	return nil
}

func (p *parser) rule(node *yaml.Node, field string) (*Rule, error) {
	rule := &Rule{granted: map[string]bool{}}
	err := p.mapping(node, field, func(key string, value *yaml.Node) error {
		f := join(field, key)
		switch key {
		case "name":
			return p.scalar(value, f, &rule.Name)
		case "clients":
			return p.patterns(value, f, &rule.Clients)
		case "groups":
			return p.strings(value, f, &rule.Groups)
		case "presets":
			return p.presets(value, f, rule)
		case "operations":
			return p.operations(value, f, rule)
		case "ownership":
			return p.boolean(value, f, &rule.Ownership)
		case "images":
			return p.patterns(value, f, &rule.Images)
		case "lift":
			return p.lift(value, f, &rule.Lift)
		}
		return p.fail(value, f, "unknown field: use name, clients, groups, presets, operations, ownership, images or lift")
	})
	if err != nil {
		return nil, err
	}
	if rule.Name == "" {
		return nil, p.fail(node, field+".name", "missing: every rule needs a name for denials and audit records")
	}
	if len(rule.Clients) == 0 && len(rule.Groups) == 0 {
		return nil, p.fail(node, field, "rule %q selects no clients: set clients, groups or both (clients: [\"*\"] selects everyone)", rule.Name)
	}
	if len(rule.granted) == 0 {
		return nil, p.fail(node, field, "rule %q grants nothing: set presets or operations", rule.Name)
	}
	return rule, nil
}

func (p *parser) lift(node *yaml.Node, field string, lift *Lift) error {
	return p.mapping(node, field, func(key string, value *yaml.Node) error {
		f := join(field, key)
		switch key {
		case "privileged":
			return p.boolean(value, f, &lift.Privileged)
		case "capabilities":
			if err := p.strings(value, f, &lift.Capabilities); err != nil {
				return err
			}
			for i, c := range lift.Capabilities {
				lift.Capabilities[i] = normalizeCapability(c)
			}
			return nil
		case "devices":
			return p.boolean(value, f, &lift.Devices)
		case "namespaces":
			if err := p.strings(value, f, &lift.Namespaces); err != nil {
				return err
			}
			for i, ns := range lift.Namespaces {
				if !slices.Contains(hostNamespaces, ns) {
					return p.fail(value.Content[i], fmt.Sprintf("%s[%d]", f, i),
						"unknown namespace %q: use %s", ns, strings.Join(hostNamespaces, ", "))
				}
			}
			return nil
		case "security_options":
			return p.boolean(value, f, &lift.SecurityOptions)
		case "sysctls":
			return p.patterns(value, f, &lift.Sysctls)
		case "bind_paths":
			return p.bindPaths(value, f, &lift.BindPaths)
		case "volumes_from":
			return p.boolean(value, f, &lift.VolumesFrom)
		case "build_host_network":
			return p.boolean(value, f, &lift.BuildHostNetwork)
		case "build_remote":
			return p.boolean(value, f, &lift.BuildRemote)
		case "log_drivers":
			return p.driverNames(value, f, &lift.LogDrivers)
		case "network_drivers":
			return p.driverNames(value, f, &lift.NetworkDrivers)
		case "network_options":
			return p.networkOptions(value, f, &lift.NetworkOptions)
		}
		return p.fail(value, f, "unknown field: use privileged, capabilities, devices, namespaces, "+
			"security_options, sysctls, bind_paths, volumes_from, build_host_network, build_remote, "+
			"log_drivers, network_drivers or network_options")
	})
}

func (p *parser) scalar(node *yaml.Node, field string, out *string) error {
	if node.Kind != yaml.ScalarNode {
		return p.fail(node, field, "expected a string")
	}
	if node.Tag != "!!str" {
		return p.fail(node, field, "expected a string, got %s %q: quote the value", strings.TrimPrefix(node.Tag, "!!"), node.Value)
	}
	*out = node.Value
	return nil
}

func (p *parser) boolean(node *yaml.Node, field string, out *bool) error {
	if node.Kind != yaml.ScalarNode || node.Tag != "!!bool" {
		return p.fail(node, field, "expected true or false, got %q", node.Value)
	}
	return node.Decode(out)
}

func (p *parser) strings(node *yaml.Node, field string, out *[]string) error {
	if node.Kind != yaml.SequenceNode {
		return p.fail(node, field, "expected a list of strings")
	}
	for i, item := range node.Content {
		var s string
		if err := p.scalar(item, fmt.Sprintf("%s[%d]", field, i), &s); err != nil {
			return err
		}
		if s == "" {
			return p.fail(item, fmt.Sprintf("%s[%d]", field, i), "empty string")
		}
		*out = append(*out, s)
	}
	return nil
}

func (p *parser) patterns(node *yaml.Node, field string, out *[]string) error {
	if err := p.strings(node, field, out); err != nil {
		return err
	}
	for i, pattern := range *out {
		if _, err := path.Match(pattern, ""); err != nil {
			return p.fail(node.Content[i], fmt.Sprintf("%s[%d]", field, i), "invalid pattern %q: %v", pattern, err)
		}
	}
	return nil
}

func (p *parser) bindPaths(node *yaml.Node, field string, out *[]string) error {
	if err := p.strings(node, field, out); err != nil {
		return err
	}
	for i, prefix := range *out {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !strings.HasPrefix(prefix, "/") {
			return p.fail(node.Content[i], f, "host path %q is not absolute", prefix)
		}
		if prefix == "/" {
			return p.fail(node.Content[i], f, "host path \"/\" would allow every bind mount: grant the admin preset instead")
		}
		(*out)[i] = path.Clean(prefix)
	}
	return nil
}

// driverNames reads a list of log or network driver names. dockerd compares
// driver names exactly, so names with white space could never match.
func (p *parser) driverNames(node *yaml.Node, field string, out *[]string) error {
	if err := p.strings(node, field, out); err != nil {
		return err
	}
	for i, name := range *out {
		if strings.ContainsAny(name, " \t\r\n") {
			return p.fail(node.Content[i], fmt.Sprintf("%s[%d]", field, i),
				"driver name %q contains white space: write the name as docker info lists it", name)
		}
	}
	return nil
}

func (p *parser) networkOptions(node *yaml.Node, field string, out *[]string) error {
	if err := p.strings(node, field, out); err != nil {
		return err
	}
	for i, option := range *out {
		if !slices.Contains(deniedNetworkOptions, option) {
			return p.fail(node.Content[i], fmt.Sprintf("%s[%d]", field, i),
				"option %q is not denied by default: use %s", option, strings.Join(deniedNetworkOptions, ", "))
		}
	}
	return nil
}

func (p *parser) presets(node *yaml.Node, field string, rule *Rule) error {
	if err := p.strings(node, field, &rule.Presets); err != nil {
		return err
	}
	for i, name := range rule.Presets {
		ops := presetOperations(name)
		if ops == nil {
			return p.fail(node.Content[i], fmt.Sprintf("%s[%d]", field, i),
				"unknown preset %q: use %s", name, strings.Join(PresetNames, ", "))
		}
		if name == "admin" {
			rule.liftAll = true
		}
		for _, op := range ops {
			rule.granted[op] = true
		}
	}
	return nil
}

func (p *parser) operations(node *yaml.Node, field string, rule *Rule) error {
	if err := p.strings(node, field, &rule.Operations); err != nil {
		return err
	}
	for i, pattern := range rule.Operations {
		ops := expandOperations(pattern)
		if len(ops) == 0 {
			return p.fail(node.Content[i], fmt.Sprintf("%s[%d]", field, i),
				"unknown operation %q: run 'dockmoat policy operations' for the list", pattern)
		}
		for _, op := range ops {
			rule.granted[op] = true
		}
	}
	return nil
}
