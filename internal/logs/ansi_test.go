package logs

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// renderHTML renders text as page lines, without anchor prefix.
func renderHTML(t *testing.T, text string) string {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	lines := newHTMLLines(bw, "")
	if err := eachLine(strings.NewReader(text), false, func(b []byte) error {
		lines.line(b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bw.Flush()

	return buf.String()
}

// stripNumbers removes each line's span and number link, leaving what the
// line shows, one line per output line.
func stripNumbers(html string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(html, "\n"), "\n") {
		_, rest, ok := strings.Cut(l, "</a>")
		if !ok {
			out = append(out, "BAD:"+l)
			continue
		}
		out = append(out, strings.TrimSuffix(rest, "</span>"))
	}

	return strings.Join(out, "\n")
}

func TestANSIRendering(t *testing.T) {
	const esc = "\x1b"
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", "hello"},
		{"escaped", `<script>alert("x") & 'y'</script>`,
			"&lt;script&gt;alert(&#34;x&#34;) &amp; &#39;y&#39;&lt;/script&gt;"},
		{"red then reset", esc + "[31mred" + esc + "[0m plain",
			`<span class="ansi-red">red</span> plain`},
		{"reset without code", esc + "[32mgreen" + esc + "[m plain",
			`<span class="ansi-green">green</span> plain`},
		{"bold and bright", esc + "[1;93mwarn" + esc + "[22m still yellow",
			`<span class="ansi-bold ansi-bright-yellow">warn</span>` +
				`<span class="ansi-bright-yellow"> still yellow</span>`},
		{"all normal colours", esc + "[30ma" + esc + "[37mb" + esc + "[39mc",
			`<span class="ansi-black">a</span><span class="ansi-white">b</span>c`},
		{"bright range ends", esc + "[90ma" + esc + "[97mb",
			`<span class="ansi-bright-black">a</span><span class="ansi-bright-white">b</span>`},
		{"background", esc + "[41;97m FAIL " + esc + "[49m",
			`<span class="ansi-bright-white ansi-bg-red"> FAIL </span>`},
		{"256 colour arguments are not codes", esc + "[38;5;1mx" + esc + "[38;2;1;31;4my",
			`xy`},
		{"style carries to next line", esc + "[34mone\ntwo" + esc + "[0m\nthree",
			"<span class=\"ansi-blue\">one</span>\n<span class=\"ansi-blue\">two</span>\nthree"},
		{"other CSI sequences dropped", esc + "[2K" + esc + "[1Gdone" + esc + "[?25l",
			"done"},
		{"OSC title dropped", esc + "]0;title\x07after" + esc + "]8;;x" + esc + `\link`,
			"afterlink"},
		{"control characters dropped", "a\x00b\x07c\x7fd\te", "abcd\te"},
		{"carriage return dropped", "10%\r20%\r\n", "10%20%"},
		// The CSI sequence ends at its final byte, "s"; the rest is text.
		{"markup inside a sequence", esc + "[31\"><script>m", "cript&gt;m"},
		{"unterminated escape at end", "text" + esc + "[31", "text"},
		{"huge parameter list ignored", esc + "[" + strings.Repeat("1;", 100) + "31mx", "x"},
		{"utf-8 passes", "naïve ✓ 日本", "naïve ✓ 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stripNumbers(renderHTML(t, tt.in))
			if got != tt.want {
				t.Errorf("render %q:\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestLineAnchors(t *testing.T) {
	got := renderHTML(t, "first\nsecond\n")
	want := `<span class="l" id="L1"><a class="n" href="#L1">1</a>first</span>` + "\n" +
		`<span class="l" id="L2"><a class="n" href="#L2">2</a>second</span>` + "\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestSplitFeeds checks that an escape sequence cut between two reads is
// still parsed as one.
func TestSplitFeeds(t *testing.T) {
	var p ansiParser
	var got []string
	sink := sinkFunc(func(s style, b []byte) { got = append(got, s.classes()+":"+string(b)) })
	p.feed([]byte("a\x1b["), sink)
	p.feed([]byte("3"), sink)
	p.feed([]byte("1mb"), sink)
	if want := []string{":a", "ansi-red:b"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

type sinkFunc func(style, []byte)

func (f sinkFunc) text(s style, b []byte) { f(s, b) }

func TestEachLine(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes+10)
	tests := []struct {
		name string
		in   string
		hold bool
		want []string
	}{
		{"partial last line kept", "a\nb", false, []string{"a", "b"}},
		{"partial last line held", "a\nb", true, []string{"a"}},
		{"crlf", "a\r\nb\r\n", false, []string{"a", "b"}},
		{"empty lines", "\n\n", false, []string{"", ""}},
		{"long line split", long + "\n", false, []string{long[:maxLineBytes], long[maxLineBytes:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := eachLine(strings.NewReader(tt.in), tt.hold, func(b []byte) error {
				got = append(got, string(b))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %d lines %.40q, want %d %.40q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestSegmenter(t *testing.T) {
	s := newSegmenter()
	if got := s.line([]byte("\x1b[31mskipped"), 1); got != nil {
		t.Errorf("line 1 with skip 1 = %s, want nil", got)
	}
	got := string(s.line([]byte("still red\x1b[0m <b>"), 1))
	want := `{"n":2,"s":[["ansi-red","still red"],[""," \u003cb\u003e"]]}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
