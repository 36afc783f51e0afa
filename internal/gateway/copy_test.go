package gateway

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// sizeRecorder is a reader that fills each read completely from data and
// records the size of every buffer it was given.
type sizeRecorder struct {
	data  []byte
	sizes []int
}

func (r *sizeRecorder) Read(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestCopyStreamGrowsBuffer(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100<<10)
	src := &sizeRecorder{data: data}
	var dst bytes.Buffer
	flushes := 0
	n, err := copyStream(&dst, src, func() { flushes++ })
	if err != nil {
		t.Fatalf("copyStream error = %v, want nil", err)
	}
	if n != int64(len(data)) {
		t.Errorf("copied = %d, want %d", n, len(data))
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Error("copied bytes differ from the source")
	}
	if src.sizes[0] != smallCopyBuffer {
		t.Errorf("first read size = %d, want %d", src.sizes[0], smallCopyBuffer)
	}
	if src.sizes[1] != largeCopyBuffer {
		t.Errorf("second read size = %d, want %d after a full first read", src.sizes[1], largeCopyBuffer)
	}
	if want := len(src.sizes) - 1; flushes != want {
		t.Errorf("flushes = %d, want %d (one per write)", flushes, want)
	}
}

func TestCopyStreamKeepsSmallBuffer(t *testing.T) {
	var lines bytes.Buffer
	for i := 0; i < 20; i++ {
		lines.WriteString("{\"status\":\"create\"}\n")
	}
	src := &lineReader{data: lines.Bytes()}
	var dst bytes.Buffer
	if _, err := copyStream(&dst, src, nil); err != nil {
		t.Fatalf("copyStream error = %v, want nil", err)
	}
	for i, size := range src.sizes {
		if size != smallCopyBuffer {
			t.Fatalf("read %d size = %d, want %d for short reads", i, size, smallCopyBuffer)
		}
	}
	if dst.String() != lines.String() {
		t.Errorf("copied %q, want %q", dst.String(), lines.String())
	}
}

// lineReader returns one line per read, as an event stream does.
type lineReader struct {
	data  []byte
	sizes []int
}

func (r *lineReader) Read(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	end := bytes.IndexByte(r.data, '\n') + 1
	n := copy(p, r.data[:end])
	r.data = r.data[n:]
	return n, nil
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestCopyStreamShortWrite(t *testing.T) {
	_, err := copyStream(shortWriter{}, bytes.NewReader([]byte("abcd")), nil)
	if !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("copyStream error = %v, want io.ErrShortWrite", err)
	}
}
