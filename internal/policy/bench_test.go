package policy

import (
	"encoding/json"
	"testing"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
)

func classifyCreate() (*dockerapi.Request, error) {
	return dockerapi.ClassifyTarget("POST", "/v1.41/containers/create")
}

func classifyExec() (*dockerapi.Request, error) {
	return dockerapi.ClassifyTarget("POST", "/v1.41/containers/c/exec")
}

// BenchmarkDecideCreate measures a decision on a typical docker CLI
// container create body, with its inspection.
func BenchmarkDecideCreate(b *testing.B) {
	p := Default()
	req, err := classifyCreate()
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(typicalCreateBody)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if d := p.Decide(ciClient, req, body); !d.Allow {
			b.Fatal(d.Message)
		}
	}
}

// BenchmarkDecideList measures a decision without a body.
func BenchmarkDecideList(b *testing.B) {
	p := Default()
	req, err := dockerapi.ClassifyTarget("GET", "/v1.41/containers/json?all=1")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if d := p.Decide(ciClient, req, nil); !d.Allow {
			b.Fatal(d.Message)
		}
	}
}

// BenchmarkCheckJSONKeys measures the duplicate key check alone.
func BenchmarkCheckJSONKeys(b *testing.B) {
	body := []byte(typicalCreateBody)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := checkJSONKeys(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCreate measures json.Unmarshal of the whole body into the
// moby types alone: the cost that decodeCreateBody avoids by decoding only
// the members that the checks read.
func BenchmarkDecodeCreate(b *testing.B) {
	body := []byte(typicalCreateBody)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v createBody
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCreateFiltered measures decodeCreateBody, the syntax and
// key checks and the decoding that inspectCreate runs on the same body.
func BenchmarkDecodeCreateFiltered(b *testing.B) {
	body := []byte(typicalCreateBody)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeCreateBody(body); err != nil {
			b.Fatal(err)
		}
	}
}
