package main

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	start, end time.Time
	// loadStart and loadEnd are /proc/loadavg when the run started and
	// ended, because other work on the machine skews every number.
	loadStart, loadEnd string
	machine            []string
	targets            []string
	skipped            map[string]string
	// failures maps "measurement: target" to the error that stopped it.
	failures map[string]string

	keepAlive map[int]map[string]*rateStat
	newConn   map[string]map[string]*rateStat
	export    map[string]*transferStat
	upload    map[string]*transferStat
	exec      map[string]*rateStat
	idleMem   map[string]*memoryStat
	eventMem  map[string]*memoryStat

	goBench    string
	profiles   []profileResult
	profileErr string
}

// baseline is the target every ratio is relative to.
const baseline = "dockerd-tls"

// analysisHeading starts the hand-written part of the results page. A new
// run keeps that part of the old page and regenerates everything above it.
const analysisHeading = "## Where the time goes"

// describeMachine returns one line per fact about the machine and the
// software under test.
func describeMachine() []string {
	lines := []string{
		fmt.Sprintf("CPU: %d × %s", runtime.NumCPU(), cpuModel()),
		"memory: " + memTotal(),
		"kernel: " + strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		"benchmark client: " + runtime.Version(),
	}
	if path, err := exec.LookPath("dockerd"); err == nil {
		lines = append(lines, "dockerd: "+commandOutput(path, "--version")+", "+goVersionOf(path))
	}
	if path, err := exec.LookPath("nginx"); err == nil {
		lines = append(lines, "nginx: "+commandOutput(path, "-v"))
	}
	if path, err := exec.LookPath("haproxy"); err == nil {
		first, _, _ := strings.Cut(commandOutput(path, "-v"), "\n")
		lines = append(lines, "HAProxy: "+first)
	}
	if path, err := exec.LookPath("openssl"); err == nil {
		lines = append(lines, "OpenSSL (used by nginx and HAProxy): "+commandOutput(path, "version"))
	}
	return lines
}

func (b *bench) describeDockmoat() string {
	if b.opts.dockmoat == "" {
		return ""
	}
	return "dockmoat: " + goVersionOf(b.opts.dockmoat)
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	fields := strings.Fields(readFile("/proc/loadavg"))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU model"
}

func memTotal() string {
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
			}
		}
	}
	return "unknown"
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func commandOutput(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(%s %s failed: %v)", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func goVersionOf(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "Go version unknown"
	}
	return "built with " + info.GoVersion
}

// readGoBench returns the content of the 'go test -bench' output file.
func readGoBench(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(could not read %s: %v)", path, err)
	}
	return strings.TrimSpace(string(data))
}

// writeReport renders the results page and keeps the hand-written analysis
// of the previous page.
func (b *bench) writeReport() error {
	var w bytes.Buffer
	r := &b.results
	b.writeHeader(&w)
	b.writeTargets(&w)
	r.writeKeepAlive(&w)
	r.writeNewConns(&w)
	r.writeTransfers(&w)
	r.writeExec(&w)
	b.writeMemory(&w)
	r.writeGoBench(&w)
	r.writeProfiles(&w)
	old := readFile(b.opts.out)
	if i := strings.Index(old, "\n"+analysisHeading); i >= 0 {
		w.WriteString(old[i:])
	}
	return os.WriteFile(b.opts.out, w.Bytes(), 0o644)
}

