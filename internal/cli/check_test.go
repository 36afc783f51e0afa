package cli

import (
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
