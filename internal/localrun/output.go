package localrun

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// maxLine is the longest line a prefixWriter holds back waiting for its
// end; a longer one is written in pieces, each with the prefix.
const maxLine = 64 << 10

// syncWriter serializes writes to w, so lines of parallel jobs never
// mix within a line.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p to the underlying writer as one piece.
func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.w.Write(p)
}

// prefixWriter writes each line it is given to dst with a prefix, once
// the line is complete. Errors of dst are dropped: a closed terminal
// must not fail the job.
type prefixWriter struct {
	// mu guards buf: the job's output and yaci's notes on it come from
	// different goroutines.
	mu     sync.Mutex
	dst    io.Writer
	prefix []byte
	buf    []byte
}

// newPrefixWriter returns a writer that prefixes lines with "[name] ",
// the name padded to width so that parallel jobs' lines align.
func newPrefixWriter(dst io.Writer, name string, width int) *prefixWriter {
	return &prefixWriter{dst: dst, prefix: fmt.Appendf(nil, "[%s]%*s ", name, width-len(name), "")}
}

// Write buffers p and writes out every complete line.
func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	w.buf = append(w.buf, p...)
	var out []byte
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) >= maxLine {
			i = maxLine - 1
			out = append(append(append(out, w.prefix...), w.buf[:i+1]...), '\n')
			w.buf = w.buf[i+1:]
			continue
		}
		if i < 0 {
			break
		}
		out = append(append(out, w.prefix...), w.buf[:i+1]...)
		w.buf = w.buf[i+1:]
	}
	if len(out) > 0 {
		_, _ = w.dst.Write(out)
	}
	// Keep the rest from pinning a large backing array.
	w.buf = append([]byte(nil), w.buf...)

	return len(p), nil
}

// Flush writes out a last line that has no newline.
func (w *prefixWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()

	if len(w.buf) > 0 {
		_, _ = w.dst.Write(append(append(append([]byte(nil), w.prefix...), w.buf...), '\n'))
		w.buf = nil
	}
}
