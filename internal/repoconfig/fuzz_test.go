package repoconfig

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FuzzParse checks properties that hold for any input: Parse does not
// panic; it returns a config or a *ParseError, never both or neither;
// every problem has a position inside the file and a lowercase message;
// and a config it returns passes Validate and survives being written
// back to YAML and parsed again.
func FuzzParse(f *testing.F) {
	// The files of the golden tests are the best start: each reaches a
	// different rule. testdata/fuzz/FuzzParse adds crashers found so far.
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.yml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range append(files, filepath.Join("testdata", "bench.yml")) {
		f.Add(readFile(f, file))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", cfg, err)
		}
		if err != nil {
			checkProblems(t, data, err)
			return
		}

		if err := cfg.Validate(); err != nil {
			t.Fatalf("a parsed config does not validate: %v", err)
		}
		again, err := Parse(encode(t, cfg))
		if err != nil {
			t.Fatalf("a parsed config, written back, does not parse: %v", err)
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", again, cfg)
		}
	})
}

// checkProblems checks that err is a *ParseError whose problems are
// placed inside data, in order, with lowercase messages.
func checkProblems(t *testing.T, data []byte, err error) {
	t.Helper()
	var perr *ParseError
	if !errors.As(err, &perr) {
		t.Fatalf("error %v is %T, want *ParseError", err, err)
	}
	if len(perr.Problems) == 0 {
		t.Fatal("ParseError has no problems")
	}

	lines := len(splitLines(data))
	for i, p := range perr.Problems {
		if p.Line < 1 || p.Column < 1 || p.Line > lines {
			t.Errorf("problem %q is outside the file's %d lines", p, lines)
		}
		first, _ := utf8.DecodeRuneInString(p.Message)
		if p.Message == "" || unicode.IsUpper(first) {
			t.Errorf("problem %q: message must be lowercase and not empty", p)
		}
		if i > 0 {
			prev := perr.Problems[i-1]
			if p.Line < prev.Line || p.Line == prev.Line && p.Column < prev.Column {
				t.Errorf("problems out of order: %q before %q", prev, p)
			}
		}
	}
}

// encode writes cfg as .yaci.yml text, every key spelled out, so a
// round trip goes through the same rules as a user's file.
func encode(t *testing.T, cfg *Config) []byte {
	t.Helper()
	// Every string is double-quoted: yaml.v3's encoder can write a wrong
	// indentation indicator for a block scalar that starts with an empty
	// line, and the encoder is not what this test is about.
	str := func(s string) *yaml.Node {
		return &yaml.Node{
			Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle,
		}
	}
	mapping := func(kv ...*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.MappingNode, Content: kv}
	}
	list := func(items ...*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
	}

	jobs := list()
	for _, j := range cfg.Jobs {
		job := mapping(
			str("name"), str(j.Name), str("image"), str(j.Image), str("run"), str(j.Run))
		if len(j.Env) > 0 {
			env := mapping()
			for _, e := range j.Env {
				env.Content = append(env.Content, str(e.Name), str(e.Value))
			}
			job.Content = append(job.Content, str("env"), env)
		}
		if j.Timeout != 0 {
			job.Content = append(job.Content, str("timeout"), str(j.Timeout.String()))
		}
		on := list()
		for _, kind := range j.On {
			on.Content = append(on.Content, str(string(kind)))
		}
		job.Content = append(job.Content, str("on"), on)
		if len(j.Branches) > 0 {
			branches := list()
			for _, b := range j.Branches {
				branches.Content = append(branches.Content, str(b))
			}
			job.Content = append(job.Content, str("branches"), branches)
		}
		res := mapping()
		if j.Resources.CPU != "" {
			res.Content = append(res.Content, str("cpu"), str(j.Resources.CPU))
		}
		if j.Resources.Memory != "" {
			res.Content = append(res.Content, str("memory"), str(j.Resources.Memory))
		}
		job.Content = append(job.Content, str("resources"), res)
		jobs.Content = append(jobs.Content, job)
	}

	out, err := yaml.Marshal(mapping(str("jobs"), jobs))
	if err != nil {
		t.Fatalf("encode config: %v", err)
	}

	return out
}

// BenchmarkParse parses a typical three-job file.
func BenchmarkParse(b *testing.B) {
	data := readFile(b, filepath.Join("testdata", "bench.yml"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