func (b *bench) writeHeader(w *bytes.Buffer) {
	r := &b.results
	fmt.Fprintf(w, "# Benchmark results\n\n")
	fmt.Fprintf(w, "dockmoat compared with dockerd's own TLS listener (`--tlsverify` on 127.0.0.1), "+
		"the daemon's unix socket (the floor), and nginx and HAProxy as mutual-TLS proxies to that socket. "+
		"Every target fronts the same private dockerd, and client, proxy and dockerd share the machine's cores. "+
		"Ratios are relative to `%s` in the same run. `tls-pipe` is the benchmark's own Go process "+
		"(`bench tls-pipe`, bench/pipe.go) that terminates mutual TLS and copies bytes to a new socket connection "+
		"per client connection, with no HTTP parsing, authorization or logging: little more than any proxy "+
		"in its own process must do, so it approximates the floor that the proxy hop itself costs. "+
		"`tls-pipe-x25519` is the same with X25519 as its only key exchange group, measured for new connections only. "+
		"bench/run generates everything above the section \"%s\", which is written by hand.\n\n",
		baseline, strings.TrimPrefix(analysisHeading, "## "))

	fmt.Fprintf(w, "- date: %s (%s total)\n", r.start.UTC().Format("2006-01-02 15:04 MST"), r.end.Sub(r.start).Round(time.Second))
	fmt.Fprintf(w, "- command: `%s`\n", b.opts.command)
	fmt.Fprintf(w, "- settings: %s per rate measurement, %d rounds with targets in rotating order, "+
		"%d MiB image and build context, %d exec round trips per round, %d connections for memory\n",
		b.opts.duration, b.opts.rounds, b.opts.blobMiB, b.opts.execTrip, b.opts.memConns)
	fmt.Fprintf(w, "- load average (1, 5, 15 min): %s at the start, %s at the end; "+
		"anything else running on the machine shifts every number\n", r.loadStart, r.loadEnd)
	for _, line := range r.machine {
		fmt.Fprintf(w, "- %s\n", line)
	}
	if d := b.describeDockmoat(); d != "" {
		fmt.Fprintf(w, "- %s\n", d)
	}
	for _, name := range sortedKeys(r.skipped) {
		fmt.Fprintf(w, "- **%s skipped**: %s\n", name, r.skipped[name])
	}
	for _, name := range sortedKeys(r.failures) {
		fmt.Fprintf(w, "- **failed, %s**: %s\n", name, r.failures[name])
	}
	w.WriteString("\n")
}

// verdict is one row of the targets table.
type verdict struct {
	what, want, got string
	met             bool
	measured        bool
}

