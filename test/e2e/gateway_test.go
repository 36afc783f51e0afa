package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// gatewaySuite is one private dockerd with one dockmoat up gateway in front
// of it, shared by the subtests of TestGateway.
type gatewaySuite struct {
	daemon *dockertest.Daemon
	// direct is a docker CLI on the daemon's unix socket, for setup and for
	// checks that must not depend on the gateway.
	direct *dockertest.CLI
	gw     *gatewayProcess
	// admin is the folder with the admin client's ca.pem, cert.pem and
	// key.pem, and cli a docker CLI through the gateway with it.
	admin string
	cli   *dockertest.CLI
	// image is a busybox image built FROM scratch.
	image string
}

// suiteHeaderTimeout is the suite gateway's --header-timeout, short so that
// the test of a silent client is quick.
const suiteHeaderTimeout = 3 * time.Second

// TestGateway drives every everyday docker command, the moby Go client,
// rejected clients, live revocation and reload, audit, metrics, a dockerd
// restart and graceful shutdown through one gateway. Subtests that disturb
// the gateway or the daemon run last.
func TestGateway(t *testing.T) {
	s := newGatewaySuite(t)

	t.Run("version", s.testVersion)
	t.Run("info", s.testInfo)
	t.Run("moby client", s.testMobyClient)
	t.Run("build 100 MiB context", s.testBuildLargeContext)
	t.Run("run ps logs stop rm", s.testContainerLifecycle)
	t.Run("logs follow streams", s.testLogsFollow)
	t.Run("exec", s.testExec)
	t.Run("exec moby half-close", s.testExecMobyHalfClose)
	t.Run("attach", s.testAttach)
	t.Run("run stdin 16 MiB", s.testRunStdin)
	t.Run("cp both ways", s.testCopy)
	t.Run("save load rmi", s.testSaveLoad)
	t.Run("events", s.testEvents)
	t.Run("volume", s.testVolume)
	t.Run("network", s.testNetwork)
	t.Run("dockerfile image", s.testDockerfileImage)
	t.Run("daemon error passes through", s.testErrorPassthrough)
	t.Run("quiet streams outlive timeouts", s.testQuietStreams)

	t.Run("up prints connection", s.testUpOutput)
	t.Run("TLS versions ALPN timeout", s.testTLSSettings)
	t.Run("plain HTTP on TLS port", s.testPlainHTTP)
	t.Run("no client certificate", s.testNoClientCertificate)
	t.Run("certificate from other CA", s.testOtherCA)
	t.Run("client outside admin denied", s.testNonAdminDenied)
	t.Run("registry auth not logged", s.testRegistryAuthNotLogged)
	t.Run("audit records", s.testAuditRecords)
	t.Run("metrics", s.testMetrics)

	t.Run("live revocation", s.testRevocation)
	t.Run("certificate reload keeps exec", s.testCertificateReload)
	t.Run("graceful shutdown", s.testGracefulShutdown)
	t.Run("dockerd restart", s.testDockerdRestart)
}

func newGatewaySuite(t *testing.T) *gatewaySuite {
	d := dockertest.Start(t, dockertest.Options{})
	s := &gatewaySuite{
		daemon: d,
		direct: d.CLI(t),
		image:  "e2e-busybox",
	}
	dockertest.BusyboxImage(t, s.direct, s.image)

	stateDir := filepath.Join(t.TempDir(), "state")
	s.gw, s.admin = startUp(t, d, stateDir, "--header-timeout", suiteHeaderTimeout.String())
	s.cli = dockertest.NewCLI(t, s.gw.Host, s.admin)
	// A command stuck in the gateway fails its subtest after a minute
	// instead of the default two, which keeps the file's run time bounded.
	s.cli.Timeout = time.Minute
	return s
}

