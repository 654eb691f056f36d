package repoconfig

import (
	"strings"
	"testing"
)

func TestParallel(t *testing.T) {
	const jobs = "jobs:\n  - name: test\n    image: golang:1.26\n    run: go test ./...\n"
	tests := []struct {
		name, line string
		want       int
		problem    string // empty when the file is valid
	}{
		{"absent", "", 0, ""},
		{"empty", "parallel:\n", 0, ""},
		{"one", "parallel: 1\n", 1, ""},
		{"largest", "parallel: 1000\n", 1000, ""},
		{"zero", "parallel: 0\n", 0, `1:11: parallel must be a whole number from 1 to 1000, got "0"`},
		{"too large", "parallel: 1001\n", 0, `1:11: parallel must be a whole number from 1 to 1000, got "1001"`},
		{"a word", "parallel: many\n", 0, `1:11: parallel must be a whole number from 1 to 1000, got "many"`},
		{"a list", "parallel: [2]\n", 0, "1:11: parallel must be a whole number, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.line + jobs))
			if tt.problem == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if cfg.Parallel != tt.want {
					t.Errorf("Parallel = %d, want %d", cfg.Parallel, tt.want)
				}
				if err := cfg.Validate(); err != nil {
					t.Errorf("Validate of a parsed config: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("Parse error = %v, want one with %q", err, tt.problem)
			}
		})
	}

	cfg := &Config{Jobs: []Job{{Name: "a", Image: "x", Run: "y", On: defaultOn}}, Parallel: -1}
	if err := cfg.Validate(); err == nil {
		t.Error("Validate accepts parallel -1")
	}
}
