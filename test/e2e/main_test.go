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
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	return runDockmoatEnv(t, env, stdin, args...)
}

// runDockmoatEnv runs the dockmoat binary with args and stdin in exactly the
// environment env, for at most 2 minutes, and returns its output and exit
// code. It fails the test when the binary cannot run.
func runDockmoatEnv(t testing.TB, env []string, stdin string, args ...string) result {
	t.Helper()
	r, err := execDockmoat(2*time.Minute, env, stdin, args...)
	if err != nil {
		t.Fatalf("run dockmoat %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// execDockmoat runs the dockmoat binary with args and stdin in exactly the
// environment env, and kills it after timeout. The error is nil whenever the
// process ran, whatever its exit code, and a killed process has code -1. It
// takes no testing.TB, so it is safe in goroutines.
func execDockmoat(timeout time.Duration, env []string, stdin string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockmoatBin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
		return r, nil
	}
	return r, err
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