// testUpOutput checks that dockmoat up printed where the admin bundle is
// and the three ways to connect with it.
func (s *gatewaySuite) testUpOutput(t *testing.T) {
	log := s.gw.Log()
	for _, want := range []string{
		s.admin,
		"docker --tlsverify --tlscacert=" + filepath.Join(s.admin, "ca.pem"),
		"-H " + s.gw.Host,
		"docker context create",
		"export DOCKER_HOST=" + s.gw.Host,
		"export DOCKER_TLS_VERIFY=1",
		"export DOCKER_CERT_PATH=" + s.admin,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("dockmoat up output does not contain %q\n%s", want, log)
		}
	}
}

// runContainer starts a detached container through the gateway and removes
// it through the socket when the test ends.
func (s *gatewaySuite) runContainer(t *testing.T, name string, args ...string) string {
	t.Helper()
	runArgs := append([]string{"run", "-d", "--name", name}, args...)
	id := s.cli.Must(t, runArgs...)
	t.Cleanup(func() { s.direct.Run(nil, "rm", "-f", name) })
	return id
}

// runSleeper starts a container that sleeps until removed.
func (s *gatewaySuite) runSleeper(t *testing.T, name string) string {
	t.Helper()
	return s.runContainer(t, name, s.image, "sleep", "3600")
}

