package logs

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// MinKeyLen is the shortest key NewSigner accepts, in bytes: a key shorter
// than the tag it makes would be the weaker secret.
const MinKeyLen = 32

// tokenLen is how many bytes of the HMAC a token keeps: 192 bits, well
// above the 128 that make guessing hopeless, in 32 URL-safe characters.
const tokenLen = 24

// tokenDomain separates run tokens from anything else a key shared by
// mistake might sign.
const tokenDomain = "yaci run page\x00"

// ErrShortKey is returned by NewSigner for a key shorter than MinKeyLen.
var ErrShortKey = errors.New("logs: signing key too short")

// Signer makes and checks the tokens of run pages. A token is the HMAC-
// SHA256 of the run's name under a server key, cut to 192 bits and
// base64url-encoded, so that a link works for exactly one run and cannot
// be made without the key. Tokens do not expire: a status link must keep
// working as long as the archive keeps the run.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer that signs with key, which it copies. The key
// should come from a file (never a flag's value) and hold at least
// MinKeyLen random bytes; every replica must use the same key.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("signing key of %d bytes, want at least %d: %w",
			len(key), MinKeyLen, ErrShortKey)
	}

	return &Signer{key: append([]byte(nil), key...)}, nil
}

// Token returns the token of the run called name.
func (s *Signer) Token(name string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tokenDomain))
	m.Write([]byte(name))

	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:tokenLen])
}

// Valid reports whether token is the token of the run called name. The
// comparison takes the same time wherever the first wrong byte is.
func (s *Signer) Valid(name, token string) bool {
	want := s.Token(name)

	return subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// URL returns the signed address of the page of the run called name, under
// publicURL, yaci's public address (a trailing slash is ignored).
func (s *Signer) URL(publicURL, name string) string {
	return strings.TrimRight(publicURL, "/") + "/runs/" + url.PathEscape(name) +
		"?t=" + s.Token(name)
}

// LogValue keeps the key out of log lines that print a Signer.
func (s *Signer) LogValue() slog.Value { return slog.StringValue("[signer]") }

// String keeps the key out of anything that formats a Signer.
func (s *Signer) String() string { return "[signer]" }

// GoString keeps the key out of %#v.
func (s *Signer) GoString() string { return "[signer]" }
