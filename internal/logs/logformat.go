package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
)

// The stored form of a log is the same in every Store: the first
// maxLogBytes bytes of what the container printed, then the truncation
// marker if it printed more, gzip-compressed. These functions are that
// format, so that a log archived by one store reads the same from another.

// logBound returns the bound a store applies to one log: max itself, or
// DefaultMaxLogBytes for zero.
func logBound(max int64) (int64, error) {
	if max < 0 {
		return 0, fmt.Errorf("negative log bound %d", max)
	}
	if max == 0 {
		return DefaultMaxLogBytes, nil
	}

	return max, nil
}

// encodeLog writes to w the stored form of what r yields, reading no
// further than the bound, and stops when ctx ends. It returns what was
// kept. Nothing is buffered beyond gzip's own window, so a log of any
// length streams through in bounded memory.
func encodeLog(ctx context.Context, w io.Writer, r io.Reader, max int64) (LogInfo, error) {
	tr := newTruncReader(ctxReader{ctx, r}, max)
	zw := gzip.NewWriter(w)
	if _, err := io.Copy(zw, tr); err != nil {
		return LogInfo{}, err
	}
	if err := zw.Close(); err != nil {
		return LogInfo{}, err
	}

	return tr.info(), nil
}

// decodeLog returns the log stored in src, uncompressed. Closing the
// result closes src. On error src is closed already.
func decodeLog(src io.ReadCloser) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(bufio.NewReader(src))
	if err != nil {
		src.Close()
		return nil, err
	}

	return gzipReadCloser{zr, src}, nil
}

// gzipReadCloser closes both the gzip stream and what it reads from.
type gzipReadCloser struct {
	*gzip.Reader
	src io.Closer
}

func (g gzipReadCloser) Close() error {
	return errors.Join(g.Reader.Close(), g.src.Close())
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}

	return c.r.Read(p)
}
