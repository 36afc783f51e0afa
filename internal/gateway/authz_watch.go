package gateway

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch reloads the policy when its file changes and returns a function
// that stops watching. It watches the folder, because editors and
// configuration tools replace a file by renaming a new one over it. A file
// that fails to load is logged and the previous policy stays in force.
func (a *policyAuthorizer) watch() func() {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		a.logger.Warn("policy file watch unavailable; reload with SIGHUP", "policy", a.path, "error", err)
		return func() {}
	}
	name := filepath.Clean(a.path)
	if err := watcher.Add(filepath.Dir(name)); err != nil {
		a.logger.Warn("cannot watch the policy folder; reload with SIGHUP", "policy", a.path, "error", err)
		watcher.Close()
		return func() {}
	}

	done := make(chan struct{})
	go func() {
		debounce := time.NewTimer(time.Hour)
		debounce.Stop()
		for {
			select {
			case <-done:
				return
			case ev, ok := <-watcher.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == name {
					debounce.Reset(reloadDebounce)
				}
			case err, ok := <-watcher.Errors:
				if !ok {
					return
				}
				a.logger.Warn("policy file watch error", "policy", a.path, "error", err)
			case <-debounce.C:
				if err := a.Reload(); err != nil {
					a.logger.Error("policy reload failed; keeping the previous policy", "policy", a.path, "error", err)
				}
			}
		}
	}()
	return func() {
		close(done)
		watcher.Close()
	}
}
