package cli

import (
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/probe"
)

func TestCheckExitCode(t *testing.T) {
	r := func(v probe.Verdict) probe.Result { return probe.Result{Verdict: v, Exposed: v.Exposed()} }
	tests := []struct {
		name    string
		results []probe.Result
		want    int
	}{
		{"protected and closed", []probe.Result{r(probe.VerdictMutualTLS), r(probe.VerdictClosed)}, ExitOK},
		{"filtered and not docker", []probe.Result{r(probe.VerdictFiltered), r(probe.VerdictNotDocker)}, ExitOK},
		{"plain API", []probe.Result{r(probe.VerdictMutualTLS), r(probe.VerdictPlainAPI)}, ExitFailure},
		{"TLS without client auth", []probe.Result{r(probe.VerdictTLSNoClientAuth)}, ExitFailure},
		{"checking failed", []probe.Result{r(probe.VerdictMutualTLS), r(probe.VerdictError)}, ExitUsage},
		{"exposed wins over failure", []probe.Result{r(probe.VerdictError), r(probe.VerdictPlainAPI)}, ExitFailure},
	}
	for _, tt := range tests {
		if got := checkExitCode(tt.results); got != tt.want {
			t.Errorf("%s: exit code = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// /version may be denied or missing while /_ping answers, and then only
// the /_ping headers describe the daemon. Missing parts are left out
// instead of printed as empty fields.
func TestPrintCheckResultDockerLine(t *testing.T) {
	tests := []struct {
		name   string
		docker probe.DockerInfo
		want   string
	}{
		{"full", probe.DockerInfo{Version: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "amd64"},
			"\t\tdocker: version 20.10.24, API 1.41, linux/amd64\n"},
		{"ping headers only", probe.DockerInfo{APIVersion: "1.41", OS: "linux"},
			"\t\tdocker: API 1.41, linux\n"},
		{"API only", probe.DockerInfo{APIVersion: "1.41"},
			"\t\tdocker: API 1.41\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			docker := tt.docker
			printCheckResult(&b, probe.Result{Verdict: probe.VerdictPlainAPI, Docker: &docker})
			_, got, _ := strings.Cut(b.String(), "\t\tdocker: ")
			if got = "\t\tdocker: " + got; got != tt.want {
				t.Errorf("docker line = %q, want %q", got, tt.want)
			}
		})
	}
}
