// Command bench measures dockmoat against the Docker daemon's own TLS
// listener, its unix socket, and nginx and HAProxy set up as mutual-TLS
// proxies to that socket. It starts one private dockerd and every proxy
// itself, runs each measurement for a fixed duration or count while
// alternating between targets, stops everything it started, and writes a
// Markdown results page.
//
// bench/run builds the binaries, issues the certificates and runs this
// program; see that script for the usual invocation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings of one run.
type options struct {
	// certs is a folder with client/{ca,cert,key}.pem for the benchmark
	// client and server-ecdsa/ and server-rsa/, each with ca.pem,
	// server-cert.pem and server-key.pem.
	certs string
	// dockmoat is the dockmoat binary; empty skips the dockmoat target.
	dockmoat string
	// dockmoatPprof is a dockmoat build that also serves net/http/pprof,
	// used only for the profiling pass; empty skips that pass.
	dockmoatPprof string
	// dockmoatDirs maps a server key type to a dockmoat state directory
	// whose server certificate has that key type.
	dockmoatDirs map[string]string
	work         string
	out          string
	goBench      string
	profileDir   string
	command      string

	duration time.Duration
	rounds   int
	blobMiB  int
	execTrip int
	memConns int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == pipeCommand {
		os.Exit(runPipe(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(logger)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newBench(opts)
	defer b.cleanup()

	// A measurement blocked on a connection does not see ctx, so a signal
	// also stops the processes under test, which ends every connection, and
	// exits.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		slog.Warn("interrupted; stopping dockerd and the proxies", "signal", sig)
		cancel()
		b.cleanup()
		os.Exit(130)
	}()
	if err := b.run(ctx); err != nil {
		slog.Error("benchmark failed", "err", err)
		return 1
	}
	return 0
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	opts := &options{}
	fs.StringVar(&opts.certs, "certs", "", "folder with client/, server-ecdsa/ and server-rsa/ PEM files (required)")
	fs.StringVar(&opts.dockmoat, "dockmoat", "", "dockmoat binary; empty skips the dockmoat target")
	fs.StringVar(&opts.dockmoatPprof, "dockmoat-pprof", "", "dockmoat build that serves pprof on $DOCKMOAT_PPROF_LISTEN, for the profiling pass")
	ecdsaDir := fs.String("dockmoat-dir-ecdsa", "", "dockmoat state directory with an ECDSA P-256 server certificate")
	rsaDir := fs.String("dockmoat-dir-rsa", "", "dockmoat state directory with an RSA 4096 server certificate")
	fs.StringVar(&opts.work, "work", "", "scratch folder for dockerd, proxies and payloads (required; removed at the end)")
	fs.StringVar(&opts.out, "out", "bench/RESULTS.md", "results page to write")
	fs.StringVar(&opts.goBench, "gobench", "", "file with 'go test -bench' output to include")
	fs.StringVar(&opts.profileDir, "profile-dir", "", "folder for CPU profiles of the profiling pass")
	fs.StringVar(&opts.command, "command", "", "command line to print on the results page")
	fs.DurationVar(&opts.duration, "duration", 2*time.Second, "length of each rate measurement")
	fs.IntVar(&opts.rounds, "rounds", 3, "rounds of each measurement; targets alternate within a round")
	fs.IntVar(&opts.blobMiB, "blob-mib", 256, "size of the exported image and of the build context, in MiB")
	fs.IntVar(&opts.execTrip, "exec-trips", 1000, "exec round trips per target and round")
	fs.IntVar(&opts.memConns, "mem-conns", 1000, "connections held open for the memory measurements")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	if opts.certs == "" || opts.work == "" {
		return nil, errors.New("-certs and -work are required; run bench/run instead")
	}
	if opts.rounds < 1 || opts.duration <= 0 || opts.blobMiB < 1 || opts.execTrip < 1 || opts.memConns < 1 {
		return nil, errors.New("-rounds, -duration, -blob-mib, -exec-trips and -mem-conns must be positive")
	}
	opts.dockmoatDirs = map[string]string{keyECDSA: *ecdsaDir, keyRSA: *rsaDir}
	if opts.dockmoat != "" && (*ecdsaDir == "" || *rsaDir == "") {
		return nil, errors.New("-dockmoat needs -dockmoat-dir-ecdsa and -dockmoat-dir-rsa")
	}
	if opts.command == "" {
		opts.command = "bench " + strings.Join(args, " ")
	}
	opts.command = strings.TrimSpace(opts.command)

	abs, err := filepath.Abs(opts.work)
	if err != nil {
		return nil, err
	}
	opts.work = abs
	return opts, nil
}