func (s *gatewaySuite) testVersion(t *testing.T) {
	const format = "{{.Server.Version}} {{.Server.APIVersion}}"
	want := s.direct.Must(t, "version", "--format", format)
	if got := s.cli.Must(t, "version", "--format", format); got != want {
		t.Errorf("docker version through the gateway = %q, want %q as on the socket", got, want)
	}

	// Response headers pass through unchanged.
	direct := s.daemon.HTTPClient()
	defer direct.CloseIdleConnections()
	wantResp, err := direct.Get("http://docker/_ping")
	if err != nil {
		t.Fatal(err)
	}
	wantResp.Body.Close()
	resp, err := bundleHTTPClient(t, s.admin).Get("https://" + s.gw.Addr + "/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, header := range []string{"Api-Version", "Docker-Experimental", "Ostype"} {
		if got, want := resp.Header.Get(header), wantResp.Header.Get(header); got != want {
			t.Errorf("/_ping header %s = %q, want %q as on the socket", header, got, want)
		}
	}

	// A versioned path reaches the daemon with its prefix.
	apiVersion := wantResp.Header.Get("Api-Version")
	resp, err = bundleHTTPClient(t, s.admin).Get("https://" + s.gw.Addr + "/v" + apiVersion + "/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var version struct{ ApiVersion string }
	if err := json.NewDecoder(resp.Body).Decode(&version); err != nil {
		t.Fatalf("decode /v%s/version: %v", apiVersion, err)
	}
	if resp.StatusCode != http.StatusOK || version.ApiVersion != apiVersion {
		t.Errorf("GET /v%s/version = %s with ApiVersion %q, want 200 with %q",
			apiVersion, resp.Status, version.ApiVersion, apiVersion)
	}
}

func (s *gatewaySuite) testInfo(t *testing.T) {
	const format = "{{.ID}} {{.DockerRootDir}}"
	want := s.direct.Must(t, "info", "--format", format)
	if got := s.cli.Must(t, "info", "--format", format); got != want {
		t.Errorf("docker info through the gateway = %q, want %q", got, want)
	}
}

// testMobyClient checks that the moby Go client negotiates down to the
// daemon's API version through the gateway and that calls work at it.
func (s *gatewaySuite) testMobyClient(t *testing.T) {
	ctx := commandContext(t, time.Minute)
	wantAPI := s.direct.Must(t, "version", "--format", "{{.Server.APIVersion}}")
	c := mobyClient(t, s.gw.Host, s.admin)

	version, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if version.APIVersion != wantAPI {
		t.Errorf("ServerVersion APIVersion = %q, want %q", version.APIVersion, wantAPI)
	}
	if got := c.ClientVersion(); got != wantAPI {
		t.Errorf("negotiated client API version = %q, want %q", got, wantAPI)
	}

	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if want := s.direct.Must(t, "info", "--format", "{{.ID}}"); info.Info.ID != want {
		t.Errorf("Info ID = %q, want %q", info.Info.ID, want)
	}

	id := s.runSleeper(t, "e2e-moby-list")
	list, err := c.ContainerList(ctx, client.ContainerListOptions{
		Filters: make(client.Filters).Add("id", id),
	})
	if err != nil {
		t.Fatalf("ContainerList: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].ID != id {
		t.Errorf("ContainerList by id = %+v, want the one container %s", list.Items, id)
	}

	images, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatalf("ImageList: %v", err)
	}
	found := false
	for _, image := range images.Items {
		for _, tag := range image.RepoTags {
			found = found || tag == s.image+":latest"
		}
	}
	if !found {
		t.Errorf("ImageList has no %s:latest: %+v", s.image, images.Items)
	}
}

// writeRandomFile writes size pseudo-random bytes to path and returns their
// SHA-256 in hex. Random data keeps compression in any layer from hiding a
// truncated transfer.
func writeRandomFile(t testing.TB, path string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hash := sha256.New()
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	if _, err := io.CopyN(io.MultiWriter(f, hash), src, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(hash.Sum(nil))
}

func randomBytes(size int, seed uint64) []byte {
	data := make([]byte, size)
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 0xe2})
	_, _ = src.Read(data)
	return data
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// testBuildLargeContext builds from a 100 MiB context through the gateway
// and checks inside the image that every byte arrived.
func (s *gatewaySuite) testBuildLargeContext(t *testing.T) {
	dir := t.TempDir()
	want := writeRandomFile(t, filepath.Join(dir, "big.bin"), 100<<20, 1)
	dockerfile := "FROM " + s.image + "\n" +
		"COPY big.bin /big.bin\n" +
		"RUN sha256sum /big.bin > /big.sha256 && rm /big.bin\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	const tag = "e2e-big-context"
	t.Cleanup(func() { s.direct.Run(nil, "rmi", "-f", tag) })

	// The build took 2 s on an idle 2-core machine and 19 s while other
	// test suites ran, so it gets more time than the other commands.
	slow := *s.cli
	slow.Timeout = 3 * time.Minute
	start := time.Now()
	slow.Must(t, "build", "-q", "-t", tag, dir)
	t.Logf("build with a 100 MiB context took %s", time.Since(start).Round(time.Millisecond))

	out := s.cli.Must(t, "run", "--rm", tag, "cat", "/big.sha256")
	if got := strings.Fields(out); len(got) == 0 || got[0] != want {
		t.Errorf("sha256 of the context file inside the image = %q, want %s", out, want)
	}
}

func (s *gatewaySuite) testContainerLifecycle(t *testing.T) {
	const name = "e2e-lifecycle"
	id := s.runContainer(t, name, s.image, "sh", "-c", "echo started; exec sleep 3600")

	ps := s.cli.Must(t, "ps", "--no-trunc", "--filter", "id="+id, "--format", "{{.ID}} {{.Names}} {{.Status}}")
	if fields := strings.Fields(ps); len(fields) < 3 || fields[0] != id || fields[1] != name || fields[2] != "Up" {
		t.Errorf("docker ps = %q, want %q followed by %q and an Up status", ps, id, name)
	}

	deadline := time.Now().Add(10 * time.Second)
	logs := s.cli.Must(t, "logs", name)
	for logs != "started" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		logs = s.cli.Must(t, "logs", name)
	}
	if logs != "started" {
		t.Errorf("docker logs = %q, want %q", logs, "started")
	}

	if got := s.cli.Must(t, "stop", "-t", "1", name); got != name {
		t.Errorf("docker stop printed %q, want %q", got, name)
	}
	if got := s.cli.Must(t, "inspect", "--format", "{{.State.Status}}", name); got != "exited" {
		t.Errorf("state after docker stop = %q, want exited", got)
	}
	if got := s.cli.Must(t, "rm", name); got != name {
		t.Errorf("docker rm printed %q, want %q", got, name)
	}
	if got := s.direct.Must(t, "ps", "-a", "-q", "--filter", "id="+id); got != "" {
		t.Errorf("docker ps -a on the socket after rm = %q, want nothing", got)
	}
}

