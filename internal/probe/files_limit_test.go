package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadBlocksRejectsHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 2*maxPEMFile); err != nil {
		t.Fatal(err)
	}
	_, _, err := readBlocks(path)
	if err == nil {
		t.Fatal("readBlocks of a 2 MiB file succeeded, want an error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestReadBlocksDevZero(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	if _, _, err := readBlocks("/dev/zero"); err == nil {
		t.Fatal("readBlocks(/dev/zero) succeeded, want an error")
	}
}
