package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names of what the benchmark creates on its private daemon.
const (
	busyboxImage  = "dockmoat-bench/busybox"
	exportImage   = "dockmoat-bench/export"
	execContainer = "dockmoat-bench-exec"
)

// transferStat accumulates bytes and time of bulk transfers over rounds.
type transferStat struct {
	bytes   int64
	elapsed time.Duration
}

// mibPerSecond returns the throughput in MiB/s.
func (s *transferStat) mibPerSecond() float64 {
	if s == nil || s.elapsed <= 0 {
		return 0
	}
	return float64(s.bytes) / (1 << 20) / s.elapsed.Seconds()
}

// prepare creates the build context, the exported image and the container
// that exec sessions run in, all through the unix socket.
func (b *bench) prepare(ctx context.Context) error {
	slog.Info("preparing images and payloads", "blob_mib", b.opts.blobMiB)
	b.contextTar = filepath.Join(b.opts.work, "context.tar")
	if err := writeContextTar(b.contextTar, int64(b.opts.blobMiB)<<20); err != nil {
		return err
	}
	client := b.unixTarget().httpClient()
	if err := buildBusybox(ctx, client, filepath.Join(b.opts.work, "busybox.tar")); err != nil {
		return err
	}
	f, err := os.Open(b.contextTar)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := build(ctx, client, f, exportImage, "Dockerfile.export"); err != nil {
		return err
	}
	return createExecContainer(ctx, client)
}

