package github

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// redacted is what a Secret prints as, whatever verb or encoder asks.
const redacted = "[redacted]"

// Secret holds a credential: a token, or an App's private key in PEM form.
// It prints, logs and marshals as "[redacted]" so that a secret handed to
// fmt, log/slog or encoding/json by mistake never reaches a log line. Code
// that must send the value on, to GitHub or into a Kubernetes Secret, calls
// Reveal, which makes those few places easy to find.
type Secret []byte

// ReadSecret reads a secret from a file, the only way yaci takes secrets in.
// Surrounding white space, such as the newline an editor or "kubectl create
// secret --from-file" leaves, is trimmed. An empty file is an error.
func ReadSecret(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %w", path, err)
	}

	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("read secret file %s: file is empty", path)
	}

	return Secret(b), nil
}

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not print the bytes either.
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb, %x and %q included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "[redacted]" as a slog value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns "[redacted]" as a JSON string. Without it a Secret
// inside a struct that slog's JSON handler prints would come out in base64.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]", for encoders that use text marshalling.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