func (b *bench) writeTargets(w *bytes.Buffer) {
	r := &b.results
	const name = "dockmoat"
	var rows []verdict
	ka := r.keepAlive[8]
	rows = append(rows, ratioVerdict("keep-alive /_ping rate, concurrency 8", ">= 0.85",
		ka[name].rate(), ka[baseline].rate(), "req/s", func(x float64) bool { return x >= 0.85 }))
	for _, key := range []string{keyECDSA, keyRSA} {
		nc := r.newConn[key]
		rows = append(rows, ratioVerdict("new-connection rate, "+keyLabel(key), ">= 1.0",
			nc[name].rate(), nc[baseline].rate(), "conn/s", func(x float64) bool { return x >= 1.0 }))
	}
	rows = append(rows,
		ratioVerdict("image export throughput", ">= 0.95",
			r.export[name].mibPerSecond(), r.export[baseline].mibPerSecond(), "MiB/s", func(x float64) bool { return x >= 0.95 }),
		ratioVerdict("build context upload throughput", ">= 0.95",
			r.upload[name].mibPerSecond(), r.upload[baseline].mibPerSecond(), "MiB/s", func(x float64) bool { return x >= 0.95 }))

	execRow := verdict{what: "exec round trip p50", want: "<= dockerd-tls + 50 µs"}
	if r.exec[name] != nil && r.exec[baseline] != nil {
		got, base := r.exec[name].percentile(50), r.exec[baseline].percentile(50)
		execRow.measured = true
		execRow.met = got-base <= 50*time.Microsecond
		execRow.got = fmt.Sprintf("%s vs %s (%+.1f µs)", fmtDuration(got), fmtDuration(base), float64(got-base)/1e3)
	}
	rows = append(rows, execRow)

	memRow := verdict{what: "resident memory per idle connection", want: "<= 30 KiB"}
	if m := r.idleMem[name]; m != nil {
		memRow.measured = true
		memRow.met = m.perConnKiB() <= 30 && m.alive == m.conns
		memRow.got = fmt.Sprintf("%.1f KiB (%d of %d connections still open)", m.perConnKiB(), m.alive, m.conns)
	}
	rows = append(rows, memRow, goBenchVerdict(r.goBench))

	fmt.Fprintf(w, "## Targets\n\n")
	fmt.Fprintf(w, "| measurement | target | dockmoat | result |\n|---|---|---|---|\n")
	for _, row := range rows {
		result := "not measured"
		if row.measured && row.met {
			result = "met"
		} else if row.measured {
			result = "**not met**"
		}
		got := row.got
		if got == "" {
			got = "-"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", row.what, row.want, got, result)
	}
	w.WriteString("\n")
}

func ratioVerdict(what, want string, got, base float64, unit string, ok func(float64) bool) verdict {
	v := verdict{what: what, want: want + " of " + baseline}
	if got <= 0 || base <= 0 {
		return v
	}
	ratio := got / base
	v.measured = true
	v.met = ok(ratio)
	// Three decimals, so that a ratio just under a target such as 0.95
	// does not print as the target itself.
	v.got = fmt.Sprintf("%.3f (%.0f vs %.0f %s)", ratio, got, base, unit)
	return v
}

// goBenchLine matches one result line of 'go test -bench'.
var goBenchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// goBenchVerdict checks the policy decision benchmarks for a typical
// container create body: every benchmark named BenchmarkDecide... that
// mentions "create" must be under 10 µs. The decode benchmarks measure parts
// of a decision or the full moby decode, which a decision no longer runs.
func goBenchVerdict(output string) verdict {
	v := verdict{what: "policy decision + inspection of a create body", want: "< 10 µs"}
	var worst float64
	var worstName string
	for _, line := range strings.Split(output, "\n") {
		m := goBenchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || !strings.HasPrefix(m[1], "BenchmarkDecide") ||
			!strings.Contains(strings.ToLower(m[1]), "create") {
			continue
		}
		ns, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		if ns > worst {
			worst, worstName = ns, m[1]
		}
	}
	if worstName == "" {
		return v
	}
	v.measured = true
	v.met = worst < 10_000
	v.got = fmt.Sprintf("%.2f µs (%s)", worst/1e3, worstName)
	return v
}

func keyLabel(key string) string {
	if key == keyRSA {
		return "RSA 4096 server key"
	}
	return "ECDSA P-256 server key"
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

func ratioText(got, base float64) string {
	if got <= 0 || base <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", got/base)
}

func (r *results) writeKeepAlive(w *bytes.Buffer) {
	fmt.Fprintf(w, "## Keep-alive GET /_ping\n\n")
	fmt.Fprintf(w, "Each client keeps one connection open and sends the next request when the previous response has arrived.\n\n")
	fmt.Fprintf(w, "| concurrency | target | requests/s | ratio | p50 | p99 | %s | errors |\n|---|---|---|---|---|---|---|---|\n", cpuHeader)
	for _, c := range keepAliveConcurrency {
		stats := r.keepAlive[c]
		for _, name := range r.targets {
			s := stats[name]
			if s == nil {
				continue
			}
			fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %s | %s | %s |\n", c, name, s.rate(),
				ratioText(s.rate(), stats[baseline].rate()), fmtDuration(s.percentile(50)),
				fmtDuration(s.percentile(99)), cpuText(name, s), errorText(s))
		}
	}
	w.WriteString("\n")
}

// cpuHeader names the CPU column of the rate tables.
const cpuHeader = "CPU µs per request: target + dockerd"

// cpuText returns the CPU time per request of the target's process and of
// dockerd, from /proc/PID/stat with its 10 ms resolution. For the unix
// socket and dockerd-tls the target is dockerd, so there is one number.
func cpuText(name string, s *rateStat) string {
	if name == "unix" || name == baseline {
		return fmt.Sprintf("%.0f", s.cpuPerRequest(s.dockerdCPU))
	}
	return fmt.Sprintf("%.0f + %.0f", s.cpuPerRequest(s.targetCPU), s.cpuPerRequest(s.dockerdCPU))
}

func errorText(s *rateStat) string {
	if s.errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (first: %s)", s.errors, s.firstErr)
}

func (r *results) writeNewConns(w *bytes.Buffer) {
	fmt.Fprintf(w, "## New connections\n\n")
	fmt.Fprintf(w, "%d clients in parallel each connect, make a full TLS handshake with a client certificate "+
		"(no session resumption), send one GET /_ping with `Connection: close` and disconnect. "+
		"The client key is ECDSA P-256 in both runs. The unix socket row has no TLS. "+
		"dockerd reads its certificate only at start, so it is restarted with the RSA certificate "+
		"(same data root) for the RSA rows.\n\n", newConnConcurrency)
	fmt.Fprintf(w, "| server key | target | connections/s | ratio | p50 | key exchange | %s | errors |\n|---|---|---|---|---|---|---|---|\n", cpuHeader)
	for _, key := range []string{keyECDSA, keyRSA} {
		stats := r.newConn[key]
		for _, name := range r.targets {
			s := stats[name]
			if s == nil {
				continue
			}
			curve := s.curve
			if curve == "" {
				curve = "-"
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %s | %s |\n", keyLabel(key), name, s.rate(),
				ratioText(s.rate(), stats[baseline].rate()), fmtDuration(s.percentile(50)), curve,
				cpuText(name, s), errorText(s))
		}
	}
	w.WriteString("\n")
}

func (r *results) writeTransfers(w *bytes.Buffer) {
	fmt.Fprintf(w, "## Image export and build context upload\n\n")
	fmt.Fprintf(w, "Export is `GET /images/{name}/get` of an image whose only layer is a file of random bytes. "+
		"Upload is `POST /build` of a context with a file of random bytes and a Dockerfile that does not use it; "+
		"its time runs until the build output ends, so it includes the daemon unpacking the context.\n\n")
	fmt.Fprintf(w, "| target | export MiB/s | ratio | upload MiB/s | ratio |\n|---|---|---|---|---|\n")
	for _, name := range r.targets {
		e, u := r.export[name], r.upload[name]
		if e == nil && u == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %.0f | %s |\n", name,
			e.mibPerSecond(), ratioText(e.mibPerSecond(), r.export[baseline].mibPerSecond()),
			u.mibPerSecond(), ratioText(u.mibPerSecond(), r.upload[baseline].mibPerSecond()))
	}
	w.WriteString("\n")
}

