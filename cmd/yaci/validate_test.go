package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/validate")

// TestValidateCommand runs "yaci validate" through the real command
// dispatch on the files under testdata/validate and compares exit code,
// stdout and stderr with each case's golden file.
func TestValidateCommand(t *testing.T) {
	dir := filepath.Join("testdata", "validate")
	tests := []struct {
		name string
		args []string
	}{
		{"valid", []string{filepath.Join(dir, "valid.yml")}},
		{"single", []string{filepath.Join(dir, "single.yml")}},
		{"directory", []string{filepath.Join(dir, "repo")}},
		{"invalid", []string{filepath.Join(dir, "invalid.yml")}},
		{"syntax", []string{filepath.Join(dir, "syntax.yml")}},
		{"missing", []string{filepath.Join(dir, "missing.yml")}},
		// cmd/yaci has no .yaci.yml of its own.
		{"default-missing", nil},
		{"two-files", []string{"a.yml", "b.yml"}},
		{"unknown-flag", []string{"-strict", "a.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"validate"}, tt.args...), &stdout, &stderr)

			got := fmt.Sprintf("exit %d\n-- stdout --\n%s-- stderr --\n%s",
				code, stdout.String(), stderr.String())
			compareGolden(t, filepath.Join(dir, tt.name+".golden"), got)
		})
	}
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

	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (create it with -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is right)\n"+
			"got:\n%s\nwant:\n%s", golden, got, want)
	}
}
