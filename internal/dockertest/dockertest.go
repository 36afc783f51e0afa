// Package dockertest starts private Docker daemons for tests and runs real
// clients against them.
//
// Each daemon has its own data root, exec root, pid file and unix socket in a
// temporary folder, runs with --iptables=false and --bridge=none so it leaves
// the host's network alone, and may also listen on a loopback TCP port with
// TLS. When the CI environment variable is "true", a missing dockerd or other
// required tool fails the test instead of skipping it.
package dockertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for a new daemon to respond to /_ping.
// dockerd 20.10 started in about 2 s on a 2-core test machine, and the rest is
// headroom for loaded CI machines.
const startTimeout = 60 * time.Second

// Options configures a private daemon. The zero value is a daemon on a unix
// socket only.
type Options struct {
	// TCPAddr, when set, adds a TCP listener such as "127.0.0.1:0". Port 0
	// picks a free port, which Daemon.TCPAddr then reports.
	TCPAddr string
	// TLSCACert, TLSCert and TLSKey are PEM file paths for the TCP listener.
	TLSCACert, TLSCert, TLSKey string
	// TLSVerify requires client certificates (--tlsverify). Without it and
	// with TLSCert set the daemon runs with --tls. dockerd 20.10.24 still
	// requires client certificates then when a CA is given, so a daemon that
	// accepts any client needs "--tlsverify=false" in ExtraArgs.
	TLSVerify bool
	// ConfigFile is passed as --config-file, for tests of daemon.json.
	ConfigFile string
	// NoHostFlags leaves out every -H flag, for a ConfigFile that sets
	// "hosts" itself. The caller must then name the socket in Socket.
	NoHostFlags bool
	// Socket overrides the unix socket path.
	Socket string
	// ExtraArgs are appended to the dockerd command line.
	ExtraArgs []string
}

// Daemon is a running private dockerd.
type Daemon struct {
	// Dir is the temporary folder that holds all of the daemon's state.
	Dir string
	// Socket is the unix socket path, and Host the matching DOCKER_HOST.
	Socket string
	Host   string
	// TCPAddr is the TCP listener's host:port, empty without one.
	TCPAddr string

	opts    Options
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Require fails the test when CI=true and skips it otherwise if any of the
// named programs is not on PATH.
func Require(tb testing.TB, programs ...string) {
	tb.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("%s is required in CI but not on PATH: %v", p, err)
			}
			tb.Skipf("%s not on PATH (install it, or run with CI=true to fail): %v", p, err)
		}
	}
}

// Start starts a private dockerd and stops it when the test ends. It skips
// the test when dockerd is missing or the process is not root, unless
// CI=true, where both fail it.
func Start(tb testing.TB, opts Options) *Daemon {
	tb.Helper()
	Require(tb, "dockerd", "docker")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("a private dockerd needs root, and CI runs as root")
		}
		tb.Skip("a private dockerd needs root")
	}

	d, err := newDaemon(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := d.Stop(); err != nil {
			tb.Logf("stop dockerd: %v", err)
		}
		d.removeState(tb)
	})
	if err := d.start(); err != nil {
		tb.Fatalf("start dockerd: %v\n%s", err, d.Logs())
	}
	return d
}

func newDaemon(opts Options) (*Daemon, error) {
	// Unix socket paths are limited to 108 bytes, and dockerd puts
	// containerd's sockets under the exec root, so the folder lives directly
	// under the temp dir rather than under the long t.TempDir() path.
	dir, err := os.MkdirTemp("", "dockerd-")
	if err != nil {
		return nil, err
	}
	socket := opts.Socket
	if socket == "" {
		socket = filepath.Join(dir, "docker.sock")
	}
	return &Daemon{
		Dir:     dir,
		Socket:  socket,
		Host:    "unix://" + socket,
		opts:    opts,
		logPath: filepath.Join(dir, "dockerd.log"),
	}, nil
}

func (d *Daemon) args() ([]string, error) {
	args := []string{
		"--data-root", filepath.Join(d.Dir, "data"),
		"--exec-root", filepath.Join(d.Dir, "exec"),
		"--pidfile", filepath.Join(d.Dir, "dockerd.pid"),
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--ip-forward=false", "--ip-masq=false",
	}
	if d.opts.ConfigFile != "" {
		args = append(args, "--config-file", d.opts.ConfigFile)
	} else {
		// An empty config keeps /etc/docker/daemon.json on the host out of
		// the test.
		empty := filepath.Join(d.Dir, "daemon.json")
		if err := os.WriteFile(empty, []byte("{}\n"), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--config-file", empty)
	}
	if !d.opts.NoHostFlags {
		args = append(args, "-H", d.Host)
		if d.opts.TCPAddr != "" {
			addr, err := resolvePort(d.opts.TCPAddr)
			if err != nil {
				return nil, err
			}
			d.TCPAddr = addr
			args = append(args, "-H", "tcp://"+addr)
		}
	}
	if d.opts.TLSCert != "" {
		args = append(args, "--tlscert", d.opts.TLSCert, "--tlskey", d.opts.TLSKey)
		if d.opts.TLSCACert != "" {
			args = append(args, "--tlscacert", d.opts.TLSCACert)
		}
		if d.opts.TLSVerify {
			args = append(args, "--tlsverify")
		} else {
			args = append(args, "--tls")
		}
	}
	return append(args, d.opts.ExtraArgs...), nil
}

// resolvePort replaces port 0 in addr with a port that is free now. dockerd
// does not report the port it bound, so the test picks one.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("invalid TCP address %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	return FreePort(host)
}

// FreePort returns host:port for a TCP port on host that is free now.
func FreePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (d *Daemon) start() error {
	args, err := d.args()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command("dockerd", args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.mu.Lock()
	d.cmd = cmd
	d.mu.Unlock()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		if d.Ping(ctx) == nil {
			go func() { <-exited }()
			return nil
		}
		select {
		case err := <-exited:
			d.mu.Lock()
			d.cmd = nil
			d.mu.Unlock()
			return fmt.Errorf("dockerd exited during start: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not respond on %s within %s", d.Socket, startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Ping sends GET /_ping to the unix socket.
func (d *Daemon) Ping(ctx context.Context) error {
	client := d.HTTPClient()
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping returned %s", resp.Status)
	}
	return nil
}

// HTTPClient returns an HTTP client that dials the daemon's unix socket
// whatever the request's host.
func (d *Daemon) HTTPClient() *http.Client {
	var dialer net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", d.Socket)
		},
	}}
}

// Stop stops the daemon with SIGTERM, and SIGKILL after 30 s. Stopping a
// stopped daemon does nothing.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	cmd := d.cmd
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return fmt.Errorf("dockerd pid %d did not stop within 30 s and was killed", cmd.Process.Pid)
}

// Restart stops the daemon and starts it again with the same state, socket
// and listeners.
func (d *Daemon) Restart(tb testing.TB) {
	tb.Helper()
	if err := d.Stop(); err != nil {
		tb.Fatal(err)
	}
	if err := d.start(); err != nil {
		tb.Fatalf("restart dockerd: %v\n%s", err, d.Logs())
	}
}

// Logs returns what dockerd has written so far.
func (d *Daemon) Logs() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// removeState deletes the daemon's folder. Container layers may still be
// mounted when dockerd was killed, so mounts under the folder are detached
// first.
func (d *Daemon) removeState(tb testing.TB) {
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasPrefix(fields[1], d.Dir+"/") {
			_ = syscall.Unmount(fields[1], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		tb.Logf("remove dockerd state %s: %v", d.Dir, err)
	}
}
