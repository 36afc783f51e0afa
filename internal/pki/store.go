package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFileAtomic replaces path with data. It writes a new temporary file in
// the same folder (created exclusively with mode perm, so a key is never
// readable by others, not even briefly), syncs it, renames it over path and
// syncs the folder. Readers see the old file or the new one, never a part.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, "."+filepath.Base(path)+".tmp-", perm)
	if err != nil {
		return err
	}
	name := tmp.Name()

	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	// Write and Sync return an *os.PathError that names the file.
	if _, err := tmp.Write(data); err != nil {
		return err
	}

	// The umask may have narrowed perm at creation; the result must be
	// exactly perm, so 0644 certificates stay readable by Docker clients.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}

	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// createTemp creates a new file in dir with a random name that starts with
// prefix, using O_EXCL and mode perm.
func createTemp(dir, prefix string, perm os.FileMode) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, prefix+randomHex(8))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("failed to create a temporary file in %s after 100 attempts", dir)
}

// syncDir flushes a folder's entries, so a rename into it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// mkdirPrivate creates dir and its missing parents with mode 0700. The
// error, an *os.PathError, names the path that failed.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create a folder: %w", err)
	}
	return nil
}

// dirLock is an exclusive flock(2) lock on DIR/index.lock. It serializes
// every writer of one state directory, across processes and within one.
type dirLock struct {
	f *os.File
}

// lockDir takes the writer lock of state directory dir, waiting for other
// writers to finish.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock. Closing the file releases the flock.
func (l *dirLock) unlock() { l.f.Close() }
