package gateway

import (
	"io"
	"sync"
)

// Sizes of the copy buffers. A copy starts with the small buffer and moves
// to the large one when a read fills the small one. An event stream or an
// idle exec session then keeps 4 KiB rather than 32 KiB, and an image
// export or a build context still moves in reads of up to 32 KiB.
const (
	smallCopyBuffer = 4 << 10
	largeCopyBuffer = 32 << 10
)

var (
	smallCopyBuffers = sync.Pool{New: func() any {
		b := make([]byte, smallCopyBuffer)
		return &b
	}}
	largeCopyBuffers = sync.Pool{New: func() any {
		b := make([]byte, largeCopyBuffer)
		return &b
	}}
)

// copyStream copies src to dst until src ends and returns the bytes
// written. It calls flush, when not nil, after every write. Like io.Copy it
// returns nil at the end of src.
func copyStream(dst io.Writer, src io.Reader, flush func()) (int64, error) {
	bufp := smallCopyBuffers.Get().(*[]byte)
	pool := &smallCopyBuffers
	defer func() { pool.Put(bufp) }()

	buf := *bufp
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if m != n {
				return written, io.ErrShortWrite
			}
			if flush != nil {
				flush()
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		if n == len(buf) && pool == &smallCopyBuffers {
			smallCopyBuffers.Put(bufp)
			bufp, pool = largeCopyBuffers.Get().(*[]byte), &largeCopyBuffers
			buf = *bufp
		}
	}
}