func (r *results) writeExec(w *bytes.Buffer) {
	fmt.Fprintf(w, "## Exec round trip\n\n")
	fmt.Fprintf(w, "`cat` runs through `POST /exec/{id}/start` on a hijacked connection without a TTY; "+
		"one round trip is a 32-byte line written to its stdin until the same line is read back from its stdout.\n\n")
	fmt.Fprintf(w, "| target | round trips | p50 | p99 | p50 minus %s |\n|---|---|---|---|---|\n", baseline)
	for _, name := range r.targets {
		s := r.exec[name]
		if s == nil {
			continue
		}
		delta := "-"
		if base := r.exec[baseline]; base != nil {
			delta = fmt.Sprintf("%+.1f µs", float64(s.percentile(50)-base.percentile(50))/1e3)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", name, s.requests,
			fmtDuration(s.percentile(50)), fmtDuration(s.percentile(99)), delta)
	}
	w.WriteString("\n")
}

func (b *bench) writeMemory(w *bytes.Buffer) {
	r := &b.results
	fmt.Fprintf(w, "## Resident memory\n\n")
	fmt.Fprintf(w, "VmRSS of the process that terminates TLS (summed over nginx's master and workers; "+
		"dockerd itself for the unix socket and dockerd-tls), %s after %d connections were opened, "+
		"minus VmRSS before. Idle connections made one /_ping each. Event streams are open `GET /events` "+
		"requests; once all are open, the benchmark creates and removes a volume, so every stream carries "+
		"events, and checks that each answered 200. \"open\" counts the connections the target had not closed "+
		"when memory was read. The proxies are started afresh for each of the two loads; dockerd is not, "+
		"so its figures may reuse memory that earlier loads freed and read low.\n\n", memorySettle, b.opts.memConns)
	fmt.Fprintf(w, "| target | idle: before → with | per connection | open | events: before → with | per stream | open |\n|---|---|---|---|---|---|---|\n")
	for _, name := range r.targets {
		idle, events := r.idleMem[name], r.eventMem[name]
		if idle == nil || events == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %s → %s | %.1f KiB | %d | %s → %s | %.1f KiB | %d |\n", name,
			mib(idle.before), mib(idle.after), idle.perConnKiB(), idle.alive,
			mib(events.before), mib(events.after), events.perConnKiB(), events.alive)
	}
	w.WriteString("\n")
	for _, name := range r.targets {
		if m := r.eventMem[name]; m != nil && m.note != "" {
			fmt.Fprintf(w, "- %s: %s.\n", name, m.note)
		}
	}
	w.WriteString("\n")
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func (r *results) writeGoBench(w *bytes.Buffer) {
	fmt.Fprintf(w, "## Go benchmarks: classification, policy decision, body inspection\n\n")
	if r.goBench == "" {
		fmt.Fprintf(w, "Not run.\n\n")
		return
	}
	fmt.Fprintf(w, "```\n%s\n```\n\n", r.goBench)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
