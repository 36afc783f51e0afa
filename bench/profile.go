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
		query := fmt.Sprintf("profile?seconds=%d", profileSeconds)
		go func() { fetched <- fetchProfile(ctx, pprofAddr, query, file) }()
		var stat rateStat
		runWorkers(ctx, t, load.concurrency, (profileSeconds+1)*time.Second, load.worker, &stat)
		if err := <-fetched; err != nil {
			return fmt.Errorf("%s profile: %w", load.name, err)
		}
		b.results.profiles = append(b.results.profiles, profileResult{
			load: fmt.Sprintf("CPU, %s, %d clients, %.0f requests/s", load.name, load.concurrency, stat.rate()),
			file: file,
			top:  pprofTop(b.opts.dockmoatPprof, file, "-cum"),
		})
	}
	return b.profileIdleHeap(ctx, t, pprofAddr)
}

// profileIdleHeap holds memConns idle connections to the pprof build and
// saves a heap profile, which shows what each idle connection keeps.
func (b *bench) profileIdleHeap(ctx context.Context, t *target, pprofAddr string) error {
	slog.Info("profiling dockmoat", "load", "idle connections", "connections", b.opts.memConns)
	conns, err := openMany(ctx, t, b.opts.memConns, openIdle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	time.Sleep(memorySettle)
	file := filepath.Join(b.opts.profileDir, "dockmoat-idle-heap.pprof")
	if err := fetchProfile(ctx, pprofAddr, "heap?gc=1", file); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	stats, err := runtimeMemory(ctx, pprofAddr)
	if err != nil {
		return err
	}
	b.results.profiles = append(b.results.profiles, profileResult{
		load: fmt.Sprintf("heap in use, %d idle connections", len(conns)),
		file: file,
		top:  stats + "\n\n" + pprofTop(b.opts.dockmoatPprof, file, "-sample_index=inuse_space"),
	})
	return nil
}

// runtimeMemory returns the goroutine count and the heap and stack lines
// of runtime.MemStats from the pprof endpoints. Goroutine stacks are not in
// the heap profile but are part of each connection's cost.
func runtimeMemory(ctx context.Context, addr string) (string, error) {
	var lines []string
	goroutines, err := getText(ctx, fmt.Sprintf("http://%s/debug/pprof/goroutine?debug=1", addr))
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(goroutines, "\n")
	lines = append(lines, first)
	heap, err := getText(ctx, fmt.Sprintf("http://%s/debug/pprof/heap?debug=1", addr))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(heap, "\n") {
		for _, prefix := range []string{"# HeapInuse", "# Stack =", "# Sys ="} {
			if strings.HasPrefix(line, prefix) {
				lines = append(lines, line)
			}
		}
	}
	return strings.Join(lines, "\n"), nil
}

func getText(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s returned %s", url, resp.Status)
	}
	return string(data), nil
}

// fetchProfile saves the pprof endpoint named by query, such as
// "profile?seconds=10", to file.
func fetchProfile(ctx context.Context, addr, query, file string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s", addr, query)
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

// pprofTop returns the top entries of a profile, with option passed to
// pprof to choose the sort order or sample type.
func pprofTop(binary, file, option string) string {
	if _, err := exec.LookPath("go"); err != nil {
		return ""
	}
	cmd := exec.Command("go", "tool", "pprof", "-top", option, "-nodecount=35", binary, file)
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
	fmt.Fprintf(w, "Profiles of a dockmoat build that also serves net/http/pprof (bench/dockmoat-pprof), "+
		"taken after the measured passes: %d-second CPU profiles, top functions by cumulative time, "+
		"and the heap in use with idle connections open. The files are in bench/profiles/ after a run.\n\n", profileSeconds)
	for _, p := range r.profiles {
		fmt.Fprintf(w, "### %s\n\n```\n%s\n```\n\n", p.load, p.top)
	}
}
