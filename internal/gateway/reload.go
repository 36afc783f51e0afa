package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadPollInterval is how often Watch also compares the files' size and
// modification time, which catches changes that inotify misses, for example
// on network file systems or when a watched folder is replaced. Together
// with the fsnotify debounce it keeps revocation within a few seconds.
const reloadPollInterval = 2 * time.Second

// reloadDebounce collects the several events of one atomic file replacement
// into one reload.
const reloadDebounce = 100 * time.Millisecond

// Watch reloads the server certificate, CA and CRL whenever one of their
// files changes, until ctx ends. It watches the folders that contain the
// files, because tools replace files by renaming a new one over them, which
// a watch on the old file would not see.
func (s *Server) Watch(ctx context.Context) error {
	files := s.watchedFiles()
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		s.logger.Warn("file watch unavailable; polling for changes instead",
			"interval", reloadPollInterval.String(), "error", err)
	} else {
		defer watcher.Close()
		for _, dir := range watchedDirs(files) {
			if err := watcher.Add(dir); err != nil {
				s.logger.Warn("cannot watch folder; polling it instead", "folder", dir, "error", err)
			}
		}
	}

	var events <-chan fsnotify.Event
	var errs <-chan error
	if watcher != nil {
		events, errs = watcher.Events, watcher.Errors
	}
	poll := time.NewTicker(reloadPollInterval)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	stamps := fileStamps(files)

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if _, ok := files[filepath.Clean(ev.Name)]; ok {
				debounce.Reset(reloadDebounce)
			}
		case err := <-errs:
			s.logger.Warn("file watch error", "error", err)
		case <-debounce.C:
			stamps = fileStamps(files)
			_ = s.Reload()
		case <-poll.C:
			if now := fileStamps(files); now != stamps {
				stamps = now
				_ = s.Reload()
			}
		}
	}
}

func (s *Server) watchedFiles() map[string]struct{} {
	files := map[string]struct{}{}
	for _, f := range []string{s.cfg.CertFile, s.cfg.KeyFile, s.cfg.CAFile, s.cfg.CRLFile} {
		if f != "" {
			files[filepath.Clean(f)] = struct{}{}
		}
	}
	return files
}

func sortedNames(files map[string]struct{}) []string {
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	return names
}

func watchedDirs(files map[string]struct{}) []string {
	seen := map[string]bool{}
	var dirs []string
	for _, f := range sortedNames(files) {
		dir := filepath.Dir(f)
		if !seen[dir] {
			seen[dir] = true
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// fileStamps summarises the size and modification time of files, so that a
// poll can tell whether any changed.
func fileStamps(files map[string]struct{}) string {
	var b []byte
	for _, f := range sortedNames(files) {
		b = append(b, f...)
		if info, err := os.Stat(f); err == nil {
			b = fmt.Appendf(b, " %d %d", info.ModTime().UnixNano(), info.Size())
		}
		b = append(b, 0)
	}
	return string(b)
}