// writeContextTar writes a build context with a blob of size random bytes
// and two Dockerfiles: Dockerfile.export copies the blob into an image, and
// Dockerfile.upload ignores it, so an upload build does little more than
// receive and unpack the context.
func writeContextTar(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	files := map[string]string{
		"Dockerfile.export": "FROM scratch\nCOPY blob /blob\n",
		"Dockerfile.upload": "FROM scratch\nLABEL dockmoat.bench=upload\n",
	}
	for name, body := range files {
		if err := addTarFile(tw, name, int64(len(body)), strings.NewReader(body)); err != nil {
			return err
		}
	}
	// Random bytes, so no layer of the path can compress them.
	rng := rand.NewChaCha8([32]byte{'d', 'o', 'c', 'k', 'm', 'o', 'a', 't'})
	if err := addTarFile(tw, "blob", size, io.LimitReader(rng, size)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func addTarFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// buildBusybox builds an image FROM scratch that holds Debian's static
// busybox, so exec sessions have a "cat" without a registry.
func buildBusybox(ctx context.Context, client *http.Client, tarPath string) error {
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("read /bin/busybox (apt-get install busybox-static): %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dockerfile := "FROM scratch\nCOPY busybox /bin/busybox\n"
	if err := addTarFile(tw, "Dockerfile", int64(len(dockerfile)), strings.NewReader(dockerfile)); err != nil {
		return err
	}
	hdr := &tar.Header{Name: "busybox", Mode: 0o755, Size: int64(len(busybox)), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(busybox); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = build(ctx, client, &buf, busyboxImage, "Dockerfile")
	return err
}

// build posts a build context to /build with the legacy builder and
// returns the number of context bytes sent. It reads the whole progress
// stream and fails on an error message in it.
func build(ctx context.Context, client *http.Client, body io.Reader, tag, dockerfile string) (int64, error) {
	counter := &countingReader{r: body}
	url := fmt.Sprintf("http://docker/build?t=%s&dockerfile=%s&rm=1&forcerm=1", tag, dockerfile)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, counter)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	if f, ok := body.(*os.File); ok {
		if info, err := f.Stat(); err == nil {
			req.ContentLength = info.Size()
		}
	}

	resp, err := client.Do(req)
	if err != nil {
		return counter.n, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return counter.n, fmt.Errorf("build of %s returned %s: %s", tag, resp.Status, msg)
	}

	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return counter.n, nil
		} else if err != nil {
			return counter.n, fmt.Errorf("read build output of %s: %w", tag, err)
		}
		if msg.Error != "" {
			return counter.n, fmt.Errorf("build of %s failed: %s", tag, msg.Error)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// postJSON sends a JSON body and decodes the JSON response into out unless
// out is nil. Any status outside 2xx is an error.
func postJSON(ctx context.Context, client *http.Client, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s returned %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func createExecContainer(ctx context.Context, client *http.Client) error {
	create := map[string]any{
		"Image":      busyboxImage,
		"Entrypoint": []string{"/bin/busybox", "sleep", "86400"},
		"HostConfig": map[string]any{"NetworkMode": "none"},
	}
	if err := postJSON(ctx, client, "/containers/create?name="+execContainer, create, nil); err != nil {
		return err
	}
	return postJSON(ctx, client, "/containers/"+execContainer+"/start", nil, nil)
}

// deleteContainer removes a container and kills it if it runs. A missing
// container is not an error.
func deleteContainer(ctx context.Context, client *http.Client, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://docker/containers/"+name+"?force=1", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("DELETE /containers/%s returned %s: %s", name, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// emitEvent creates and removes a volume, which sends events to every
// GET /events stream.
func emitEvent(ctx context.Context, client *http.Client) error {
	const name = "dockmoat-bench-event"
	if err := postJSON(ctx, client, "/volumes/create", map[string]string{"Name": name}, nil); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://docker/volumes/"+name, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("DELETE /volumes/%s returned %s", name, resp.Status)
	}
	return nil
}

func (b *bench) measureExport(ctx context.Context, targets []*target) error {
	b.results.export = map[string]*transferStat{}
	for round := range b.opts.rounds {
		for _, t := range rotate(targets, round) {
			if b.hasFailed("export", t) {
				continue
			}
			n, elapsed, err := exportOnce(ctx, t)
			if err != nil {
				b.fail("export", t, err)
				continue
			}
			s := b.results.export[t.name]
			if s == nil {
				s = &transferStat{}
				b.results.export[t.name] = s
			}
			s.bytes += n
			s.elapsed += elapsed
			slog.Info("image export", "target", t.name, "round", round, "bytes", n,
				"throughput", fmt.Sprintf("%.0f MiB/s", float64(n)/(1<<20)/elapsed.Seconds()))
		}
	}
	return nil
}

func exportOnce(ctx context.Context, t *target) (int64, time.Duration, error) {
	client := t.httpClient()
	defer client.CloseIdleConnections()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/images/"+exportImage+"/get", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("image export returned %s", resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	return n, time.Since(start), err
}

func (b *bench) measureUpload(ctx context.Context, targets []*target) error {
	b.results.upload = map[string]*transferStat{}
	for round := range b.opts.rounds {
		for _, t := range rotate(targets, round) {
			if b.hasFailed("upload", t) {
				continue
			}
			n, elapsed, err := b.uploadOnce(ctx, t)
			if err != nil {
				b.fail("upload", t, err)
				continue
			}
			s := b.results.upload[t.name]
			if s == nil {
				s = &transferStat{}
				b.results.upload[t.name] = s
			}
			s.bytes += n
			s.elapsed += elapsed
			slog.Info("build context upload", "target", t.name, "round", round, "bytes", n,
				"throughput", fmt.Sprintf("%.0f MiB/s", float64(n)/(1<<20)/elapsed.Seconds()))
		}
	}
	return nil
}

// uploadOnce sends the build context and waits for the build to finish.
// The time includes the daemon unpacking the context, which is the same for
// every target.
func (b *bench) uploadOnce(ctx context.Context, t *target) (int64, time.Duration, error) {
	f, err := os.Open(b.contextTar)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	client := t.httpClient()
	defer client.CloseIdleConnections()
	start := time.Now()
	n, err := build(ctx, client, f, "dockmoat-bench/upload", "Dockerfile.upload")
	return n, time.Since(start), err
}
