package launch

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		in         string
		want       string // exact, or "" to check only the prefix
		wantPrefix string
	}{
		{in: "yaci-ci.example", want: "yaci-ci.example"},
		{in: "Mixed_Case.1", want: "Mixed_Case.1"},
		{in: strings.Repeat("b", 63), want: strings.Repeat("b", 63)},
		{in: "Build & Test", wantPrefix: "Build---Test-"},
		{in: "-leading", wantPrefix: "leading-"},
		{in: long, wantPrefix: strings.Repeat("a", 52) + "-"},
		{in: "!!!", wantPrefix: ""},
		{in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := labelValue(tt.in)
			if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
				t.Fatalf("labelValue(%q) = %q: %v", tt.in, got, errs)
			}
			if tt.want != "" || tt.in == "" {
				if got != tt.want {
					t.Errorf("labelValue(%q) = %q, want %q", tt.in, got, tt.want)
				}
				return
			}
			if !strings.HasPrefix(got, tt.wantPrefix) ||
				len(got) != len(tt.wantPrefix)+labelHashLen {
				t.Errorf("labelValue(%q) = %q, want %q and a %d-digit hash",
					tt.in, got, tt.wantPrefix, labelHashLen)
			}
		})
	}

	if labelValue("a b") == labelValue("a?b") {
		t.Error("two names that sanitise alike got the same label value")
	}
}