// testLogsFollow checks that docker logs -f delivers each line while the
// container is still running. The container prints the next line only after
// the test has read the previous one, so buffering in the gateway would
// stall the test.
func (s *gatewaySuite) testLogsFollow(t *testing.T) {
	const name = "e2e-logs-follow"
	// The busybox image has no /tmp, so the files live in /.
	script := "echo ready; while :; do " +
		"if [ -f /line ]; then cat /line; rm /line; fi; sleep 0.05; done"
	s.runContainer(t, name, s.image, "sh", "-c", script)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := s.cli.Command(ctx, "logs", "-f", name)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- follow.Wait() }()
	lines := lineReader(stdout)

	waitLine(t, lines, "ready", 10*time.Second)
	for _, want := range []string{"line-1", "line-2", "line-3"} {
		s.cli.Must(t, "exec", name, "sh", "-c", "echo "+want+" > /line.new && mv /line.new /line")
		waitLine(t, lines, want, 5*time.Second)
	}
	select {
	case err := <-exited:
		t.Errorf("docker logs -f ended while the container runs: %v\n%s", err, stderr.String())
	default:
	}
}

// testExec runs docker exec in the four combinations of -i and -t, and
// docker run -it. The -t cases need a terminal on the client side, which
// script(1) provides.
func (s *gatewaySuite) testExec(t *testing.T) {
	dockertest.Require(t, "script")
	const name = "e2e-exec"
	s.runSleeper(t, name)

	tests := []struct {
		name  string
		args  string
		stdin string
		tty   bool
		// want is a line that the output must contain.
		want string
	}{
		{name: "no stdin no tty", args: "exec " + name + " echo hi", want: "hi"},
		{name: "stdin", args: "exec -i " + name + " cat", stdin: "hi from stdin\n", want: "hi from stdin"},
		{name: "tty", args: "exec -t " + name + " sh -c 'tty >/dev/null && echo is-a-tty'", tty: true, want: "is-a-tty"},
		{name: "stdin and tty", args: "exec -it " + name + " sh", stdin: "echo abc$((1+2))\nexit\n", tty: true, want: "abc3"},
		// docker run -it attaches before it starts the container, so a
		// proxy that holds back the attach or wait response hangs here.
		{name: "run stdin and tty", args: "run -it --rm " + s.image + " sh", stdin: "echo run$((2+2))\nexit\n", tty: true, want: "run4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := commandContext(t, time.Minute)
			// The command line goes through a shell, so quoting in args
			// applies as typed.
			shellArgs := []string{"sh", "-c", "docker " + tt.args}
			if tt.tty {
				shellArgs = []string{"script", "-qec", "docker " + tt.args, "/dev/null"}
			}
			cmd := s.cli.Command(ctx)
			path, err := exec.LookPath(shellArgs[0])
			if err != nil {
				t.Fatal(err)
			}
			cmd.Path = path
			cmd.Args = shellArgs
			cmd.Stdin = strings.NewReader(tt.stdin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("docker %s: %v\n%s", tt.args, err, out)
			}
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				found = found || strings.TrimRight(line, "\r") == tt.want
			}
			if !found {
				t.Errorf("docker %s printed %q, want a line %q", tt.args, out, tt.want)
			}
		})
	}
}

// testExecMobyHalfClose writes to an exec session with the moby client,
// closes the write side and expects the output that only EOF on stdin
// produces.
func (s *gatewaySuite) testExecMobyHalfClose(t *testing.T) {
	const name = "e2e-exec-moby"
	id := s.runSleeper(t, name)
	ctx := commandContext(t, time.Minute)
	c := mobyClient(t, s.gw.Host, s.admin)

	created, err := c.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd:          []string{"wc", "-c"},
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		t.Fatalf("ExecCreate: %v", err)
	}
	attached, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("ExecAttach: %v", err)
	}
	defer attached.Close()
	input := randomBytes(1<<20, 7)
	if _, err := attached.Conn.Write(input); err != nil {
		t.Fatalf("write exec stdin: %v", err)
	}
	if err := attached.CloseWrite(); err != nil {
		t.Fatalf("close exec stdin: %v", err)
	}
	_ = attached.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, attached.Reader); err != nil {
		t.Fatalf("read exec output: %v (stdout %q, stderr %q)", err, stdout.String(), stderr.String())
	}
	if got, want := strings.TrimSpace(stdout.String()), "1048576"; got != want {
		t.Errorf("wc -c of 1 MiB sent to exec stdin printed %q, want %q (stderr %q)", got, want, stderr.String())
	}
}

