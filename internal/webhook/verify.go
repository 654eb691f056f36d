package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// signaturePrefix starts the X-Hub-Signature-256 header's value; the rest
// is the hex HMAC-SHA256 of the raw body keyed with the webhook secret.
const signaturePrefix = "sha256="

// validSignature reports whether header is a correct X-Hub-Signature-256
// value for body under secret. The comparison takes the same time whatever
// the bytes, so a caller cannot learn the expected MAC byte by byte.
func validSignature(secret, body []byte, header string) bool {
	hexMAC, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(hexMAC) != 2*sha256.Size {
		return false
	}

	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, []byte(hexMAC)); err != nil {
		return false
	}

	return hmac.Equal(got, computeMAC(secret, body))
}

// computeMAC returns the HMAC-SHA256 of body keyed with secret.
func computeMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)

	return m.Sum(nil)
}

// Sign returns the X-Hub-Signature-256 header value GitHub would send for
// body under secret. Yaci uses it in tests and in tools that replay
// deliveries against a running instance.
func Sign(secret, body []byte) string {
	return signaturePrefix + hex.EncodeToString(computeMAC(secret, body))
}
