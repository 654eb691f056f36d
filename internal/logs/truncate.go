package logs

import (
	"fmt"
	"io"
)

// DefaultMaxLogBytes bounds one container's archived log, uncompressed: a
// log worth reading is far shorter, and a runaway one must not fill the
// disk.
const DefaultMaxLogBytes int64 = 16 << 20

// TruncationMarker returns the line that ends a log cut after max bytes.
func TruncationMarker(max int64) string {
	return "… log truncated by yaci after " + formatSize(max) + " …\n"
}

// formatSize writes n bytes the way people say it: "16 MiB", "5 KiB".
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// truncReader passes through the first max bytes of r. If r has more, it
// then yields the truncation marker (on a line of its own) and ends,
// without reading r any further, so memory and time stay bounded however
// long r is.
type truncReader struct {
	r    io.Reader
	max  int64
	left int64
	// last is the last byte passed through, to start the marker on a
	// new line.
	last byte
	// tail holds what remains of the marker once the cut is made.
	tail      []byte
	truncated bool
	done      bool
}

func newTruncReader(r io.Reader, max int64) *truncReader {
	return &truncReader{r: r, max: max, left: max, last: '\n'}
}

// Read implements io.Reader.
func (t *truncReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if t.truncated {
		return t.readTail(p)
	}
	if t.done {
		return 0, io.EOF
	}
	if t.left == 0 {
		return t.probe(p)
	}

	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.Read(p)
	if n > 0 {
		t.left -= int64(n)
		t.last = p[n-1]
	}
	if err == io.EOF {
		t.done = true
	}

	return n, err
}

// probe reads one byte past the bound to learn whether r has more.
func (t *truncReader) probe(p []byte) (int, error) {
	var one [1]byte
	for {
		n, err := t.r.Read(one[:])
		if n > 0 {
			break
		}
		if err == io.EOF {
			t.done = true
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
	}

	t.truncated = true
	if t.last != '\n' {
		t.tail = append(t.tail, '\n')
	}
	t.tail = append(t.tail, TruncationMarker(t.max)...)

	return t.readTail(p)
}

func (t *truncReader) readTail(p []byte) (int, error) {
	if len(t.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, t.tail)
	t.tail = t.tail[n:]

	return n, nil
}

// info returns what was kept of r.
func (t *truncReader) info() LogInfo {
	return LogInfo{Bytes: t.max - t.left, Truncated: t.truncated}
}
