package logs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func testSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(bytes.Repeat([]byte("k"), MinKeyLen))
	if err != nil {
		t.Fatal(err)
	}

	return s
}

func TestSigner(t *testing.T) {
	s := testSigner(t)
	other, err := NewSigner(bytes.Repeat([]byte("x"), MinKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	const name = "yaci-unit-0123456789abcdef"
	token := s.Token(name)

	if got := len(token); got*6 < 128 {
		t.Errorf("token %q has %d characters, under 128 bits", token, got)
	}
	if strings.ContainsAny(token, "+/=") {
		t.Errorf("token %q is not URL-safe", token)
	}
	if s.Token(name) != token {
		t.Error("token is not deterministic")
	}

	tests := []struct {
		name, run, token string
		want             bool
	}{
		{"right token", name, token, true},
		{"missing", name, "", false},
		{"other run", "yaci-unit-fedcba9876543210", token, false},
		{"other key", name, other.Token(name), false},
		{"truncated", name, token[:len(token)-1], false},
		{"extended", name, token + "A", false},
		{"one character changed", name, flipFirst(token), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Valid(tt.run, tt.token); got != tt.want {
				t.Errorf("Valid(%q, %q) = %v, want %v", tt.run, tt.token, got, tt.want)
			}
		})
	}

	url := s.URL("https://ci.example.com/", name)
	if want := "https://ci.example.com/runs/" + name + "?t=" + token; url != want {
		t.Errorf("URL = %q, want %q", url, want)
	}
}

func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}

	return "A" + s[1:]
}

func TestSignerKey(t *testing.T) {
	if _, err := NewSigner(make([]byte, MinKeyLen-1)); !errors.Is(err, ErrShortKey) {
		t.Errorf("short key: err = %v, want ErrShortKey", err)
	}

	key := bytes.Repeat([]byte("s3cr3t-"), 8)
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "signer", s)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", s, s, s, s)
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("the key leaks through formatting: %s", out)
	}
}
