package main

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed nginx.conf
var nginxTemplate string

//go:embed haproxy.cfg
var haproxyTemplate string

// process is a daemon or proxy that the benchmark started. Each runs in its
// own process group, so stopping it also stops its workers.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startProcess starts argv with its output in a log file under dir.
func startProcess(name, dir string, env []string, argv ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	slog.Info("started", "process", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group and SIGKILL after timeout.
func (p *process) stop(timeout time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		slog.Warn("process ignored SIGTERM; killing it", "process", p.name, "pid", p.pid())
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	slog.Info("stopped", "process", p.name)
}

// tail returns the last lines of the process log, for error messages.
func (p *process) tail() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// pids returns the process and all of its descendants, read from /proc.
func (p *process) pids() []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{p.pid()}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	sort.Ints(out)
	return out
}

func parentPID(pid int) (int, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name in field 2 may contain spaces, so fields are counted
	// from its closing parenthesis.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// userHZ is the unit of the CPU times in /proc/PID/stat, fixed at 100 per
// second by the Linux ABI (USER_HZ) whatever the kernel's tick rate.
const userHZ = 100

// cpuTime returns the user plus system CPU time that pids have used.
// Processes that exited in the meantime are skipped.
func cpuTime(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		// After the command name: state is field 3, utime 14, stime 15.
		fields := strings.Fields(s[i+1:])
		if len(fields) < 13 {
			continue
		}
		user, _ := strconv.ParseInt(fields[11], 10, 64)
		system, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += user + system
	}
	return time.Duration(ticks) * time.Second / userHZ
}

// residentKiB returns the sum of VmRSS over pids, in KiB.
func residentKiB(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "VmRSS:") {
				continue
			}
			fields := strings.Fields(line)
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("invalid VmRSS line %q for pid %d", line, pid)
			}
			total += kib
		}
		f.Close()
	}
	return total, nil
}

// freePort returns a loopback address with a TCP port that is free now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serverFiles names the PEM files of one server key type.
type serverFiles struct {
	ca, cert, key string
}

func (b *bench) serverFiles(keyType string) serverFiles {
	dir := filepath.Join(b.opts.certs, "server-"+keyType)
	return serverFiles{
		ca:   filepath.Join(dir, "ca.pem"),
		cert: filepath.Join(dir, "server-cert.pem"),
		key:  filepath.Join(dir, "server-key.pem"),
	}
}

// startDockerd starts the private dockerd with its unix socket and a
// --tlsverify listener on loopback that uses the keyType server
// certificate. The data root survives restarts, so images built once stay.
func (b *bench) startDockerd(ctx context.Context, keyType string) error {
	dir := filepath.Join(b.opts.work, "dockerd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	config := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(config, []byte("{}\n"), 0o644); err != nil {
		return err
	}
	addr, err := freePort()
	if err != nil {
		return err
	}

	files := b.serverFiles(keyType)
	b.socket = filepath.Join(dir, "docker.sock")
	p, err := startProcess("dockerd-"+keyType, b.opts.work, nil, "dockerd",
		"--config-file", config,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--ip-forward=false", "--ip-masq=false",
		"-H", "unix://"+b.socket, "-H", "tcp://"+addr,
		"--tlsverify", "--tlscacert", files.ca,
		"--tlscert", files.cert, "--tlskey", files.key)
	if err != nil {
		return err
	}
	b.dockerd = p
	b.dockerdTLS = addr

	unix := b.unixTarget()
	if err := b.waitReady(ctx, unix, p); err != nil {
		return err
	}
	return b.waitReady(ctx, b.tlsTarget("dockerd-tls", addr, nil), p)
}

// stopDockerd stops dockerd and unmounts what it left mounted under the
// work folder, so the folder can be removed.
func (b *bench) stopDockerd() {
	if b.dockerd == nil {
		return
	}
	// dockerd would wait 10 s for the exec container's "sleep", which as
	// PID 1 of its namespace ignores SIGTERM, so it is removed first.
	if !b.dockerd.exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := deleteContainer(ctx, b.unixTarget().httpClient(), execContainer)
		cancel()
		if err != nil {
			slog.Warn("could not remove the exec container", "err", err)
		}
	}
	b.dockerd.stop(40 * time.Second)
	b.dockerd = nil

	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasPrefix(fields[1], b.opts.work+"/") {
			mounts = append(mounts, fields[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			slog.Warn("unmount failed", "path", m, "err", err)
		}
	}
}

// proxyConfig is the data for the nginx and HAProxy config templates.
type proxyConfig struct {
	Dir, Listen, Socket string
	CA, Cert, Key       string
	// CertKey is one PEM file with the certificate and then the key, the
	// form HAProxy's crt option reads.
	CertKey string
}

