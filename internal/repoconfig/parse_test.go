package repoconfig

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/invalid")

// TestParseInvalid parses each file under testdata/invalid and compares
// the formatted problems with the file's .golden twin.
func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files under testdata/invalid")
	}

	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yml"), func(t *testing.T) {
			data := readFile(t, file)
			cfg, err := Parse(data)
			if cfg != nil {
				t.Errorf("Parse returned a config for an invalid file: %+v", cfg)
			}
			perr := asParseError(t, err)

			got := strings.Join(perr.Format(name), "\n") + "\n"
			compareGolden(t, strings.TrimSuffix(file, ".yml")+".golden", got)
		})
	}
}

// TestParseValid checks that each file under testdata/valid parses into
// the Config listed here, and that no file goes untested.
func TestParseValid(t *testing.T) {
	both := []EventKind{EventPush, EventPullRequest}
	want := map[string]*Config{
		"full.yml": {Jobs: []Job{{
			Name:      "test",
			Image:     "golang:1.26",
			Run:       "go vet ./...\ngo test ./...\n",
			Env:       []EnvVar{{"GOFLAGS", "-mod=readonly"}},
			Timeout:   20 * time.Minute,
			On:        both,
			Branches:  []string{"main", "release/*"},
			Resources: Resources{CPU: "500m", Memory: "1Gi"},
		}}},
		"minimal.yml": {Jobs: []Job{{
			Name: "lint", Image: "alpine", Run: "echo ok", On: both,
		}}},
		"scalars.yml": {Jobs: []Job{
			{
				Name:  "1",
				Image: "registry.example.com:5000/tools/ci@sha256:0123",
				Run:   "make check",
				Env: []EnvVar{
					{"GO_VERSION", "1.10"},
					{"VERBOSE", "true"},
					{"COUNT", "0x10"},
					{"EMPTY", ""},
					{"QUOTED", "yes"},
					{"lower_case", "ok"},
				},
				Timeout:   90 * time.Minute,
				On:        []EventKind{EventPush},
				Branches:  []string{"feature/*"},
				Resources: Resources{CPU: "2", Memory: "512Mi"},
			},
			{
				Name: "pr-only", Image: "alpine:3", Run: "true",
				On: []EventKind{EventPullRequest},
			},
			{
				Name: "on-key-quoted", Image: "alpine", Run: "true",
				On:       []EventKind{EventPullRequest, EventPush},
				Branches: []string{"main", "v[0-9]*", "release-?", `\*literal`},
			},
		}},
	}

	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yml"), func(t *testing.T) {
			expected, ok := want[name]
			if !ok {
				t.Fatalf("%s has no expected Config in TestParseValid", file)
			}
			delete(want, name)

			got, err := Parse(readFile(t, file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, expected) {
				t.Errorf("Parse(%s):\n got %+v\nwant %+v", name, got, expected)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate of a parsed config: %v", err)
			}
		})
	}
	for name := range want {
		t.Errorf("expected Config for %s, but testdata/valid has no such file", name)
	}
}