// testAttach attaches to a container that waits for a line on stdin. The
// docker CLI stops reading output once its stdin ends, so stdin stays open
// until the reply has arrived.
func (s *gatewaySuite) testAttach(t *testing.T) {
	const name = "e2e-attach"
	s.runContainer(t, name, "-i", s.image, "sh", "-c", "read line; echo got-$line")
	ctx := commandContext(t, time.Minute)
	attach := s.cli.Command(ctx, "attach", name)
	stdin, err := attach.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := attach.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	attach.Stderr = &stderr
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	lines := lineReader(stdout)
	if _, err := io.WriteString(stdin, "ping\n"); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "got-ping", 10*time.Second)
	stdin.Close()
	if err := attach.Wait(); err != nil {
		t.Errorf("docker attach ended with %v after the container exited\n%s", err, stderr.String())
	}
}

// testRunStdin sends 16 MiB through docker run -i and compares the hash the
// container computes with the local one.
func (s *gatewaySuite) testRunStdin(t *testing.T) {
	input := randomBytes(16<<20, 3)
	r := s.cli.Run(bytes.NewReader(input), "run", "-i", "--rm", s.image, "sha256sum")
	if r.Err != nil {
		t.Fatalf("docker run -i: %v\nstderr: %s", r.Err, r.Stderr)
	}
	want := sha256Hex(input)
	if got := strings.Fields(r.Stdout); len(got) == 0 || got[0] != want {
		t.Errorf("sha256sum of 16 MiB stdin inside the container = %q, want %s", r.Stdout, want)
	}
}

func (s *gatewaySuite) testCopy(t *testing.T) {
	const name = "e2e-cp"
	s.runSleeper(t, name)
	dir := t.TempDir()
	local := filepath.Join(dir, "in.bin")
	want := writeRandomFile(t, local, 4<<20, 5)

	s.cli.Must(t, "cp", local, name+":/in.bin")
	out := s.cli.Must(t, "exec", name, "sha256sum", "/in.bin")
	if got := strings.Fields(out); len(got) == 0 || got[0] != want {
		t.Errorf("sha256sum after docker cp into the container = %q, want %s", out, want)
	}

	back := filepath.Join(dir, "back")
	if err := os.Mkdir(back, 0o755); err != nil {
		t.Fatal(err)
	}
	s.cli.Must(t, "cp", name+":/in.bin", back)
	data, err := os.ReadFile(filepath.Join(back, "in.bin"))
	if err != nil {
		t.Fatalf("docker cp out of the container wrote no file: %v", err)
	}
	if got := sha256Hex(data); got != want {
		t.Errorf("sha256 of the file copied back = %s, want %s", got, want)
	}
}

// testSaveLoad saves an image, removes it with rmi, loads it again and
// checks that its ID survived the round trip.
func (s *gatewaySuite) testSaveLoad(t *testing.T) {
	const tag = "e2e-save:v1"
	s.cli.Must(t, "tag", s.image, tag)
	t.Cleanup(func() { s.direct.Run(nil, "rmi", "-f", tag) })
	wantID := s.cli.Must(t, "image", "inspect", "--format", "{{.ID}}", tag)

	archive := filepath.Join(t.TempDir(), "image.tar")
	s.cli.Must(t, "save", "-o", archive, tag)
	info, err := os.Stat(archive)
	if err != nil {
		t.Fatalf("docker save wrote no archive: %v", err)
	}
	if info.Size() < 512<<10 {
		t.Errorf("saved archive has %d bytes, want at least the size of busybox", info.Size())
	}

	if out := s.cli.Must(t, "rmi", tag); !strings.Contains(out, "Untagged: "+tag) {
		t.Errorf("docker rmi printed %q, want it to contain %q", out, "Untagged: "+tag)
	}
	if r := s.direct.Run(nil, "image", "inspect", tag); r.Err == nil {
		t.Fatalf("image %s still present after docker rmi", tag)
	}

	if out := s.cli.Must(t, "load", "-i", archive); !strings.Contains(out, "Loaded image: "+tag) {
		t.Errorf("docker load printed %q, want it to contain %q", out, "Loaded image: "+tag)
	}
	if got := s.direct.Must(t, "image", "inspect", "--format", "{{.ID}}", tag); got != wantID {
		t.Errorf("image ID after load = %s, want %s", got, wantID)
	}
}

