package repoconfig

import (
	"errors"
	"strings"
	"testing"
)

// TestReservedYACI checks that env YACI is refused like CI and HOME. The
// cluster sets YACI=true and drops a job's own YACI, so accepting it
// would make the user's value vanish without a word. YACI_ names were
// already refused; names that merely start with YACI stay the job's.
func TestReservedYACI(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"YACI", false},
		{"YACI_X", false},
		{"YACIFOO", true},
		{"yaci", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "jobs:\n  - name: a\n    image: b\n    run: c\n    env:\n      " +
				tt.name + ": x\n"
			_, err := Parse([]byte(file))
			if got := err == nil; got != tt.ok {
				t.Errorf("Parse accepts = %v, want %v (%v)", got, tt.ok, err)
			}
			if !tt.ok {
				want := "6:7: env name " + quote(tt.name) + " is reserved"
				if perr := asParseError(t, err); len(perr.Problems) != 1 ||
					!strings.HasPrefix(perr.Problems[0].String(), want) {
					t.Errorf("problems = %v, want one starting %q", perr.Problems, want)
				}
			}

			cfg := Config{Jobs: []Job{{Name: "a", Image: "b", Run: "c",
				On: defaultOn, Env: []EnvVar{{tt.name, "x"}}}}}
			if verr := cfg.Validate(); (verr == nil) != tt.ok ||
				(verr != nil && !errors.Is(verr, ErrInvalidConfig)) {
				t.Errorf("Validate = %v, want ok = %v", verr, tt.ok)
			}
		})
	}
}
