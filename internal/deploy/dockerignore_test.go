package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// readDockerignore returns the patterns of .dockerignore. It knows plain
// paths and "**/name", and fails on any other pattern, so that a pattern
// it would misread is looked at instead.
func readDockerignore(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if strings.ContainsAny(strings.TrimPrefix(p, "**/"), "*?[]!\\") {
			t.Fatalf(".dockerignore pattern %q is unknown to this test", p)
		}
		patterns = append(patterns, filepath.Clean(p))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	return patterns
}

// ignored reports whether Docker leaves path (relative to the context)
// out of the build context: a pattern matches it or a folder it is in.
func ignored(patterns []string, path string) bool {
	segments := strings.Split(path, "/")
	for _, p := range patterns {
		if name, ok := strings.CutPrefix(p, "**/"); ok {
			if slices.Contains(segments, name) {
				return true
			}
			continue
		}
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}

	return false
}

// TestDockerignore checks that the build context keeps every file the
// Dockerfile's build of yaci reads, and leaves out the repository's
// history.
func TestDockerignore(t *testing.T) {
	patterns := readDockerignore(t)
	if !ignored(patterns, ".git/config") {
		t.Error(".git is in the build context: the history would be sent to every build")
	}

	// The files of the module's own packages that yaci is built from,
	// for the platform of the image.
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps",
		"-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`,
		"./cmd/yaci")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(moduleRoot)
	if err != nil {
		t.Fatal(err)
	}

	needed := []string{"go.mod", "go.sum"}
	for line := range strings.Lines(string(out)) {
		dir, files, _ := strings.Cut(strings.TrimSpace(line), "|")
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range strings.FieldsFunc(files, func(r rune) bool { return r == ',' || r == '|' }) {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v; the test would check nothing", needed)
	}
	for _, path := range needed {
		if ignored(patterns, path) {
			t.Errorf("%s is needed to build yaci but .dockerignore leaves it out", path)
		}
	}
}

func TestDockerignoreMatch(t *testing.T) {
	patterns := []string{".git", "charts", "**/testdata"}
	tests := map[string]bool{
		".git":                      true,
		".git/objects/ab":           true,
		".github/workflows/ci.yaml": false,
		"charts/yaci/Chart.yaml":    true,
		"testdata/x":                true,
		"internal/a/testdata/b":     true,
		"internal/a/testdatas/b":    false,
		"cmd/yaci/main.go":          false,
	}
	for path, want := range tests {
		if got := ignored(patterns, path); got != want {
			t.Errorf("ignored(%q) = %t, want %t", path, got, want)
		}
	}
}
