package logs

// style is the SGR state that decides how text looks: a foreground and a
// background colour (0 for the default, 1–8 for the normal colours, 9–16
// for the bright ones) and bold. It is small and comparable, so rendering
// can tell cheaply when it changes.
type style struct {
	fg, bg uint8
	bold   bool
}

// colourNames are the eight ANSI colours, in SGR order.
var colourNames = [8]string{"black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"}

// classes returns the CSS classes of s, or "" for the default style. Every
// class comes from the fixed tables above, never from the log.
func (s style) classes() string {
	var c []byte
	add := func(class string) {
		if len(c) > 0 {
			c = append(c, ' ')
		}
		c = append(c, class...)
	}
	if s.bold {
		add("ansi-bold")
	}
	if s.fg != 0 {
		add("ansi-" + colourName(s.fg))
	}
	if s.bg != 0 {
		add("ansi-bg-" + colourName(s.bg))
	}

	return string(c)
}

func colourName(c uint8) string {
	if c > 8 {
		return "bright-" + colourNames[c-9]
	}

	return colourNames[c-1]
}

// Parser states between bytes, so that an escape sequence split across
// two reads is still understood.
const (
	stText = iota
	stEsc
	stCSI
	stOSC
	stOSCEsc
)

// maxParams bounds the parameter bytes of one CSI sequence kept for
// parsing; a longer sequence is consumed and ignored.
const maxParams = 64

// ansiParser splits terminal output into runs of text of one style. It
// understands SGR sequences (ESC [ … m) for bold, the 16 colours and
// reset, and drops every other escape sequence and control character,
// keeping tabs. Carriage returns are dropped: without a terminal to redraw
// on, the overwritten progress text is shown side by side.
type ansiParser struct {
	cur    style
	state  int
	params []byte
	// overflow marks a CSI sequence with more than maxParams bytes.
	overflow bool
	// private marks a CSI sequence with a private prefix ("ESC [ ?"),
	// which is never SGR.
	private bool
}

// textSink receives the parser's output.
type textSink interface {
	// text adds text drawn in style s; the slice is only valid during
	// the call.
	text(s style, b []byte)
}

// feed parses b and hands every run of plain text to sink.
func (p *ansiParser) feed(b []byte, sink textSink) {
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if p.state == stText {
			if c >= 0x20 && c != 0x7f || c == '\t' || c >= 0x80 {
				continue
			}
			if i > start {
				sink.text(p.cur, b[start:i])
			}
			start = i + 1
			if c == 0x1b {
				p.state = stEsc
			}
			continue
		}
		p.step(c)
		start = i + 1
	}
	if p.state == stText && start < len(b) {
		sink.text(p.cur, b[start:])
	}
}

// step advances the parser over one byte of an escape sequence.
func (p *ansiParser) step(c byte) {
	switch p.state {
	case stEsc:
		switch c {
		case '[':
			p.state, p.params, p.overflow, p.private = stCSI, p.params[:0], false, false
		case ']':
			p.state = stOSC
		default:
			// A two-byte sequence (ESC 7, ESC =, ...): nothing to show.
			p.state = stText
		}
	case stCSI:
		switch {
		case c >= 0x40 && c <= 0x7e:
			if c == 'm' && !p.private && !p.overflow {
				p.sgr()
			}
			p.state = stText
		case c >= 0x3c && c <= 0x3f:
			p.private = true
		case c >= 0x20 && c <= 0x3f:
			if len(p.params) < maxParams {
				p.params = append(p.params, c)
			} else {
				p.overflow = true
			}
		default:
			// Not part of a CSI sequence: give up on it.
			p.state = stText
		}
	case stOSC:
		switch c {
		case 0x07:
			p.state = stText
		case 0x1b:
			p.state = stOSCEsc
		}
	case stOSCEsc:
		if c == '\\' {
			p.state = stText
		} else {
			p.state = stOSC
		}
	}
}

// sgr applies the parameters of one SGR sequence to the current style.
func (p *ansiParser) sgr() {
	var codes [16]int
	n := 0
	cur, have := 0, false
	for _, c := range p.params {
		switch {
		case c >= '0' && c <= '9':
			if cur < 1000 {
				cur = cur*10 + int(c-'0')
			}
			have = true
		case c == ';' || c == ':':
			if n < len(codes) {
				codes[n] = cur
				n++
			}
			cur, have = 0, false
		}
	}
	if have || n == 0 || p.params[len(p.params)-1] == ';' {
		if n < len(codes) {
			codes[n] = cur
			n++
		}
	}

	for i := 0; i < n; i++ {
		switch c := codes[i]; {
		case c == 0:
			p.cur = style{}
		case c == 1:
			p.cur.bold = true
		case c == 22:
			p.cur.bold = false
		case c >= 30 && c <= 37:
			p.cur.fg = uint8(c - 29)
		case c == 39:
			p.cur.fg = 0
		case c >= 90 && c <= 97:
			p.cur.fg = uint8(c - 81)
		case c >= 40 && c <= 47:
			p.cur.bg = uint8(c - 39)
		case c == 49:
			p.cur.bg = 0
		case c >= 100 && c <= 107:
			p.cur.bg = uint8(c - 91)
		case c == 38 || c == 48:
			// 256-colour and true-colour forms carry their own
			// arguments, which must not be read as codes.
			if i+1 < n && codes[i+1] == 5 {
				i += 2
			} else if i+1 < n && codes[i+1] == 2 {
				i += 4
			}
		}
	}
}
