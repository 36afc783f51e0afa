package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockertest"
)

// TestGatewayCore covers gateway behaviour that only a real dockerd shows.
// These are the raw stream dockerd sends to exec clients without an Upgrade
// header, the early header of POST /wait that docker run -d waits for,
// half-close through docker exec -i, and a second dockmoat up that reuses
// the state of the first.
func TestGatewayCore(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	direct := d.CLI(t)
	const image = "core-busybox"
	dockertest.BusyboxImage(t, direct, image)

	stateDir := filepath.Join(t.TempDir(), "state")
	gw, admin := startUp(t, d, stateDir)
	cli := dockertest.NewCLI(t, gw.Host, admin)

	cli.Must(t, "run", "-d", "--name", "core-sleeper", image, "sleep", "3600")
	t.Cleanup(func() { direct.Run(nil, "rm", "-f", "core-sleeper") })

	t.Run("run detached", func(t *testing.T) {
		cli.Timeout = 30 * time.Second
		out := cli.Must(t, "run", "-d", "--rm", image, "true")
		if len(out) != 64 {
			t.Errorf("docker run -d printed %q, want a 64-character container ID", out)
		}
	})
	t.Run("exec stdin half-close", func(t *testing.T) {
		r := cli.Run(strings.NewReader("hi\n"), "exec", "-i", "core-sleeper", "cat")
		if r.Err != nil {
			t.Fatalf("docker exec -i: %v\n%s", r.Err, r.Stderr)
		}
		if r.Stdout != "hi\n" {
			t.Errorf("output = %q, want %q", r.Stdout, "hi\n")
		}
	})
	t.Run("exec start without upgrade", func(t *testing.T) {
		testExecStartWithoutUpgrade(t, gw, admin)
	})
	t.Run("up again reuses state", func(t *testing.T) {
		again := startGatewayProcess(t, "up", d, stateDir)
		again.waitReady(t, admin)
		again.stop(t)
		log := again.Log()
		for _, want := range []string{"Using the CA in", `Using server certificate "gateway"`, "docker context create", "DOCKER_TLS_VERIFY=1"} {
			if !strings.Contains(log, want) {
				t.Errorf("second up output lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, "Issued") {
			t.Errorf("second up issued a certificate, want everything reused:\n%s", log)
		}
	})
}

// testExecStartWithoutUpgrade starts an exec the way clients from before the
// upgrade handshake did. dockerd then responds with 200 and a raw stream on
// the same connection, and the gateway must still pipe stdin and stdout.
func testExecStartWithoutUpgrade(t *testing.T, gw *gatewayProcess, bundle string) {
	httpClient := bundleHTTPClient(t, bundle)
	body := `{"AttachStdin":true,"AttachStdout":true,"Tty":true,"Cmd":["cat"]}`
	resp, err := httpClient.Post("https://"+gw.Addr+"/v1.41/containers/core-sleeper/exec",
		"application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("exec create: status %d, id %q", resp.StatusCode, created.ID)
	}

	conn, err := tls.Dial("tcp", gw.Addr, bundleTLSConfig(t, bundle))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	start := `{"Detach":false,"Tty":true}`
	io.WriteString(conn, "POST /v1.41/exec/"+created.ID+"/start HTTP/1.1\r\nHost: docker\r\n"+
		"Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(start))+"\r\n\r\n"+start)
	br := bufio.NewReader(conn)
	head, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if head.StatusCode != http.StatusOK {
		t.Fatalf("exec start status = %d, want 200", head.StatusCode)
	}
	if ct := head.Header.Get("Content-Type"); ct != "application/vnd.docker.raw-stream" {
		t.Errorf("Content-Type = %q, want application/vnd.docker.raw-stream", ct)
	}
	io.WriteString(conn, "ping-through-raw-stream\n")
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read echoed line: %v", err)
	}
	if !strings.Contains(line, "ping-through-raw-stream") {
		t.Errorf("echoed line = %q, want the line sent", line)
	}
	// Ctrl-D on the terminal ends cat and so the stream.
	io.WriteString(conn, "\x04")
	if _, err := io.ReadAll(br); err != nil && !os.IsTimeout(err) {
		t.Logf("end of stream: %v", err)
	}
}
