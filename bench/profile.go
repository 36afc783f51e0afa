package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileSeconds is the length of each CPU profile.
const profileSeconds = 10

// profileResult is one CPU profile of dockmoat under one load.
type profileResult struct {
	load string
	file string
	// top is the output of 'go tool pprof -top', empty without a Go
	// toolchain.
	top string
}

// profile runs the dockmoat build with pprof under the keep-alive load at
// concurrency 8 and under the ECDSA new-connection load, and saves a CPU
// profile of each. It runs after the measured passes, so the pprof listener
// cannot affect the numbers above.
func (b *bench) profile(ctx context.Context) error {
	if b.opts.dockmoatPprof == "" || b.opts.profileDir == "" {
		return nil
	}
	if err := os.MkdirAll(b.opts.profileDir, 0o755); err != nil {
		return err
	}
	pprofAddr, err := freePort()
	if err != nil {
		return err
	}
	t, err := b.startDockmoatBinary(ctx, b.opts.dockmoatPprof, keyECDSA, []string{"DOCKMOAT_PPROF_LISTEN=" + pprofAddr})
	if err != nil {
		return err
	}
	keepAlive := func(ctx context.Context, t *target, deadline time.Time, _ *string) ([]time.Duration, error) {
		return keepAliveWorker(ctx, t, deadline)
	}
	loads := []struct {
		name        string
		concurrency int
		worker      workerFunc
	}{
		{"keep-alive", 8, keepAlive},
		{"new-connection", newConnConcurrency, newConnWorker},
	}
	for _, load := range loads {
		slog.Info("profiling dockmoat", "load", load.name, "seconds", profileSeconds)
		file := filepath.Join(b.opts.profileDir, "dockmoat-"+load.name+".pprof")
		fetched := make(chan error, 1)
		go func() { fetched <- fetchProfile(ctx, pprofAddr, file) }()
		var stat rateStat
		runWorkers(ctx, t, load.concurrency, (profileSeconds+1)*time.Second, load.worker, &stat)
		if err := <-fetched; err != nil {
			return fmt.Errorf("%s profile: %w", load.name, err)
		}
		b.results.profiles = append(b.results.profiles, profileResult{
			load: fmt.Sprintf("%s, %d clients, %.0f requests/s", load.name, load.concurrency, stat.rate()),
			file: file,
			top:  pprofTop(b.opts.dockmoatPprof, file),
		})
	}
	return nil
}

func fetchProfile(ctx context.Context, addr, file string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, profileSeconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET %s returned %s: %s", url, resp.Status, msg)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// pprofTop returns the functions with the most cumulative CPU time.
func pprofTop(binary, file string) string {
	if _, err := exec.LookPath("go"); err != nil {
		return ""
	}
	cmd := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=35", binary, file)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Sprintf("go tool pprof failed: %v\n%s", err, out.String())
	}
	return strings.TrimSpace(out.String())
}

func (r *results) writeProfiles(w *bytes.Buffer) {
	fmt.Fprintf(w, "## CPU profiles of dockmoat\n\n")
	if r.profileErr != "" {
		fmt.Fprintf(w, "The profiling pass failed: %s\n\n", r.profileErr)
	}
	if len(r.profiles) == 0 {
		fmt.Fprintf(w, "Not run (bench/run runs it when it can build the dockmoat-pprof wrapper).\n\n")
		return
	}
	fmt.Fprintf(w, "%d-second CPU profiles of a dockmoat build that also serves net/http/pprof "+
		"(bench/dockmoat-pprof), taken after the measured passes. Top functions by cumulative time:\n\n", profileSeconds)
	for _, p := range r.profiles {
		fmt.Fprintf(w, "### %s\n\n```\n%s\n```\n\n", p.load, p.top)
	}
}
