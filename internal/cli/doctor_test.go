package cli

import (
	"strings"
	"testing"

	"github.com/dockmoat/dockmoat/internal/probe"
)

func TestPrintReportResultLine(t *testing.T) {
	tests := []struct {
		name string
		rep  probe.Report
		want string
	}{
		{"connects", probe.Report{}, "result: the client would connect\n"},
		{"fails", probe.Report{ClientFails: true}, "result: the client would fail; fix the ERROR lines above\n"},
		{"unchecked", probe.Report{Unchecked: true, Client: probe.ClientConfig{Host: "ssh://user@docker.example.test"}},
			"result: not checked: doctor cannot connect to ssh://user@docker.example.test the way the client does; run 'docker version' to test the connection\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printReport(&b, tt.rep)
			if got := b.String(); !strings.HasSuffix(got, tt.want) {
				t.Errorf("report ends with %q, want %q", got[strings.LastIndex(got[:len(got)-1], "\n")+1:], tt.want)
			}
		})
	}
}