// TestParseLimits covers the limits that are easier to build than to
// keep as files.
func TestParseLimits(t *testing.T) {
	job := "  - name: test\n    image: alpine\n    run: make\n"
	padded := func(size int) []byte {
		data := "jobs:\n" + job + "#"
		return []byte(data + strings.Repeat("x", size-len(data)-1) + "\n")
	}

	tests := []struct {
		name string
		data []byte
		want string // "" for a file that parses
	}{
		{"at the size limit", padded(MaxFileSize), ""},
		{"one byte over", padded(MaxFileSize + 1), "1:1: file is 65537 bytes; at most 65536 are allowed"},
		{"exactly MaxJobs", []byte("jobs:\n" + jobsNamed(MaxJobs)), ""},
		{"longest name", []byte("jobs:\n  - {name: " + strings.Repeat("a", MaxNameLength) +
			", image: alpine, run: make}\n"), ""},
		{"name one too long", []byte("jobs:\n  - {name: " + strings.Repeat("a", MaxNameLength+1) +
			", image: alpine, run: make}\n"),
			`2:12: name "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is 41 characters long; at most 40 are allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(tt.data)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(cfg.Jobs) == 0 {
					t.Fatal("Parse returned no jobs")
				}
				return
			}
			perr := asParseError(t, err)
			if got := perr.Problems[0].String(); got != tt.want {
				t.Errorf("first problem\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// jobsNamed returns n valid jobs in block style.
func jobsNamed(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - name: job-%d\n    image: alpine\n    run: make\n", i)
	}

	return b.String()
}

// TestParseDepth checks the nesting bound exactly at and one past
// MaxDepth. The document node is depth 0, so a top-level value written
// as n brackets reaches depth n.
func TestParseDepth(t *testing.T) {
	nesting := fmt.Sprintf("nesting is deeper than %d levels", MaxDepth)
	for _, n := range []int{MaxDepth, MaxDepth + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
			perr := asParseError(t, must(Parse([]byte(data))))

			var got []string
			for _, p := range perr.Problems {
				if p.Message == nesting {
					got = append(got, p.String())
				}
			}
			var want []string
			if n > MaxDepth {
				want = []string{fmt.Sprintf("1:%d: %s", n, nesting)}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("nesting problems: got %q, want %q", got, want)
			}
		})
	}
}

// must drops the config from Parse's results, for files that are invalid
// for reasons other than the one under test.
func must(_ *Config, err error) error { return err }

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("valid", func(t *testing.T) {
		cfg, err := ParseFile(write("ok.yml", readFile(t, "testdata/valid/minimal.yml")))
		if err != nil {
			t.Fatalf("ParseFile: %v", err)
		}
		if len(cfg.Jobs) != 1 || cfg.Jobs[0].Name != "lint" {
			t.Errorf("ParseFile: got %+v, want the lint job", cfg)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := ParseFile(filepath.Join(dir, "nope.yml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ParseFile of a missing file: got %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("huge", func(t *testing.T) {
		// Far past the limit: ParseFile must stop reading early and still
		// report the size.
		_, err := ParseFile(write("huge.yml", make([]byte, 4*MaxFileSize)))
		perr := asParseError(t, err)
		want := "huge.yml:1:1: file is 65537 bytes; at most 65536 are allowed"
		if got := perr.Format("huge.yml"); len(got) != 1 || got[0] != want {
			t.Errorf("Format: got %q, want [%q]", got, want)
		}
	})
}

func TestParseErrorError(t *testing.T) {
	err := &ParseError{Problems: []Problem{{1, 2, "first"}, {3, 4, "second"}}}
	if got, want := err.Error(), "1:2: first\n3:4: second"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct {
		word string
		want string
	}{
		{"imgae", `; did you mean "image"?`},
		{"Image", `; did you mean "image"?`},
		{"branch", `; did you mean "branches"?`},
		{"enviroment", ""},
		{"no", `; did you mean "on"?`},
		{"xy", ""},
		{"om", `; did you mean "on"?`},
		{"script", ""},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			if got := didYouMean(tt.word, jobKeys); got != tt.want {
				t.Errorf("didYouMean(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}

	return data
}

func asParseError(t *testing.T, err error) *ParseError {
	t.Helper()
	var perr *ParseError
	if !errors.As(err, &perr) {
		t.Fatalf("got error %v (%T), want a *ParseError", err, err)
	}
	if len(perr.Problems) == 0 {
		t.Fatal("ParseError has no problems")
	}

	return perr
}

// compareGolden compares got with the golden file, or rewrites the file
// when the test runs with -update.
func compareGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := string(readFile(t, golden))
	if got != want {
		t.Errorf("problems differ from %s (rerun with -update if the change is right)\n"+
			"got:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestSplitLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{""}},
		{"a", []string{"a"}},
		{"a\n", []string{"a", ""}},
		{"a\r\nb\rc\nd", []string{"a", "b", "c", "d"}},
		{"a\u0085b\u2028c\u2029d", []string{"a", "b", "c", "d"}},
		{"a\n\r\nb", []string{"a", "", "b"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			var got []string
			for _, line := range splitLines([]byte(tt.in)) {
				got = append(got, string(line))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitLines(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
