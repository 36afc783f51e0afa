package dockertest

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CLI runs the real docker CLI against one endpoint. Its DOCKER_CONFIG is a
// private folder, so contexts and credentials never touch the user's.
type CLI struct {
	// Env holds DOCKER_HOST and, for TLS, DOCKER_TLS_VERIFY and
	// DOCKER_CERT_PATH. Run adds it to a minimal environment.
	Env []string
	// ConfigDir is the DOCKER_CONFIG folder.
	ConfigDir string
	// Timeout bounds each command. The default is 2 minutes.
	Timeout time.Duration
}

// NewCLI returns a CLI for DOCKER_HOST host, with TLS material from certPath
// when certPath is not empty.
func NewCLI(tb testing.TB, host, certPath string) *CLI {
	tb.Helper()
	Require(tb, "docker")
	env := []string{"DOCKER_HOST=" + host}
	if certPath != "" {
		env = append(env, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+certPath)
	}
	return &CLI{Env: env, ConfigDir: tb.TempDir()}
}

// CLI returns a docker CLI that talks to the daemon's unix socket.
func (d *Daemon) CLI(tb testing.TB) *CLI {
	return NewCLI(tb, d.Host, "")
}

// Result is the outcome of one docker command.
type Result struct {
	Stdout, Stderr string
	Err            error
}

// Command returns the exec.Cmd for docker args, for callers that need to
// wire stdin or read output as it streams.
func (c *CLI) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.ConfigDir,
		"DOCKER_CONFIG=" + c.ConfigDir,
		// The legacy builder needs no buildx plugin, which Debian's
		// docker.io package does not ship.
		"DOCKER_BUILDKIT=0",
	}, c.Env...)
	return cmd
}

// Run runs docker args with stdin and returns its output. It does not fail the
// test, so callers can assert on failures.
func (c *CLI) Run(stdin io.Reader, args ...string) Result {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.Command(ctx, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// Must runs docker args and fails the test unless the command succeeds. It
// returns stdout with surrounding space trimmed.
func (c *CLI) Must(tb testing.TB, args ...string) string {
	tb.Helper()
	r := c.Run(nil, args...)
	if r.Err != nil {
		tb.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// BusyboxImage builds image tag FROM scratch with Debian's static busybox as
// /bin/busybox and its applets linked into /bin, so containers have a shell
// without a registry. It requires /bin/busybox from busybox-static.
func BusyboxImage(tb testing.TB, cli *CLI, tag string) {
	tb.Helper()
	busybox := "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is required in CI (apt-get install busybox-static): %v", busybox, err)
		}
		tb.Skipf("%s missing (apt-get install busybox-static): %v", busybox, err)
	}
	dir := tb.TempDir()
	data, err := os.ReadFile(busybox)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), data, 0o755); err != nil {
		tb.Fatal(err)
	}
	dockerfile := "FROM scratch\n" +
		"COPY busybox /bin/busybox\n" +
		"RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n" +
		"CMD [\"/bin/sh\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		tb.Fatal(err)
	}
	cli.Must(tb, "build", "-q", "-t", tag, dir)
}
