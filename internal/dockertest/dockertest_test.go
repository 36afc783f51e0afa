package dockertest

import (
	"strings"
	"testing"
)

func TestStartRunsContainers(t *testing.T) {
	d := Start(t, Options{})
	cli := d.CLI(t)
	BusyboxImage(t, cli, "dockertest-busybox")

	got := cli.Must(t, "run", "--rm", "dockertest-busybox", "echo", "hello")
	if got != "hello" {
		t.Errorf("container output = %q, want %q", got, "hello")
	}
	root := cli.Must(t, "info", "--format", "{{.DockerRootDir}}")
	if !strings.HasPrefix(root, d.Dir) {
		t.Errorf("DockerRootDir = %q, want it under %q", root, d.Dir)
	}
}

func TestRestartKeepsState(t *testing.T) {
	d := Start(t, Options{})
	cli := d.CLI(t)
	cli.Must(t, "volume", "create", "kept")
	d.Restart(t)
	if got := cli.Must(t, "volume", "ls", "-q"); got != "kept" {
		t.Errorf("volumes after restart = %q, want %q", got, "kept")
	}
}
