package github_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
)

// syncBuffer is a log destination safe for the concurrent writes of a
// server's and a client's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSecretRedacts(t *testing.T) {
	sec := github.Secret("hunter2-SECRET")
	tok := github.Token{Value: sec, ExpiresAt: time.Unix(0, 0).UTC()}
	opts := github.Options{Token: sec, AppKey: sec}
	js, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var logged syncBuffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("mistake", "secret", sec, "token", tok, "options", opts)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("mistake", "secret", sec, "token", tok)

	renderings := map[string]string{
		"%v": fmt.Sprintf("%v", sec), "%s": fmt.Sprintf("%s", sec),
		"%x": fmt.Sprintf("%x", sec), "%q": fmt.Sprintf("%q", sec),
		"%#v": fmt.Sprintf("%#v", sec), "token %+v": fmt.Sprintf("%+v", tok),
		"token %#v": fmt.Sprintf("%#v", tok), "options %+v": fmt.Sprintf("%+v", opts),
		"json": string(js), "slog": logged.String(),
	}
	for name, out := range renderings {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74") {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") && name != "options %+v" {
			t.Errorf("%s = %q, want it to say [redacted]", name, out)
		}
	}
	if sec.Reveal() != "hunter2-SECRET" {
		t.Errorf("Reveal() = %q", sec.Reveal())
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
		ok                  bool
	}{
		{"trailing newline", "tok\n", "tok", true},
		{"surrounding space", "  tok \r\n", "tok", true},
		{"empty", "\n", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := github.ReadSecret(path)
			if (err == nil) != tc.ok || got.Reveal() != tc.want {
				t.Errorf("ReadSecret() = %q, %v; want %q, ok %v", got.Reveal(), err, tc.want, tc.ok)
			}
		})
	}
	if _, err := github.ReadSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadSecret() of a missing file succeeded")
	}
}

// TestNoSecretInLogsOrErrors drives every call, with failures and retries,
// through clients that log at Debug, and checks no credential shows up in
// the log or in an error.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetFile(owner, repo, "", "f", []byte("x"))
	var logged syncBuffer
	debug := func(o *github.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error(), fmt.Sprintf("%+v", err))
		}
	}
	ctx := t.Context()

	tokenClient := newTokenClient(t, s, debug)
	s.FailNext(1, http.StatusBadGateway, 0)
	_, err := tokenClient.ReadFile(ctx, 0, owner, repo, "f", "")
	note(err)
	note(tokenClient.SetStatus(ctx, 0, owner, repo, sha, github.Status{State: "bogus"}))
	s.FailNext(1, http.StatusUnauthorized, 0)
	_, err = tokenClient.ReadFile(ctx, 0, owner, repo, "f", "")
	note(err)

	appClient := newAppClient(t, s, debug)
	s.Fail(1, githubtest.Failure{Endpoint: githubtest.EndpointCreateInstallationToken, Status: 502})
	_, err = appClient.ReadFile(ctx, 7, owner, repo, "f", "")
	note(err)
	tok, err := appClient.CloneToken(ctx, 7, owner, repo)
	note(err)
	s.Fail(1, githubtest.Failure{Endpoint: githubtest.EndpointCreateInstallationToken, Status: 401})
	_, err = appClient.ReadFile(ctx, 8, owner, repo, "f", "")
	note(err)
	if len(errs) < 4 {
		t.Fatalf("only %d errors to check; the failures were not met", len(errs)/2)
	}

	_, pemKey := appKey(t)
	keyLine := strings.Split(pemKey.Reveal(), "\n")[1]
	secrets := map[string]string{
		"configured token": testToken,
		"app key":          keyLine,
		"app key header":   "PRIVATE KEY",
		"clone token":      tok.Value.Reveal(),
		"jwt":              "eyJ", // every JWT starts with the encoded {"
	}
	for _, it := range s.IssuedTokens() {
		secrets["installation token "+it.Token] = it.Token
	}
	out := logged.String() + strings.Join(errs, "\n")
	if !strings.Contains(out, "github request") || !strings.Contains(out, "retrying") {
		t.Fatalf("the log shows neither requests nor retries:\n%s", out)
	}
	for name, secret := range secrets {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("the %s appears in the log or an error", name)
		}
	}
}
