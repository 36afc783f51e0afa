package dockerapi

// Flag describes how the gateway has to treat a route.
type Flag uint16

const (
	// Stream marks routes whose responses can stay open indefinitely
	// (logs with follow, events, stats, wait, build, pull, push), so no total
	// deadline may apply to them.
	Stream Flag = 1 << iota
	// Hijack marks routes that may take over the connection after a 101 or
	// after the response headers (attach, exec start, BuildKit session and
	// gRPC).
	Hijack
	// BodyInspected marks routes whose JSON body the policy decodes and
	// checks before the request is forwarded. The gateway reads such bodies
	// whole, up to a size cap.
	BodyInspected
	// QueryInspected marks routes whose query parameters the policy checks,
	// for example build's networkmode and remote.
	QueryInspected
	// Upload marks routes whose body is a raw stream (build contexts, image
	// loads and imports, archive uploads) that is forwarded unbuffered.
	Upload
	// ContainerTarget marks routes whose path variable names a container,
	// so ownership checks apply to it.
	ContainerTarget
	// ExecTarget marks routes whose path variable names an exec instance.
	ExecTarget
)

// varKind is the set of path segments a template variable may span.
type varKind uint8

const (
	// oneSegment is a variable such as "{id}" that dockerd registers without
	// a pattern, which gorilla/mux matches as [^/]+.
	oneSegment varKind = iota
	// manySegments is a variable that dockerd registers as {name:.*}: it may
	// contain slashes, as image references do.
	manySegments
	// slashlessName is registered as {name:.*} by dockerd, but the objects
	// it names (containers, exec instances, volumes, networks) never contain
	// a slash. A match that spans several segments is rejected as ambiguous.
	slashlessName
)

// Route is one Engine API endpoint.
type Route struct {
	Method string
	// Template is the path without the version prefix, for example
	// "/containers/{id}/json". The first variable may span segments as kind
	// allows, and a second one matches exactly one segment.
	Template string
	// Operation is the name policies grant, for example "container.create".
	Operation string
	Flags     Flag
	// MinVersion is the first API version that documents the route. It is
	// informational because dockerd 20.10 registers routes for every version.
	MinVersion string
	// MaxVersion is the last API version that serves the route, empty for
	// routes that current dockerd serves. Classification skips the route
	// for newer or unversioned requests.
	MaxVersion string

	kind varKind
}

// Has reports whether the route carries flag f.
func (r *Route) Has(f Flag) bool { return r.Flags&f != 0 }

