package repoconfig

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Problem is one thing wrong with a .yaci.yml, at the place a user would
// edit to fix it.
type Problem struct {
	// Line and Column are 1-based. When the YAML parser gives no column
	// (syntax errors), Column is 1.
	Line, Column int
	// Message is lowercase, names the key and quotes the bad value.
	Message string
}

// String formats the problem as "line:col: message".
func (p Problem) String() string {
	return fmt.Sprintf("%d:%d: %s", p.Line, p.Column, p.Message)
}

// ParseError is the error Parse returns for a file it rejects. It lists
// every problem found, in the order of the file, so a user can fix them
// all in one edit.
type ParseError struct {
	// Problems is never empty.
	Problems []Problem
}

// Error joins the problems, one "line:col: message" per line.
func (e *ParseError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}

	return strings.Join(lines, "\n")
}

// Format returns one "file:line:col: message" line per problem, the shape
// editors and CI logs turn into links.
func (e *ParseError) Format(file string) []string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = file + ":" + p.String()
	}

	return lines
}

// sortProblems puts problems in the order of the file. The sort is stable
// so two problems at one place keep the order they were found in, which
// is the order of the rules and reads naturally.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// placeInFile moves problems placed past the end of the file to its end.
// yaml.v3 places a value written as nothing (a null at the end of the
// file) at the next token, which may not exist; the end of the file is
// where a user would type the value.
func placeInFile(ps []Problem, lines [][]byte) {
	for i := range ps {
		if ps[i].Line > len(lines) {
			last := lines[len(lines)-1]
			ps[i].Line, ps[i].Column = len(lines), utf8.RuneCount(last)+1
		}
	}
}

// quote quotes a value for a message, shortened so a pasted script or a
// huge scalar cannot turn one problem into kilobytes of output.
func quote(s string) string {
	const max = 48
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}

	return fmt.Sprintf("%q…", s[:cut])
}
