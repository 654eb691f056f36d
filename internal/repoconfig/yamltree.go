package repoconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decodeDocument parses data into its single YAML document. It returns a
// nil node when nothing further can be checked; the problems then say
// why.
func decodeDocument(data []byte) (doc *yaml.Node, problems []Problem) {
	// The parser is fed files from any repository that installs the app;
	// a panic inside it must become a problem, not take the server down.
	defer func() {
		if r := recover(); r != nil {
			doc = nil
			problems = []Problem{{1, 1, fmt.Sprintf("yaml parser failed: %v", r)}}
		}
	}()

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []Problem{{1, 1, "file is empty: it needs a jobs list"}}
		}
		return nil, []Problem{syntaxProblem(data, err)}
	}

	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
	case err != nil:
		problems = append(problems, syntaxProblem(data, err))
	default:
		problems = append(problems, Problem{second.Line, second.Column,
			"a second YAML document is not allowed: .yaci.yml holds one document"})
	}

	return &first, problems
}

// yaml.v3 has no typed syntax errors, so the patterns below read its
// messages. They only place and word a problem: when a message changes
// shape, the problem keeps yaml.v3's own words at line 1 or the line it
// gives, and nothing is lost.
var (
	// yamlLine finds the line in a yaml.v3 syntax error. yaml.v3 gives no
	// column, and its line is where the parser's context began, which can
	// be before the actual mistake.
	yamlLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	// unknownAnchor is yaml.v3's error for an alias of an anchor that does
	// not exist; it carries no position at all.
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// syntaxProblem turns a yaml.v3 parse error into a Problem, placing it as
// well as the error allows.
// TODO: report columns and exact lines of syntax errors — when
// go.yaml.in/yaml exposes the parser's problem mark.
func syntaxProblem(data []byte, err error) Problem {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")

	if strings.Contains(msg, "tab character") ||
		strings.Contains(msg, "cannot start any token") {
		if l, c, ok := findIndentTab(data, max(line, 1)); ok {
			return Problem{l, c, "tab character in indentation: indent with spaces"}
		}
	}
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		l, c := findAlias(data, m[1])
		return Problem{l, c, fmt.Sprintf("aliases are not allowed: %s", quote("*"+m[1]))}
	}

	return Problem{max(line, 1), 1, "yaml syntax: " + msg}
}

// findIndentTab finds the first tab in the leading whitespace of a line
// at or after line from. yaml.v3 reports tab errors at the line where the
// enclosing block began, which is at or before the tab itself.
func findIndentTab(data []byte, from int) (line, col int, ok bool) {
	for i, text := range splitLines(data) {
		if i+1 < from {
			continue
		}
		for j, b := range text {
			if b == '\t' {
				return i + 1, j + 1, true
			}
			if b != ' ' {
				break
			}
		}
	}

	return 0, 0, false
}

// findAlias finds where "*name" is written, since yaml.v3 does not say.
// It falls back to the start of the file.
func findAlias(data []byte, name string) (line, col int) {
	needle := []byte("*" + name)
	for i, text := range splitLines(data) {
		if j := bytes.Index(text, needle); j >= 0 {
			// yaml.v3 counts columns in characters, and so does this.
			return i + 1, utf8.RuneCount(text[:j]) + 1
		}
	}

	return 1, 1
}

// splitLines splits data into lines the way YAML counts them: CR LF, CR,
// LF and the Unicode breaks NEL, LS and PS each end a line.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	start := 0
	for i := 0; i < len(data); {
		size := lineBreak(data[i:])
		if size == 0 {
			i++
			continue
		}
		lines = append(lines, data[start:i])
		i += size
		start = i
	}

	return append(lines, data[start:])
}

// lineBreak returns the length of the line break at the start of b, or 0.
func lineBreak(b []byte) int {
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")):
		return 2
	case b[0] == '\r', b[0] == '\n':
		return 1
	case bytes.HasPrefix(b, []byte("\u0085")):
		return 2
	case bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		return 3
	}

	return 0
}

// checkTree walks the whole document once for what is wrong anywhere,
// whatever the key: anchors and aliases, merge keys, keys that are not
// plain strings, duplicate keys, unsupported tags and excessive nesting.
// The schema checks then skip what this walk reported.
func (p *parser) checkTree(n *yaml.Node, depth int) {
	if depth > MaxDepth {
		if !p.tooDeep {
			p.tooDeep = true
			p.add(n, "nesting is deeper than %d levels", MaxDepth)
		}
		return
	}
	if n.Anchor != "" {
		p.add(n, "anchors are not allowed: %s", quote("&"+n.Anchor))
	}
	if n.Kind == yaml.AliasNode {
		// Aliases are refused outright, so a "billion laughs" file cannot
		// expand into more than it spells out.
		p.add(n, "aliases are not allowed: %s", quote("*"+n.Value))
		return
	}
	if !allowedTags[n.Tag] && n.Kind != yaml.DocumentNode {
		p.add(n, "tag %s is not allowed", quote(n.Tag))
	}
	if n.Kind == yaml.MappingNode {
		p.checkKeys(n)
	}
	for _, c := range n.Content {
		p.checkTree(c, depth+1)
	}
}

// allowedTags are the tags plain YAML resolves to, plus merge which
// checkKeys reports with its own message. An explicit "!!str" is fine; a
// custom tag or "!!binary" would change what a value means.
var allowedTags = map[string]bool{
	"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!null": true,
	"!!timestamp": true, "!!map": true, "!!seq": true, "!!merge": true,
}

// checkKeys reports keys of one mapping that no schema could accept.
func (p *parser) checkKeys(m *yaml.Node) {
	seen := make(map[string]*yaml.Node, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		switch {
		case k.Kind == yaml.AliasNode:
			// checkTree reports the alias itself.
		case k.Kind != yaml.ScalarNode:
			p.add(k, "mapping keys must be plain strings")
		case k.Tag == "!!merge":
			p.add(k, "merge keys (<<) are not allowed")
		case seen[k.Value] != nil:
			p.add(k, "key %s is already defined at line %d", quote(k.Value), seen[k.Value].Line)
		default:
			seen[k.Value] = k
		}
	}
}

// schemaKey reports whether the schema checks should look at key k:
// checkKeys already reported the others.
func schemaKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Tag != "!!merge"
}

// kindName says what a node is, for "must be a list, got a mapping".
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("the value %s", quote(n.Value))
	}

	return "a document"
}
