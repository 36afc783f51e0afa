package probe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ClientConfig is the endpoint and TLS material a Docker client uses.
type ClientConfig struct {
	// Host is the endpoint, such as tcp://docker.example.test:2376.
	Host string `json:"host"`
	// Source names the setting Host came from, such as "DOCKER_HOST".
	Source string `json:"source"`
	// Context is the docker context in use, empty for the environment.
	Context string `json:"context,omitempty"`
	// TLS is true when the client speaks TLS, and TLSVerify when it also
	// verifies the server against Files.CA.
	TLS       bool        `json:"tls"`
	TLSVerify bool        `json:"tlsVerify"`
	Files     ClientFiles `json:"files"`
}

// ClientOptions select the client configuration the way the docker CLI
// does (checked against docker CLI 28). Getenv reads the environment; the flags
// override it.
type ClientOptions struct {
	Getenv func(string) string
	// Host and CertPath are the --host and --cert-path flags. CertPath
	// turns TLS verification on.
	Host, CertPath string
	// Context is the --context flag.
	Context string
}

// ResolveClient returns the configuration the docker CLI would use, with
// findings about settings that other clients read differently. The docker
// CLI picks its endpoint in this order: --host, --context, DOCKER_HOST,
// DOCKER_CONTEXT, currentContext in config.json, and the default socket.
func ResolveClient(opts ClientOptions) (ClientConfig, []Finding, error) {
	env := opts.Getenv
	if env == nil {
		env = os.Getenv
	}
	configDir := dockerConfigDir(env)
	var fs findings
	currentContext, err := readCurrentContext(configDir)
	if err != nil {
		return ClientConfig{}, nil, err
	}

	var cfg ClientConfig
	switch {
	case opts.Host != "" && opts.Context != "":
		return ClientConfig{}, nil, fmt.Errorf("--host and --context both set: pass only one, as the docker CLI accepts only one")
	case opts.Host != "":
		cfg = envClient(opts.Host, "--host", env, configDir)
	case opts.Context != "":
		if cfg, err = contextClient(configDir, opts.Context, "--context"); err != nil {
			return ClientConfig{}, nil, err
		}
	case env("DOCKER_HOST") != "":
		cfg = envClient(env("DOCKER_HOST"), "DOCKER_HOST", env, configDir)
		fs.add(explainHostOverride(env, currentContext, configDir)...)
	case env("DOCKER_CONTEXT") != "":
		if cfg, err = contextClient(configDir, env("DOCKER_CONTEXT"), "DOCKER_CONTEXT"); err != nil {
			return ClientConfig{}, nil, err
		}
	case currentContext != "" && currentContext != "default":
		source := "currentContext in " + filepath.Join(configDir, "config.json")
		if cfg, err = contextClient(configDir, currentContext, source); err != nil {
			return ClientConfig{}, nil, err
		}
	default:
		cfg = envClient("unix:///var/run/docker.sock", "the default socket", env, configDir)
	}
	if opts.CertPath != "" {
		cfg.TLS, cfg.TLSVerify = true, true
		cfg.Files = filesIn(opts.CertPath)
	}
	fs.add(checkTLSEnv(cfg, env)...)
	if cfg.Context != "" && cfg.TLS {
		fs.add(contextOnlyTools(cfg))
	}
	return cfg, fs.list, nil
}

func dockerConfigDir(env func(string) string) string {
	if dir := env("DOCKER_CONFIG"); dir != "" {
		return dir
	}
	home := env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker")
}

func filesIn(dir string) ClientFiles {
	return ClientFiles{
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "cert.pem"),
		Key:  filepath.Join(dir, "key.pem"),
	}
}

// envClient applies DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH the
// way the docker CLI does: any non-empty value turns TLS on.
func envClient(host, source string, env func(string) string, configDir string) ClientConfig {
	cfg := ClientConfig{Host: host, Source: source}
	cfg.TLSVerify = env("DOCKER_TLS_VERIFY") != ""
	cfg.TLS = cfg.TLSVerify || env("DOCKER_TLS") != ""
	certPath := env("DOCKER_CERT_PATH")
	if certPath == "" {
		certPath = configDir
	}
	cfg.Files = filesIn(certPath)
	return cfg
}