// Routes is every Engine API endpoint dockerd serves from API 1.24 to the
// current API (moby api module v1.57.0), grouped as dockerd's routers
// register them. Sources: the API's swagger.yaml, plus routes that dockerd 20.10
// registers outside it (BuildKit's /grpc, checkpoints, /build/cancel, and
// the pre-1.24 /containers/{id}/copy).
var Routes = []Route{
	// Checkpoints, an experimental feature.
	{Method: "GET", Template: "/containers/{id}/checkpoints", Operation: "container.checkpoint.list", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/checkpoints", Operation: "container.checkpoint.create", Flags: ContainerTarget, kind: slashlessName},
	{Method: "DELETE", Template: "/containers/{id}/checkpoints/{checkpoint}", Operation: "container.checkpoint.remove", Flags: ContainerTarget, kind: slashlessName},

	// Containers.
	{Method: "GET", Template: "/containers/json", Operation: "container.list"},
	{Method: "POST", Template: "/containers/create", Operation: "container.create", Flags: BodyInspected},
	{Method: "POST", Template: "/containers/prune", Operation: "container.prune"},
	{Method: "GET", Template: "/containers/{id}/json", Operation: "container.inspect", Flags: ContainerTarget, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/top", Operation: "container.top", Flags: ContainerTarget, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/logs", Operation: "container.logs", Flags: ContainerTarget | Stream, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/changes", Operation: "container.changes", Flags: ContainerTarget, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/export", Operation: "container.export", Flags: ContainerTarget | Stream, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/stats", Operation: "container.stats", Flags: ContainerTarget | Stream, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/resize", Operation: "container.resize", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/start", Operation: "container.start", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/stop", Operation: "container.stop", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/restart", Operation: "container.restart", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/kill", Operation: "container.kill", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/update", Operation: "container.update", Flags: ContainerTarget | BodyInspected, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/rename", Operation: "container.rename", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/pause", Operation: "container.pause", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/unpause", Operation: "container.unpause", Flags: ContainerTarget, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/attach", Operation: "container.attach", Flags: ContainerTarget | Stream | Hijack, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/attach/ws", Operation: "container.attach", Flags: ContainerTarget | Stream | Hijack, kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/wait", Operation: "container.wait", Flags: ContainerTarget | Stream, kind: slashlessName},
	{Method: "DELETE", Template: "/containers/{id}", Operation: "container.remove", Flags: ContainerTarget, kind: slashlessName},
	{Method: "HEAD", Template: "/containers/{id}/archive", Operation: "container.archive.stat", Flags: ContainerTarget, kind: slashlessName},
	{Method: "GET", Template: "/containers/{id}/archive", Operation: "container.archive.read", Flags: ContainerTarget | Stream, kind: slashlessName},
	{Method: "PUT", Template: "/containers/{id}/archive", Operation: "container.archive.write", Flags: ContainerTarget | Upload, kind: slashlessName},
	// dockerd 20.10 still copies files out through this route for API
	// versions below 1.24, so it reads container files like the archive.
	{Method: "POST", Template: "/containers/{id}/copy", Operation: "container.archive.read", Flags: ContainerTarget | Stream, MaxVersion: "1.23", kind: slashlessName},
	{Method: "POST", Template: "/containers/{id}/exec", Operation: "container.exec.create", Flags: ContainerTarget | BodyInspected, kind: slashlessName},
	{Method: "POST", Template: "/exec/{id}/start", Operation: "exec.start", Flags: ExecTarget | Stream | Hijack, kind: slashlessName},
	{Method: "POST", Template: "/exec/{id}/resize", Operation: "exec.resize", Flags: ExecTarget, kind: slashlessName},
	{Method: "GET", Template: "/exec/{id}/json", Operation: "exec.inspect", Flags: ExecTarget, kind: slashlessName},

	// Images.
	{Method: "GET", Template: "/images/json", Operation: "image.list"},
	{Method: "GET", Template: "/images/search", Operation: "image.search"},
	{Method: "GET", Template: "/images/get", Operation: "image.save", Flags: Stream},
	{Method: "GET", Template: "/images/{name}/get", Operation: "image.save", Flags: Stream, kind: manySegments},
	{Method: "GET", Template: "/images/{name}/history", Operation: "image.history", kind: manySegments},
	{Method: "GET", Template: "/images/{name}/json", Operation: "image.inspect", kind: manySegments},
	{Method: "GET", Template: "/images/{name}/attestations", Operation: "image.inspect", MinVersion: "1.52", kind: manySegments},
	{Method: "POST", Template: "/images/create", Operation: "image.pull", Flags: Stream | QueryInspected | Upload},
	{Method: "POST", Template: "/images/load", Operation: "image.load", Flags: Stream | Upload},
	{Method: "POST", Template: "/images/prune", Operation: "image.prune"},
	{Method: "POST", Template: "/images/{name}/push", Operation: "image.push", Flags: Stream, kind: manySegments},
	{Method: "POST", Template: "/images/{name}/tag", Operation: "image.tag", kind: manySegments},
	{Method: "DELETE", Template: "/images/{name}", Operation: "image.remove", kind: manySegments},
	{Method: "POST", Template: "/commit", Operation: "image.commit", Flags: QueryInspected},

	// System.
	{Method: "GET", Template: "/_ping", Operation: "system.ping"},
	{Method: "HEAD", Template: "/_ping", Operation: "system.ping"},
	{Method: "GET", Template: "/version", Operation: "system.version"},
	{Method: "GET", Template: "/info", Operation: "system.info"},
	{Method: "GET", Template: "/events", Operation: "system.events", Flags: Stream},
	{Method: "GET", Template: "/system/df", Operation: "system.df"},
	{Method: "POST", Template: "/auth", Operation: "system.auth"},

	// Volumes.
	{Method: "GET", Template: "/volumes", Operation: "volume.list"},
	{Method: "POST", Template: "/volumes/create", Operation: "volume.create", Flags: BodyInspected},
	{Method: "POST", Template: "/volumes/prune", Operation: "volume.prune"},
	{Method: "GET", Template: "/volumes/{name}", Operation: "volume.inspect", kind: slashlessName},
	{Method: "PUT", Template: "/volumes/{name}", Operation: "volume.update", MinVersion: "1.42", kind: slashlessName},
	{Method: "DELETE", Template: "/volumes/{name}", Operation: "volume.remove", kind: slashlessName},

	// Builds.
	{Method: "POST", Template: "/build", Operation: "image.build", Flags: Stream | QueryInspected | Upload},
	{Method: "POST", Template: "/build/prune", Operation: "build.prune", MinVersion: "1.31"},
	{Method: "POST", Template: "/build/cancel", Operation: "build.cancel", MinVersion: "1.32"},

	// BuildKit sessions: both hijack the connection and run gRPC over it.
	{Method: "POST", Template: "/session", Operation: "session", Flags: Stream | Hijack, MinVersion: "1.31"},
	{Method: "POST", Template: "/grpc", Operation: "grpc", Flags: Stream | Hijack, MinVersion: "1.31"},

	// Networks.
	{Method: "GET", Template: "/networks", Operation: "network.list"},
	{Method: "POST", Template: "/networks/create", Operation: "network.create", Flags: BodyInspected},
	{Method: "POST", Template: "/networks/prune", Operation: "network.prune"},
	{Method: "GET", Template: "/networks/{id}", Operation: "network.inspect", kind: slashlessName},
	{Method: "DELETE", Template: "/networks/{id}", Operation: "network.remove", kind: slashlessName},
	{Method: "POST", Template: "/networks/{id}/connect", Operation: "network.connect", Flags: BodyInspected, kind: slashlessName},
	{Method: "POST", Template: "/networks/{id}/disconnect", Operation: "network.disconnect", Flags: BodyInspected, kind: slashlessName},

	// Swarm.
	{Method: "GET", Template: "/swarm", Operation: "swarm.inspect"},
	{Method: "GET", Template: "/swarm/unlockkey", Operation: "swarm.unlockkey"},
	{Method: "POST", Template: "/swarm/init", Operation: "swarm.init"},
	{Method: "POST", Template: "/swarm/join", Operation: "swarm.join"},
	{Method: "POST", Template: "/swarm/leave", Operation: "swarm.leave"},
	{Method: "POST", Template: "/swarm/update", Operation: "swarm.update"},
	{Method: "POST", Template: "/swarm/unlock", Operation: "swarm.unlock"},
	{Method: "GET", Template: "/nodes", Operation: "node.list"},
	{Method: "GET", Template: "/nodes/{id}", Operation: "node.inspect"},
	{Method: "DELETE", Template: "/nodes/{id}", Operation: "node.remove"},
	{Method: "POST", Template: "/nodes/{id}/update", Operation: "node.update"},
	{Method: "GET", Template: "/services", Operation: "service.list"},
	{Method: "POST", Template: "/services/create", Operation: "service.create"},
	{Method: "GET", Template: "/services/{id}", Operation: "service.inspect"},
	{Method: "DELETE", Template: "/services/{id}", Operation: "service.remove"},
	{Method: "POST", Template: "/services/{id}/update", Operation: "service.update"},
	{Method: "GET", Template: "/services/{id}/logs", Operation: "service.logs", Flags: Stream},
	{Method: "GET", Template: "/tasks", Operation: "task.list"},
	{Method: "GET", Template: "/tasks/{id}", Operation: "task.inspect"},
	{Method: "GET", Template: "/tasks/{id}/logs", Operation: "task.logs", Flags: Stream},
	{Method: "GET", Template: "/secrets", Operation: "secret.list"},
	{Method: "POST", Template: "/secrets/create", Operation: "secret.create"},
	{Method: "GET", Template: "/secrets/{id}", Operation: "secret.inspect"},
	{Method: "DELETE", Template: "/secrets/{id}", Operation: "secret.remove"},
	{Method: "POST", Template: "/secrets/{id}/update", Operation: "secret.update"},
	{Method: "GET", Template: "/configs", Operation: "config.list"},
	{Method: "POST", Template: "/configs/create", Operation: "config.create"},
	{Method: "GET", Template: "/configs/{id}", Operation: "config.inspect"},
	{Method: "DELETE", Template: "/configs/{id}", Operation: "config.remove"},
	{Method: "POST", Template: "/configs/{id}/update", Operation: "config.update"},

	// Plugins.
	{Method: "GET", Template: "/plugins", Operation: "plugin.list"},
	{Method: "GET", Template: "/plugins/privileges", Operation: "plugin.privileges"},
	{Method: "POST", Template: "/plugins/pull", Operation: "plugin.install", Flags: Stream},
	{Method: "POST", Template: "/plugins/create", Operation: "plugin.create", Flags: Upload},
	{Method: "GET", Template: "/plugins/{name}/json", Operation: "plugin.inspect", kind: manySegments},
	{Method: "DELETE", Template: "/plugins/{name}", Operation: "plugin.remove", kind: manySegments},
	{Method: "POST", Template: "/plugins/{name}/enable", Operation: "plugin.enable", kind: manySegments},
	{Method: "POST", Template: "/plugins/{name}/disable", Operation: "plugin.disable", kind: manySegments},
	{Method: "POST", Template: "/plugins/{name}/upgrade", Operation: "plugin.upgrade", Flags: Stream, kind: manySegments},
	{Method: "POST", Template: "/plugins/{name}/push", Operation: "plugin.push", Flags: Stream, kind: manySegments},
	{Method: "POST", Template: "/plugins/{name}/set", Operation: "plugin.set", kind: manySegments},

	// Distribution.
	{Method: "GET", Template: "/distribution/{name}/json", Operation: "distribution.inspect", kind: manySegments},
}

// Operations returns the sorted, distinct operation names of Routes plus
// "image.import", which Classify derives from POST /images/create.
func Operations() []string {
	seen := map[string]bool{"image.import": true}
	for _, r := range Routes {
		seen[r.Operation] = true
	}
	return sortedKeys(seen)
}
