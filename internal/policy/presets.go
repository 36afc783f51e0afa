package policy

import "github.com/dockmoat/dockmoat/internal/dockerapi"

// readonlyOperations lists and inspects objects and reads system state. It
// leaves out logs, archive, export, top, changes, exec and attach, which
// expose container contents.
var readonlyOperations = []string{
	"container.list", "container.inspect",
	"image.list", "image.inspect", "image.history",
	"network.list", "network.inspect",
	"volume.list", "volume.inspect",
	"system.info", "system.version", "system.ping", "system.events", "system.df",
}

// ciOperations adds to readonly what a CI job needs to build, push and run
// containers under the container constraints. It leaves out archive
// access, image removal, pruning, swarm, plugins and BuildKit sessions.
//
// NOTE: images and named volumes are shared between clients, because
// ownership covers containers only. Load, and build and tag under a rule
// without images, may point an image name that another client runs at a
// new image, and any client may mount another client's named volume.
var ciOperations = []string{
	"image.build", "image.pull", "image.push", "image.tag", "image.load",
	"container.create", "container.start", "container.stop", "container.kill",
	"container.restart", "container.wait", "container.remove", "container.resize",
	"container.logs", "container.attach",
	"container.exec.create", "exec.start", "exec.resize", "exec.inspect",
	"volume.create", "volume.remove",
	"network.create", "network.remove", "network.connect", "network.disconnect",
}

// presetOperations returns the operations of a preset, or nil for an
// unknown name. The admin preset is every operation in the route table.
func presetOperations(name string) []string {
	switch name {
	case "admin":
		return dockerapi.Operations()
	case "readonly":
		return readonlyOperations
	case "ci":
		return append(append([]string(nil), readonlyOperations...), ciOperations...)
	}
	return nil
}

// PresetNames are the presets a rule may name.
var PresetNames = []string{"admin", "ci", "readonly"}

// DefaultYAML is the policy that dockmoat up and serve use without
// --policy: each preset is granted to the group of the same name.
const DefaultYAML = `# dockmoat default policy: each group gets the preset of the same name.
# Clients are selected by the OU values (groups) of their certificates.
rules:
  - name: admin
    groups: [admin]
    presets: [admin]
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: readonly
    groups: [readonly]
    presets: [readonly]
`

// Default returns the parsed DefaultYAML.
func Default() *Policy {
	p, err := Parse("default policy", []byte(DefaultYAML))
	if err != nil {
		panic("policy: default policy is invalid: " + err.Error())
	}
	return p
}