func readCurrentContext(configDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(configDir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var cfg struct {
		CurrentContext string `json:"currentContext"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("invalid %s: %v", filepath.Join(configDir, "config.json"), err)
	}
	return cfg.CurrentContext, nil
}

// contextID returns the folder name the docker CLI stores a context under:
// the SHA-256 of its name in hexadecimal.
func contextID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func contextClient(configDir, name, source string) (ClientConfig, error) {
	id := contextID(name)
	metaPath := filepath.Join(configDir, "contexts", "meta", id, "meta.json")
	data, err := os.ReadFile(metaPath)
	if errors.Is(err, os.ErrNotExist) {
		return ClientConfig{}, fmt.Errorf("context %q (from %s) not found: %s does not exist; "+
			"run 'docker context ls' to see the contexts", name, source, metaPath)
	}
	if err != nil {
		return ClientConfig{}, err
	}
	var meta struct {
		Endpoints map[string]struct {
			Host          string
			SkipTLSVerify bool
		}
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return ClientConfig{}, fmt.Errorf("invalid context metadata %s: %v", metaPath, err)
	}
	ep := meta.Endpoints["docker"]
	cfg := ClientConfig{Host: ep.Host, Source: "context " + name + " (from " + source + ")", Context: name}
	tlsDir := filepath.Join(configDir, "contexts", "tls", id, "docker")
	cfg.Files = filesIn(tlsDir)
	if _, err := os.Stat(tlsDir); err == nil {
		cfg.TLS = true
		cfg.TLSVerify = !ep.SkipTLSVerify
	}
	return cfg, nil
}

// explainHostOverride reports which source wins when DOCKER_HOST and a
// context are both set.
func explainHostOverride(env func(string) string, currentContext, configDir string) []Finding {
	var fs findings
	name, from := env("DOCKER_CONTEXT"), "DOCKER_CONTEXT"
	if name == "" {
		name, from = currentContext, "currentContext in "+filepath.Join(configDir, "config.json")
	}
	if name == "" || name == "default" {
		return nil
	}
	fs.warnf("DOCKER_HOST", "unset DOCKER_HOST to use the context, or unset "+from+" to use DOCKER_HOST",
		"DOCKER_HOST=%s and context %q (from %s) are both set: the docker CLI uses DOCKER_HOST "+
			"with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, and ignores the context and its TLS files",
		env("DOCKER_HOST"), name, from)
	return fs.list
}

// checkTLSEnv reports environment settings that clients read differently.
func checkTLSEnv(cfg ClientConfig, env func(string) string) []Finding {
	var fs findings
	v := env("DOCKER_TLS_VERIFY")
	switch strings.ToLower(v) {
	case "0", "false", "no", "off":
		fs.warnf("DOCKER_TLS_VERIFY", "export DOCKER_TLS_VERIFY=1",
			"DOCKER_TLS_VERIFY=%s still turns TLS verification on for the docker CLI, which only checks "+
				"that the variable is not empty, while other clients such as docker-java and docker-py "+
				"may read the value as off; set it to 1", v)
	}
	if cfg.Context == "" && !cfg.TLS && env("DOCKER_CERT_PATH") != "" && strings.HasPrefix(cfg.Host, "tcp://") {
		fs.warnf("DOCKER_CERT_PATH", "export DOCKER_TLS_VERIFY=1",
			"DOCKER_CERT_PATH is set but DOCKER_TLS_VERIFY is not, so the docker CLI speaks plain HTTP to %s",
			cfg.Host)
	}
	return fs.list
}

// contextOnlyTools returns the environment that gives tools which ignore
// docker contexts the same endpoint and TLS material.
func contextOnlyTools(cfg ClientConfig) Finding {
	return Finding{
		Severity: SeverityInfo,
		Subject:  "context",
		Message: fmt.Sprintf("context %q carries its TLS files, but tools that read only DOCKER_HOST "+
			"(Testcontainers, docker-maven-plugin, docker-py) ignore contexts and may speak plain HTTP", cfg.Context),
		Fix: fmt.Sprintf("export DOCKER_HOST=%s DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=%s",
			cfg.Host, filepath.Dir(cfg.Files.CA)),
	}
}
