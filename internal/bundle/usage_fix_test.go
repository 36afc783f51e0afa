package bundle

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteUsageP12Keytool(t *testing.T) {
	var buf bytes.Buffer
	err := WriteUsage(&buf, Usage{Name: "alice", Host: "tcp://docker.example.test:2376", CertPath: "/certs/alice",
		Format: FormatP12, File: "/out/alice.p12", PasswordFile: "/secrets/p12 pass"})
	if err != nil {
		t.Fatal(err)
	}
	want := "keytool -importcert -noprompt -alias dockmoat-ca -file /certs/alice/ca.pem " +
		"-keystore truststore.p12 -storetype PKCS12 -storepass:file '/secrets/p12 pass'"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("usage lacks %q\n%s", want, buf.String())
	}
}