// testEvents follows the event stream with the moby client while the docker
// CLI creates a volume, then reads the same event back with a bounded
// docker events.
func (s *gatewaySuite) testEvents(t *testing.T) {
	const volume = "e2e-events-volume"
	since := time.Now().Add(-time.Second).Unix()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := mobyClient(t, s.gw.Host, s.admin)
	// Events returns once the response header has arrived, so the
	// subscription is in place before the volume is created.
	stream := c.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type", "volume"),
	})
	s.cli.Must(t, "volume", "create", volume)
	t.Cleanup(func() { s.direct.Run(nil, "volume", "rm", "-f", volume) })

	select {
	case msg := <-stream.Messages:
		if msg.Action != "create" || msg.Actor.ID != volume {
			t.Errorf("first volume event = %s %s, want create %s", msg.Action, msg.Actor.ID, volume)
		}
	case err := <-stream.Err:
		t.Fatalf("event stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no volume event within 10 s")
	}

	until := time.Now().Unix() + 1
	out := s.cli.Must(t, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(until, 10),
		"--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}")
	if !strings.Contains(out, "create "+volume) {
		t.Errorf("docker events printed %q, want a line %q", out, "create "+volume)
	}
}

func (s *gatewaySuite) testVolume(t *testing.T) {
	const name = "e2e-volume"
	if got := s.cli.Must(t, "volume", "create", name); got != name {
		t.Errorf("docker volume create printed %q, want %q", got, name)
	}
	t.Cleanup(func() { s.direct.Run(nil, "volume", "rm", "-f", name) })
	if got := s.cli.Must(t, "volume", "ls", "-q", "--filter", "name="+name); got != name {
		t.Errorf("docker volume ls = %q, want %q", got, name)
	}
	if got := s.cli.Must(t, "volume", "rm", name); got != name {
		t.Errorf("docker volume rm printed %q, want %q", got, name)
	}
	if got := s.direct.Must(t, "volume", "ls", "-q", "--filter", "name="+name); got != "" {
		t.Errorf("docker volume ls on the socket after rm = %q, want nothing", got)
	}
}

// testNetwork creates an internal bridge network, which adds a Linux bridge
// to the host until it is removed. No container joins it and dockerd runs
// without iptables rules, so it carries no traffic.
func (s *gatewaySuite) testNetwork(t *testing.T) {
	const name = "e2e-network"
	id := s.cli.Must(t, "network", "create", "--internal", name)
	t.Cleanup(func() { s.direct.Run(nil, "network", "rm", name) })
	if len(id) != 64 {
		t.Errorf("docker network create printed %q, want a 64-digit network ID", id)
	}
	ls := s.cli.Must(t, "network", "ls", "--no-trunc", "--filter", "name="+name, "--format", "{{.ID}} {{.Name}}")
	if ls != id+" "+name {
		t.Errorf("docker network ls = %q, want %q", ls, id+" "+name)
	}
	if got := s.cli.Must(t, "network", "rm", name); got != name {
		t.Errorf("docker network rm printed %q, want %q", got, name)
	}
	if got := s.direct.Must(t, "network", "ls", "-q", "--filter", "name="+name); got != "" {
		t.Errorf("docker network ls on the socket after rm = %q, want nothing", got)
	}
}
