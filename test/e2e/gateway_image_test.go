package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// repoRoot is the repository root relative to this package.
const repoRoot = "../.."

// testDockerfileImage builds the offline Dockerfile.release through the
// gateway, checks the image configuration, and runs the image as a
// gateway in front of the same daemon, as the Dockerfile comments describe.
func (s *gatewaySuite) testDockerfileImage(t *testing.T) {
	buildContext := t.TempDir()
	buildStaticBinary(t, filepath.Join(buildContext, "dockmoat"))
	copyFile(t, filepath.Join(repoRoot, "Dockerfile.release"), filepath.Join(buildContext, "Dockerfile.release"))

	const tag = "e2e-dockmoat-image"
	t.Cleanup(func() { s.direct.Run(nil, "rmi", "-f", tag) })
	s.cli.Must(t, "build", "-q", "-f", filepath.Join(buildContext, "Dockerfile.release"), "-t", tag, buildContext)

	help := s.cli.Must(t, "run", "--rm", tag, "--help")
	if !strings.Contains(help, "dockmoat secures remote access to a Docker daemon") {
		t.Errorf("dockmoat --help in the image printed %q, want the root command's description", help)
	}

	var config struct {
		Entrypoint   []string
		Cmd          []string
		Env          []string
		User         string
		Volumes      map[string]struct{}
		ExposedPorts map[string]struct{}
	}
	out := s.cli.Must(t, "image", "inspect", "--format", "{{json .Config}}", tag)
	if err := json.Unmarshal([]byte(out), &config); err != nil {
		t.Fatalf("decode image config %q: %v", out, err)
	}
	if want := []string{"/usr/local/bin/dockmoat"}; !reflect.DeepEqual(config.Entrypoint, want) {
		t.Errorf("Entrypoint = %q, want %q", config.Entrypoint, want)
	}
	if len(config.Cmd) == 0 || config.Cmd[0] != "serve" {
		t.Errorf("Cmd = %q, want serve with its flags", config.Cmd)
	}
	if !slices.Contains(config.Env, "DOCKMOAT_DIR=/var/lib/dockmoat") {
		t.Errorf("Env = %q, want DOCKMOAT_DIR=/var/lib/dockmoat", config.Env)
	}
	if _, ok := config.Volumes["/var/lib/dockmoat"]; !ok {
		t.Errorf("Volumes = %v, want /var/lib/dockmoat", config.Volumes)
	}
	if _, ok := config.ExposedPorts["2376/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v, want 2376/tcp", config.ExposedPorts)
	}

	s.runImageAsGateway(t, tag)
}

// runImageAsGateway runs the image with the daemon's socket mounted and
// the state in a host folder, on the host's network namespace so that its
// loopback listener is reachable, and drives it with the docker CLI.
func (s *gatewaySuite) runImageAsGateway(t *testing.T, tag string) {
	stateDir := t.TempDir()
	addr := freeLoopbackPort(t)
	const name = "e2e-dockmoat-gateway"
	s.direct.Must(t, "run", "-d", "--name", name, "--network", "host",
		"-v", s.daemon.Socket+":/var/run/docker.sock",
		"-v", stateDir+":/var/lib/dockmoat",
		tag, "up", "--listen", addr)
	t.Cleanup(func() { s.direct.Run(nil, "rm", "-f", name) })

	// The bundle is copied out with docker cp, as the Dockerfile documents
	// for a state volume, once the container has written it.
	deadline := time.Now().Add(gatewayReadyTimeout)
	for {
		if _, err := os.Stat(filepath.Join(stateDir, "clients", "admin", "cert.pem")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs := s.direct.Run(nil, "logs", name)
			t.Fatalf("containerized gateway wrote no admin bundle within %s\ncontainer log:\n%s%s",
				gatewayReadyTimeout, logs.Stdout, logs.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	copied := t.TempDir()
	s.direct.Must(t, "cp", name+":/var/lib/dockmoat/clients/admin", copied)
	bundle := filepath.Join(copied, "admin")

	for {
		cli := dockertest.NewCLI(t, "tcp://"+addr, bundle)
		r := cli.Run(nil, "version", "--format", "{{.Server.Version}}")
		if r.Err == nil {
			want := s.direct.Must(t, "version", "--format", "{{.Server.Version}}")
			if got := strings.TrimSpace(r.Stdout); got != want {
				t.Errorf("server version through the containerized gateway = %q, want %q", got, want)
			}
			break
		}
		if time.Now().After(deadline) {
			logs := s.direct.Run(nil, "logs", name)
			t.Fatalf("containerized gateway not usable within %s: %v\n%s\ncontainer log:\n%s%s",
				gatewayReadyTimeout, r.Err, r.Stderr, logs.Stdout, logs.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildStaticBinary builds dockmoat without cgo, as the images need.
func buildStaticBinary(t *testing.T, out string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/dockmoat")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build static dockmoat: %v\n%s", err, output)
	}
}

// TestDockerfileFinalStagesMatch checks that Dockerfile, which compiles
// dockmoat, and Dockerfile.release, which copies a binary built on the
// host, produce the same image configuration. Their final stages may
// differ only in the source of the COPY.
func TestDockerfileFinalStagesMatch(t *testing.T) {
	full := finalStage(t, filepath.Join(repoRoot, "Dockerfile"))
	release := finalStage(t, filepath.Join(repoRoot, "Dockerfile.release"))
	if len(full) != len(release) {
		t.Fatalf("final stages have %d and %d instructions:\n%s\n---\n%s",
			len(full), len(release), strings.Join(full, "\n"), strings.Join(release, "\n"))
	}
	for i := range full {
		if strings.HasPrefix(full[i], "COPY ") && strings.HasPrefix(release[i], "COPY ") {
			fullDest := full[i][strings.LastIndexByte(full[i], ' '):]
			releaseDest := release[i][strings.LastIndexByte(release[i], ' '):]
			if fullDest != releaseDest {
				t.Errorf("COPY destinations differ: %q and %q", full[i], release[i])
			}
			continue
		}
		if full[i] != release[i] {
			t.Errorf("final stage instruction %d: Dockerfile has %q, Dockerfile.release %q", i+1, full[i], release[i])
		}
	}
	if full[0] != "FROM scratch" {
		t.Errorf("final stage starts with %q, want FROM scratch", full[0])
	}
}

// finalStage returns the instructions of the last stage of a Dockerfile,
// from its FROM line, without comments and blank lines. The Dockerfiles
// here use no line continuations.
func finalStage(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stage []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	if len(stage) == 0 {
		t.Fatalf("%s has no FROM line", path)
	}
	return stage
}
