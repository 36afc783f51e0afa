package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// pipeCommand is the first argument that makes the benchmark binary run as
// the TLS pipe instead of as the benchmark.
const pipeCommand = "tls-pipe"

// runPipe is the "bench tls-pipe" command: a mutual-TLS listener that copies
// bytes between each client connection and a new connection to the Docker
// socket, with no HTTP parsing, no authorization and no logging. It does
// little more than any TLS-terminating proxy in its own process must do per
// request, so its rate approximates the ceiling for such proxies.
func runPipe(args []string) int {
	fs := flag.NewFlagSet(pipeCommand, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "TCP address to listen on")
	socket := fs.String("socket", "", "Docker unix socket to forward to")
	certDir := fs.String("cert-dir", "", "folder with ca.pem, server-cert.pem and server-key.pem")
	x25519 := fs.Bool("x25519", false, "offer only X25519 key exchange, which dockerd 20.10 (Go 1.19) negotiates, instead of Go's default groups")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *socket == "" || *certDir == "" {
		fmt.Fprintln(os.Stderr, "bench tls-pipe: -socket and -cert-dir are required")
		return 2
	}

	cfg, err := pipeTLSConfig(*certDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench tls-pipe: %v\n", err)
		return 1
	}
	if *x25519 {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	l, err := tls.Listen("tcp", *listen, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench tls-pipe: %v\n", err)
		return 1
	}

	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
		<-signals
		l.Close()
	}()

	for {
		conn, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return 0
		}
		if err != nil {
			slog.Error("accept failed", "err", err)
			continue
		}
		go pipeConn(conn.(*tls.Conn), *socket)
	}
}

func pipeTLSConfig(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate found in %s", filepath.Join(dir, "ca.pem"))
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// pipeConn completes the handshake, dials the socket and copies both ways
// until either side closes, forwarding half-close.
func pipeConn(client *tls.Conn, socket string) {
	defer client.Close()
	if err := client.HandshakeContext(context.Background()); err != nil {
		return
	}
	up, err := net.Dial("unix", socket)
	if err != nil {
		slog.Error("dial the Docker socket failed", "socket", socket, "err", err)
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, client)
		_ = up.(*net.UnixConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(client, up)
	_ = client.CloseWrite()
	<-done
}

// startPipe runs this binary as the TLS pipe with keyType server
// certificates and Go's default key exchange groups.
func (b *bench) startPipe(ctx context.Context, keyType string) (*target, error) {
	return b.startPipeProcess(ctx, keyType, "tls-pipe")
}

// startPipeX25519 runs the TLS pipe with X25519 as its only key exchange
// group. Go 1.24 and later also offer X25519MLKEM768, which the Go client
// picks, so this target shows what the post-quantum key exchange costs per
// handshake.
func (b *bench) startPipeX25519(ctx context.Context, keyType string) (*target, error) {
	return b.startPipeProcess(ctx, keyType, x25519Pipe, "-x25519")
}

// x25519Pipe is the name of the TLS pipe target without post-quantum key
// exchange, which only the new-connection measurement uses.
const x25519Pipe = "tls-pipe-x25519"

func (b *bench) startPipeProcess(ctx context.Context, keyType, name string, extra ...string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	argv := append([]string{self, pipeCommand, "-listen", addr, "-socket", b.socket,
		"-cert-dir", filepath.Dir(b.serverFiles(keyType).cert)}, extra...)
	p, err := startProcess(name+"-"+keyType, b.opts.work, nil, argv...)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	t := b.tlsTarget(name, addr, p)
	return t, b.waitReady(ctx, t, p)
}
