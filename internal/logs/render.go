package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// maxLineBytes is the longest line rendered as one; a longer one is shown
// as several numbered lines. The page and the live stream split alike, so
// their line numbers agree.
const maxLineBytes = 64 << 10

// eachLine calls fn with every line of r, without its line break. With
// holdPartial, a last line that has no line break yet is not passed on,
// as it may still grow: a live stream sends it whole later.
func eachLine(r io.Reader, holdPartial bool, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, maxLineBytes)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			line = line[:len(line)-1]
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if len(line) == 0 || holdPartial {
				return nil
			}
		default:
			return err
		}
		if ferr := fn(bytes.TrimSuffix(line, []byte{'\r'})); ferr != nil {
			return ferr
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// htmlLines renders log lines as the page shows them: each line a span
// with an anchor id ("L42", after a per-section prefix) and its number as
// a link to that anchor, the text HTML-escaped and coloured by classes.
// Each line is complete HTML: a style that spans lines is closed at the
// end of one and opened again on the next.
type htmlLines struct {
	w      *bufio.Writer
	prefix string
	n      int
	p      ansiParser
	// open is the style of the span open in the current line.
	open    style
	spanned bool
	classes map[style]string
	num     [20]byte
}

func newHTMLLines(w *bufio.Writer, prefix string) *htmlLines {
	return &htmlLines{w: w, prefix: prefix, classes: map[style]string{}}
}

// line renders one line.
func (h *htmlLines) line(b []byte) {
	h.n++
	// The digits live in h: a local array would escape through Write,
	// costing an allocation per line.
	n := strconv.AppendInt(h.num[:0], int64(h.n), 10)

	h.w.WriteString(`<span class="l" id="`)
	h.w.WriteString(h.prefix)
	h.w.WriteByte('L')
	h.w.Write(n)
	h.w.WriteString(`"><a class="n" href="#`)
	h.w.WriteString(h.prefix)
	h.w.WriteByte('L')
	h.w.Write(n)
	h.w.WriteString(`">`)
	h.w.Write(n)
	h.w.WriteString(`</a>`)

	h.spanned = false
	h.p.feed(b, h)
	if h.spanned {
		h.w.WriteString(`</span>`)
	}
	h.w.WriteString("</span>\n")
}

// text implements textSink.
func (h *htmlLines) text(s style, b []byte) {
	if !h.spanned || s != h.open {
		if h.spanned {
			h.w.WriteString(`</span>`)
			h.spanned = false
		}
		if s != (style{}) {
			h.w.WriteString(`<span class="`)
			h.w.WriteString(h.class(s))
			h.w.WriteString(`">`)
			h.spanned = true
		}
		h.open = s
	}
	writeEscaped(h.w, b)
}

func (h *htmlLines) class(s style) string {
	c, ok := h.classes[s]
	if !ok {
		c = s.classes()
		h.classes[s] = c
	}

	return c
}

// writeEscaped writes b with the five HTML-special characters escaped.
func writeEscaped(w *bufio.Writer, b []byte) {
	last := 0
	for i, c := range b {
		var esc string
		switch c {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		default:
			continue
		}
		w.Write(b[last:i])
		w.WriteString(esc)
		last = i + 1
	}
	w.Write(b[last:])
}

// segment is a run of text of one style in a streamed line: its classes
// and its text. The page's script puts the text in with textContent, so
// nothing in a log can become markup.
type segment [2]string

// streamLine is one line of the live stream, as JSON.
type streamLine struct {
	N        int       `json:"n"`
	Segments []segment `json:"s"`
}

// segmenter turns log lines into streamLines, keeping the style from one
// line to the next.
type segmenter struct {
	p       ansiParser
	n       int
	cur     []segment
	classes map[style]string
}

func newSegmenter() *segmenter { return &segmenter{classes: map[style]string{}} }

// line parses the next line and returns it as JSON, or nil when its
// number is not above skip.
func (s *segmenter) line(b []byte, skip int) []byte {
	s.n++
	s.cur = s.cur[:0]
	s.p.feed(b, s)
	if s.n <= skip {
		return nil
	}
	out, _ := json.Marshal(streamLine{N: s.n, Segments: s.cur})

	return out
}

// text implements textSink.
func (s *segmenter) text(st style, b []byte) {
	c, ok := s.classes[st]
	if !ok {
		c = st.classes()
		s.classes[st] = c
	}
	if k := len(s.cur); k > 0 && s.cur[k-1][0] == c {
		s.cur[k-1][1] += string(b)
		return
	}
	s.cur = append(s.cur, segment{c, string(b)})
}