func (b *bench) proxyConfig(name, keyType string) (proxyConfig, error) {
	dir := filepath.Join(b.opts.work, name+"-"+keyType)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return proxyConfig{}, err
	}
	addr, err := freePort()
	if err != nil {
		return proxyConfig{}, err
	}
	files := b.serverFiles(keyType)
	cert, err := os.ReadFile(files.cert)
	if err != nil {
		return proxyConfig{}, err
	}
	key, err := os.ReadFile(files.key)
	if err != nil {
		return proxyConfig{}, err
	}
	certKey := filepath.Join(dir, "cert-key.pem")
	if err := os.WriteFile(certKey, append(cert, key...), 0o600); err != nil {
		return proxyConfig{}, err
	}
	return proxyConfig{
		Dir: dir, Listen: addr, Socket: b.socket,
		CA: files.ca, Cert: files.cert, Key: files.key, CertKey: certKey,
	}, nil
}

func writeTemplate(path, text string, data any) error {
	tmpl, err := template.New(filepath.Base(path)).Parse(text)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := tmpl.Execute(f, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startProxies starts dockmoat, nginx, HAProxy and the TLS pipe with
// keyType server certificates and returns the targets that are up. A proxy that is not
// installed is recorded as skipped; one that fails to start is an error.
func (b *bench) startProxies(ctx context.Context, keyType string) ([]*target, error) {
	var targets []*target
	starters := []struct {
		name  string
		start func(context.Context, string) (*target, error)
	}{
		{"dockmoat", b.startDockmoat},
		{"nginx", b.startNginx},
		{"haproxy", b.startHAProxy},
		{"tls-pipe", b.startPipe},
		{x25519Pipe, b.startPipeX25519},
	}
	for _, s := range starters {
		t, err := s.start(ctx, keyType)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if t != nil {
			targets = append(targets, t)
		}
	}
	return targets, nil
}

func (b *bench) startNginx(ctx context.Context, keyType string) (*target, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		b.skip("nginx", "nginx is not installed (apt-get install nginx)")
		return nil, nil
	}
	cfg, err := b.proxyConfig("nginx", keyType)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(cfg.Dir, "nginx.conf")
	if err := writeTemplate(conf, nginxTemplate, cfg); err != nil {
		return nil, err
	}
	p, err := startProcess("nginx-"+keyType, b.opts.work, nil, bin, "-p", cfg.Dir, "-c", conf, "-e", filepath.Join(cfg.Dir, "error.log"))
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	t := b.tlsTarget("nginx", cfg.Listen, p)
	return t, b.waitReady(ctx, t, p)
}

func (b *bench) startHAProxy(ctx context.Context, keyType string) (*target, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		b.skip("haproxy", "HAProxy is not installed (apt-get install haproxy)")
		return nil, nil
	}
	cfg, err := b.proxyConfig("haproxy", keyType)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(cfg.Dir, "haproxy.cfg")
	if err := writeTemplate(conf, haproxyTemplate, cfg); err != nil {
		return nil, err
	}
	p, err := startProcess("haproxy-"+keyType, b.opts.work, nil, bin, "-db", "-f", conf)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	t := b.tlsTarget("haproxy", cfg.Listen, p)
	return t, b.waitReady(ctx, t, p)
}

// startDockmoat runs "dockmoat serve" from the state directory for keyType.
func (b *bench) startDockmoat(ctx context.Context, keyType string) (*target, error) {
	if b.opts.dockmoat == "" {
		b.skip("dockmoat", "no dockmoat binary given (-dockmoat)")
		return nil, nil
	}
	return b.startDockmoatBinary(ctx, b.opts.dockmoat, keyType, nil)
}

func (b *bench) startDockmoatBinary(ctx context.Context, bin, keyType string, env []string) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	name := "dockmoat-" + keyType
	if len(env) > 0 {
		name += "-pprof"
	}
	p, err := startProcess(name, b.opts.work, env, bin, "serve",
		"--dir", b.opts.dockmoatDirs[keyType],
		"--listen", addr,
		"--docker", "unix://"+b.socket)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	t := b.tlsTarget("dockmoat", addr, p)
	return t, b.waitReady(ctx, t, p)
}

// waitReady polls GET /_ping on t until it returns 200, p exits, or 60 s
// pass.
func (b *bench) waitReady(ctx context.Context, t *target, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited during start; its log ends with:\n%s", p.name, p.tail())
		}
		if last = pingOnce(ctx, t); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not respond to /_ping on %s within 60 s: %v; see its log in the work folder", t.name, t.addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *bench) stopProxies() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].stop(15 * time.Second)
	}
	b.procs = nil
}
