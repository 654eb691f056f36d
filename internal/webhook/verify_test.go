package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignaturePublishedVectors checks the signature check against the
// test vectors GitHub and Octokit publish, directly and through ServeHTTP.
func TestSignaturePublishedVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sharedDir, "signatures", "x-hub-signature-256.json"))
	if err != nil {
		t.Skipf("no published vectors: %v", err)
	}
	var doc struct {
		Vectors []struct {
			ID            string `json:"id"`
			Secret        string `json:"secret"`
			PayloadBase64 string `json:"payload_base64"`
			Header        string `json:"x_hub_signature_256"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no vectors in the file")
	}

	for _, v := range doc.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			payload, err := base64.StdEncoding.DecodeString(v.PayloadBase64)
			if err != nil {
				t.Fatal(err)
			}
			secret := []byte(v.Secret)

			checkVector(t, secret, payload, v.Header)

			// Through the intake, as a ping, which needs no decoding.
			in, err := New(Options{Secret: secret}, newRecorder(nil))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(in)
			t.Cleanup(srv.Close)
			for header, want := range map[string]int{
				v.Header:                               http.StatusOK,
				Sign([]byte("not "+v.Secret), payload): http.StatusUnauthorized,
			} {
				got := send(t, srv.Client(), srv.URL, delivery{event: "ping", guid: v.ID,
					body: payload, signature: header})
				if got.code != want {
					t.Errorf("header %s: status %d, want %d", header, got.code, want)
				}
			}
		})
	}
}

// TestSignatureProjectVectors checks the signature check against MACs that
// openssl computed over the project's fixtures (see testdata/signatures.json).
func TestSignatureProjectVectors(t *testing.T) {
	var doc struct {
		Secret  string `json:"secret"`
		Vectors []struct {
			File   string `json:"file"`
			Header string `json:"x_hub_signature_256"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(fixture(t, "signatures.json"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Secret != string(testSecret) {
		t.Fatalf("signatures.json uses another secret than testSecret")
	}

	for _, v := range doc.Vectors {
		t.Run(v.File, func(t *testing.T) {
			body := fixture(t, v.File)

			checkVector(t, testSecret, body, v.Header)

			// The same header gets a signed fixture through the intake.
			kind, _, _ := strings.Cut(strings.TrimSuffix(v.File, ".json"), "-")
			_, srv := newIntake(t, Options{}, newRecorder(nil))
			got := send(t, srv.Client(), srv.URL, delivery{event: kind, guid: "vector",
				body: body, signature: v.Header})
			if got.code != http.StatusAccepted && got.code != http.StatusOK {
				t.Errorf("status %d %q, want 200 or 202", got.code, got.body)
			}
		})
	}
}

// checkVector checks that header is accepted for payload under secret, and
// that a MAC computed here with crypto/hmac agrees; then that changing
// the payload, the header or the secret by a little is refused.
func checkVector(t *testing.T, secret, payload []byte, header string) {
	t.Helper()
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); header != want {
		t.Fatalf("vector header %s, crypto/hmac computes %s", header, want)
	}
	if Sign(secret, payload) != header {
		t.Errorf("Sign = %s, want %s", Sign(secret, payload), header)
	}
	if !validSignature(secret, payload, header) {
		t.Fatal("the vector's signature is refused")
	}

	flipped := []byte(header)
	last := len(flipped) - 1
	flipped[last] = "01"[(flipped[last]-'0'+1)%2] // any other hex digit
	bad := map[string]struct {
		secret, payload []byte
		header          string
	}{
		"payload with a byte more": {secret, append(append([]byte{}, payload...), '\n'), header},
		"last hex digit changed":   {secret, payload, string(flipped)},
		"other secret":             {append([]byte("x"), secret...), payload, header},
		"no prefix":                {secret, payload, strings.TrimPrefix(header, "sha256=")},
		"empty header":             {secret, payload, ""},
	}
	for name, c := range bad {
		if validSignature(c.secret, c.payload, c.header) {
			t.Errorf("%s: accepted", name)
		}
	}
}
