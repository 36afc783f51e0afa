package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// applyConfigFile sets the flags of cmd from the YAML file at path. Its keys
// are the long flag names, such as listen or audit-log; a list value sets a
// repeatable flag once per element. A flag given on the command line wins
// over the file. Unknown keys and values of the wrong type are errors that
// name the file and line.
func applyConfigFile(cmd *cobra.Command, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usageError(fmt.Errorf("read config file: %w", err), "check the --config path")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return usageError(fmt.Errorf("config file %s: %v", path, err), "fix the YAML syntax")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return usageError(fmt.Errorf("config file %s:%d: want a mapping of flag names to values", path, root.Line),
			"write one \"key: value\" line per flag, such as \"listen: 0.0.0.0:2376\"")
	}

	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		if err := applyConfigEntry(cmd, root.Content[i], root.Content[i+1]); err != nil {
			errs = append(errs, fmt.Errorf("config file %s:%d: %w", path, root.Content[i].Line, err))
		}
	}
	if len(errs) > 0 {
		return usageError(errors.Join(errs...), fmt.Sprintf("keys are the long flag names of '%s'; see '%s --help'", cmd.CommandPath(), cmd.CommandPath()))
	}
	return nil
}

// configOnlyFlags are flags that make no sense inside the config file.
var configOnlyFlags = map[string]bool{"config": true, "help": true}

func applyConfigEntry(cmd *cobra.Command, key, value *yaml.Node) error {
	name := key.Value
	flag := cmd.Flags().Lookup(name)
	if flag == nil || configOnlyFlags[name] {
		return fmt.Errorf("unknown key %q", name)
	}
	if flag.Changed {
		return nil
	}
	values, err := scalarValues(flag, value)
	if err != nil {
		return fmt.Errorf("key %q: %w", name, err)
	}
	for _, v := range values {
		if err := cmd.Flags().Set(name, v); err != nil {
			return fmt.Errorf("key %q: invalid value %q: %v", name, v, err)
		}
	}
	return nil
}

// scalarValues returns the values to pass to flag.Set for a YAML value: one
// for a scalar, one per element for a sequence of a repeatable flag.
func scalarValues(flag *pflag.Flag, value *yaml.Node) ([]string, error) {
	repeatable := strings.HasSuffix(flag.Value.Type(), "Slice") || strings.HasSuffix(flag.Value.Type(), "Array")
	switch value.Kind {
	case yaml.ScalarNode:
		return []string{value.Value}, nil
	case yaml.SequenceNode:
		if !repeatable {
			return nil, errors.New("want a single value, not a list")
		}
		out := make([]string, 0, len(value.Content))
		for _, item := range value.Content {
			if item.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a list of plain values", item.Line)
			}
			out = append(out, item.Value)
		}
		return out, nil
	}
	return nil, errors.New("want a plain value or a list")
}
