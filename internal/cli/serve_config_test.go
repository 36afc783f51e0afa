package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dockmoat.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeConfigFile(t *testing.T) {
	tests := []struct {
		name   string
		config string
		args   []string
		check  func(t *testing.T, opts *serveOptions)
	}{
		{
			name:   "file sets flags",
			config: "listen: 127.0.0.1:3000\ndocker: unix:///run/d.sock\ndrain-timeout: 3s\n",
			check: func(t *testing.T, opts *serveOptions) {
				if opts.listen != "127.0.0.1:3000" {
					t.Errorf("listen = %q, want 127.0.0.1:3000", opts.listen)
				}
				if opts.socket != "/run/d.sock" {
					t.Errorf("socket = %q, want /run/d.sock", opts.socket)
				}
				if opts.gateway.DrainTimeout.String() != "3s" {
					t.Errorf("drain timeout = %s, want 3s", opts.gateway.DrainTimeout)
				}
			},
		},
		{
			name:   "flag wins over file",
			config: "listen: 127.0.0.1:3000\n",
			args:   []string{"--listen", "127.0.0.1:4000"},
			check: func(t *testing.T, opts *serveOptions) {
				if opts.listen != "127.0.0.1:4000" {
					t.Errorf("listen = %q, want the flag's 127.0.0.1:4000", opts.listen)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newServeCommand()
			newRootCommand(nil, &bytes.Buffer{}, &bytes.Buffer{}).AddCommand(cmd)
			args := append([]string{"--dir", t.TempDir(), "--config", writeConfig(t, tt.config)}, tt.args...)
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			opts, err := readServeOptions(cmd)
			if err != nil {
				t.Fatalf("readServeOptions: %v", err)
			}
			tt.check(t, opts)
		})
	}
}

func TestServeConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, config, want string
	}{
		{"unknown key", "listen: 127.0.0.1:3000\nlisten-port: 3000\n", "dockmoat.yaml:2: unknown key \"listen-port\""},
		{"bad duration", "idle-timeout: soon\n", "dockmoat.yaml:1: key \"idle-timeout\": invalid value \"soon\""},
		{"list for single value", "listen:\n  - a\n  - b\n", "dockmoat.yaml:1: key \"listen\": want a single value"},
		{"not a mapping", "- listen\n", "want a mapping"},
		{"config inside config", "config: other.yaml\n", "unknown key \"config\""},
		{"tcp docker address", "docker: tcp://127.0.0.1:2375\n", "invalid --docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newServeCommand()
			newRootCommand(nil, &bytes.Buffer{}, &bytes.Buffer{}).AddCommand(cmd)
			if err := cmd.ParseFlags([]string{"--dir", t.TempDir(), "--config", writeConfig(t, tt.config)}); err != nil {
				t.Fatal(err)
			}
			_, err := readServeOptions(cmd)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
