// Package e2e drives the dockmoat binary, real private dockerds and real
// clients (the docker CLI, the moby Go client, curl, openssl, Java) together.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockmoatBin is the binary built once for the whole package by TestMain.
var dockmoatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dockmoat-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dockmoatBin = filepath.Join(dir, "dockmoat")
	build := exec.Command("go", "build", "-o", dockmoatBin, "../../cmd/dockmoat")
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build dockmoat: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is the outcome of one dockmoat run.
type result struct {
	stdout, stderr string
	code           int
}

// runDockmoat runs the dockmoat binary with args and stdin, with a private
// HOME and no DOCKMOAT_DIR, and returns its output and exit code.
func runDockmoat(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockmoatBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run dockmoat %s: %v", strings.Join(args, " "), err)
		}
		code = exit.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// mustDockmoat runs dockmoat and fails the test unless it exits 0.
func mustDockmoat(t testing.TB, args ...string) result {
	t.Helper()
	r := runDockmoat(t, "", args...)
	if r.code != 0 {
		t.Fatalf("dockmoat %s: exit %d\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}
