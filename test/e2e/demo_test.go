package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// TestDemo runs scripts/demo, the README's main command, with the binary
// built for this package, and checks each step it reports.
func TestDemo(t *testing.T) {
	dockertest.Require(t, "dockerd", "docker", "curl")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the demo starts a private dockerd, which needs root")
		}
		t.Skip("the demo starts a private dockerd, which needs root")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../../scripts/demo")
	cmd.Env = append(os.Environ(), "DOCKMOAT_BIN="+dockmoatBin)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/demo: %v\n%s", err, output.String())
	}

	for _, want := range []string{
		"tlsv13 alert certificate required",
		"hello from",
		`dockmoat: client "ci-runner" may not call container.create: HostConfig.Privileged is true`,
		"docker version now fails",
		"request ci-runner POST /v1.41/containers/create deny 403",
	} {
		if !strings.Contains(output.String(), want) {
			t.Errorf("demo output lacks %q\n%s", want, output.String())
		}
	}
}
