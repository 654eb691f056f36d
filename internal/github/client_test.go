package github_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
)

const (
	testToken = "ghp_test0123456789SECRET"
	owner     = "octo"
	repo      = "hello"
	sha       = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	appID     = 4242
)

// fastRetry keeps backoff waits short; waits GitHub names are still
// honoured as sent.
var fastRetry = github.RetryPolicy{
	MaxAttempts:     4,
	InitialInterval: time.Millisecond,
	MaxInterval:     5 * time.Millisecond,
	MaxWait:         3 * time.Second,
}

// newTokenClient returns a client authenticated with a token the fake s
// accepts; change adjusts its options.
func newTokenClient(t testing.TB, s *githubtest.Server, change ...func(*github.Options)) *github.Client {
	t.Helper()
	s.SetToken(testToken)
	return newClient(t, github.Options{BaseURL: s.URL, Token: github.Secret(testToken)}, change...)
}

// newAppClient returns a client authenticated as an App whose key the fake
// s checks.
func newAppClient(t testing.TB, s *githubtest.Server, change ...func(*github.Options)) *github.Client {
	t.Helper()
	key, pemKey := appKey(t)
	s.SetAppKey(appID, &key.PublicKey)
	return newClient(t, github.Options{BaseURL: s.URL, AppID: appID, AppKey: pemKey}, change...)
}

func newClient(t testing.TB, o github.Options, change ...func(*github.Options)) *github.Client {
	t.Helper()
	o.Retry = fastRetry
	o.Timeout = 5 * time.Second
	o.Logger = slog.New(slog.DiscardHandler)
	for _, f := range change {
		f(&o)
	}
	c, err := github.New(o)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

var testKey struct {
	once sync.Once
	key  *rsa.PrivateKey
	pem  github.Secret
	err  error
}

// appKey returns an RSA key, made once per test binary because making one
// is slow, and its PKCS#1 PEM form, as GitHub hands App keys out.
func appKey(t testing.TB) (*rsa.PrivateKey, github.Secret) {
	t.Helper()
	testKey.once.Do(func() {
		testKey.key, testKey.err = rsa.GenerateKey(rand.Reader, 2048)
		if testKey.err == nil {
			testKey.pem = pem.EncodeToMemory(&pem.Block{
				Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey.key),
			})
		}
	})
	if testKey.err != nil {
		t.Fatal(testKey.err)
	}
	return testKey.key, testKey.pem
}

func TestNewValidates(t *testing.T) {
	_, pemKey := appKey(t)
	tests := []struct {
		name string
		opts github.Options
		ok   bool
	}{
		{"token", github.Options{Token: github.Secret("t")}, true},
		{"app", github.Options{AppID: 1, AppKey: pemKey}, true},
		{"nothing", github.Options{}, false},
		{"token and app", github.Options{Token: github.Secret("t"), AppID: 1, AppKey: pemKey}, false},
		{"app id without key", github.Options{AppID: 1}, false},
		{"key without app id", github.Options{AppKey: pemKey}, false},
		{"key that is not pem",
			github.Options{AppID: 1, AppKey: github.Secret("not-a-key-SECRET")}, false},
		{"base url not http", github.Options{Token: github.Secret("t"), BaseURL: "ftp://x/"}, false},
		{"negative retry", github.Options{Token: github.Secret("t"),
			Retry: github.RetryPolicy{MaxAttempts: -1}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := github.New(tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("New() error = %v, want ok = %v", err, tc.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "PRIVATE") {
					t.Errorf("error %q shows the key", err)
				}
				return
			}
			if err := c.Check(t.Context()); err != nil {
				t.Errorf("Check() = %v", err)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	s := githubtest.NewServer(t)
	config := []byte("jobs:\n  - name: test\n    run: go test ./...\n")
	big := bytes.Repeat([]byte("# padding line\n"), 100_000) // 1.5 MB, over the 1 MB line
	s.SetFile(owner, repo, sha, ".yaci.yml", config)
	s.SetFile(owner, repo, "main", "ci/nested dir/conf.yml", config)
	s.SetFile(owner, repo, "main", "manifests/large.yaml", big)
	s.SetFile(owner, repo, "main", "too-big.yml", bytes.Repeat([]byte("a"), 100))
	s.SetFile(owner, repo, "main", "v1..v2.yml", config)

	tests := []struct {
		name    string
		path    string
		ref     string
		limit   int64
		want    []byte
		wantErr error
		calls   int
	}{
		{name: "base64 file at a sha", path: ".yaci.yml", ref: sha, want: config, calls: 1},
		{name: "nested path with a space", path: "ci/nested dir/conf.yml", ref: "main",
			want: config, calls: 1},
		{name: "large file read raw", path: "manifests/large.yaml", ref: "main",
			limit: 2 << 20, want: big, calls: 2},
		{name: "large file over the limit is not downloaded", path: "manifests/large.yaml",
			ref: "main", wantErr: github.ErrTooLarge, calls: 1},
		{name: "over a small limit", path: "too-big.yml", ref: "main", limit: 64,
			wantErr: github.ErrTooLarge, calls: 1},
		{name: "missing file", path: "nope.yml", ref: "main", wantErr: github.ErrNotFound, calls: 1},
		{name: "missing ref", path: ".yaci.yml", ref: "gone", wantErr: github.ErrNotFound, calls: 1},
		{name: "directory", path: "ci", ref: "main", wantErr: github.ErrNotFile, calls: 1},
		{name: "dots inside a name", path: "v1..v2.yml", ref: "main", want: config, calls: 1},
		{name: "path escaping the repo", path: "../x", ref: "main", calls: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenClient(t, s, func(o *github.Options) {
				o.MaxFileSize = tc.limit
				o.CacheSize = -1
			})
			before := s.Calls(githubtest.EndpointGetContent)

			got, err := c.ReadFile(t.Context(), 0, owner, repo, tc.path, tc.ref)
			if calls := s.Calls(githubtest.EndpointGetContent) - before; calls != tc.calls {
				t.Errorf("%d API calls, want %d", calls, tc.calls)
			}
			if tc.want == nil {
				if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadFile() error = %v, want %v", err, tc.wantErr)
				}
				if !github.IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadFile() error = %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("ReadFile() = %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

func TestReadFileUsesETag(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetFile(owner, repo, "main", ".yaci.yml", []byte("v1"))
	var mu sync.Mutex
	var seen []int
	c := newTokenClient(t, s, func(o *github.Options) {
		o.Observe = func(ob github.Observation) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ob.StatusCode)
		}
	})
	read := func() string {
		t.Helper()
		b, err := c.ReadFile(t.Context(), 0, owner, repo, ".yaci.yml", "main")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	first := read()
	used := s.RateUsed()
	second := read()
	if first != "v1" || second != "v1" {
		t.Errorf("reads = %q, %q, want v1 twice", first, second)
	}
	if n := s.Responses(githubtest.EndpointGetContent, http.StatusNotModified); n != 1 {
		t.Errorf("%d answers were 304, want the second read to be one", n)
	}
	if s.RateUsed() != used {
		t.Errorf("the cached read cost rate limit: %d used, was %d", s.RateUsed(), used)
	}

	s.SetFile(owner, repo, "main", ".yaci.yml", []byte("v2"))
	if got := read(); got != "v2" {
		t.Errorf("after a change read %q, want v2", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{200, 304, 200}; !equalInts(seen, want) {
		t.Errorf("observed statuses %v, want %v", seen, want)
	}
}

func TestReadFileCacheIsNotShared(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetFile(owner, repo, "main", "f", []byte("abc"))
	c := newTokenClient(t, s)

	b, err := c.ReadFile(t.Context(), 0, owner, repo, "f", "main")
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 'X' // a caller changing its copy must not change the cache
	b, err = c.ReadFile(t.Context(), 0, owner, repo, "f", "main")
	if err != nil || string(b) != "abc" {
		t.Errorf("second read = %q, %v; want abc", b, err)
	}
}

func TestSetStatus(t *testing.T) {
	long := strings.Repeat("ü", 200)
	tests := []struct {
		name    string
		status  github.Status
		want    githubtest.RecordedStatus
		wantErr error
	}{
		{name: "all fields",
			status: github.Status{State: github.StatePending, Context: "yaci/push/test",
				Description: "queued", TargetURL: "https://yaci.example/runs/1"},
			want: githubtest.RecordedStatus{State: "pending", Context: "yaci/push/test",
				Description: "queued", TargetURL: "https://yaci.example/runs/1"}},
		{name: "no target url",
			status: github.Status{State: github.StateSuccess, Context: "yaci/pr/lint", Description: "ok"},
			want:   githubtest.RecordedStatus{State: "success", Context: "yaci/pr/lint", Description: "ok"}},
		{name: "long description is cut with an ellipsis",
			status: github.Status{State: github.StateFailure, Context: "yaci/push/test", Description: long},
			want: githubtest.RecordedStatus{State: "failure", Context: "yaci/push/test",
				Description: strings.Repeat("ü", 139) + "…"}},
		{name: "unknown state is not sent",
			status:  github.Status{State: "bogus", Context: "yaci/push/test"},
			wantErr: github.ErrInvalidStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := githubtest.NewServer(t)
			c := newTokenClient(t, s)

			err := c.SetStatus(t.Context(), 0, owner, repo, sha, tc.status)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !github.IsPermanent(err) {
					t.Errorf("SetStatus() error = %v, want permanent %v", err, tc.wantErr)
				}
				if n := s.Calls(githubtest.EndpointCreateCommitStatus); n != 0 {
					t.Errorf("%d API calls for an invalid status", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetStatus() error = %v", err)
			}
			got := s.Statuses(owner, repo, sha)
			if len(got) != 1 {
				t.Fatalf("recorded %d statuses, want 1", len(got))
			}
			got[0].ID, got[0].CreatedAt = 0, time.Time{}
			if got[0] != tc.want {
				t.Errorf("recorded %+v\nwant     %+v", got[0], tc.want)
			}
		})
	}
}

func TestCloneTokenApp(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetFile(owner, repo, "", "f", []byte("x"))
	s.SetFile(owner, "other", "", "f", []byte("x"))
	c := newAppClient(t, s)
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check() = %v", err)
	}

	tok, err := c.CloneToken(t.Context(), 7, owner, repo)
	if err != nil {
		t.Fatalf("CloneToken() error = %v", err)
	}
	if until := time.Until(tok.ExpiresAt); until < 50*time.Minute || until > time.Hour {
		t.Errorf("token expires in %v, want about an hour", until)
	}
	issued := s.IssuedTokens()
	if len(issued) != 1 {
		t.Fatalf("%d tokens issued, want 1", len(issued))
	}
	got := issued[0]
	if got.Token != tok.Value.Reveal() || got.InstallationID != 7 {
		t.Errorf("issued %+v, returned %s", got, tok.Value.Reveal())
	}
	if len(got.Repositories) != 1 || got.Repositories[0] != repo ||
		len(got.Permissions) != 1 || got.Permissions["contents"] != "read" {
		t.Errorf("token asked for repositories %v and permissions %v, "+
			"want [%s] and contents:read only", got.Repositories, got.Permissions, repo)
	}

	// The fake enforces the scope, as GitHub does.
	reader := newClient(t, github.Options{BaseURL: s.URL, Token: tok.Value})
	if _, err := reader.ReadFile(t.Context(), 0, owner, repo, "f", ""); err != nil {
		t.Errorf("the clone token cannot read its repository: %v", err)
	}
	_, err = reader.ReadFile(t.Context(), 0, owner, "other", "f", "")
	if !errors.Is(err, github.ErrNotFound) {
		t.Errorf("the clone token reads another repository: %v", err)
	}
	err = reader.SetStatus(t.Context(), 0, owner, repo, sha, github.Status{State: "success"})
	if err == nil {
		t.Error("the clone token can write statuses")
	}
}

func TestCloneTokenWithToken(t *testing.T) {
	s := githubtest.NewServer(t)
	c := newTokenClient(t, s)

	tok, err := c.CloneToken(t.Context(), 0, owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Value.Reveal() != testToken || !tok.ExpiresAt.IsZero() {
		t.Errorf("CloneToken() = %s expiring %v, want the configured token", tok.Value, tok.ExpiresAt)
	}
	if n := s.Calls(githubtest.EndpointCreateInstallationToken); n != 0 {
		t.Errorf("%d API calls", n)
	}
}

func TestInstallationTransports(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetFile(owner, repo, "", "f", []byte("x"))
	c := newAppClient(t, s)
	read := func(inst int64) {
		t.Helper()
		if _, err := c.ReadFile(t.Context(), inst, owner, repo, "f", ""); err != nil {
			t.Fatalf("read as installation %d: %v", inst, err)
		}
	}

	read(7)
	read(7)
	read(8)
	read(7)
	issued := s.IssuedTokens()
	if len(issued) != 2 || issued[0].InstallationID != 7 || issued[1].InstallationID != 8 {
		t.Errorf("issued %+v, want one token for installation 7, then one for 8", issued)
	}
	for _, tok := range issued {
		if len(tok.Repositories) != 0 || len(tok.Permissions) != 0 {
			t.Errorf("installation token was limited: %+v", tok)
		}
	}

	// A token about to expire is replaced before it is used.
	s.SetTokenTTL(30 * time.Second)
	read(9)
	read(9)
	if n := len(s.IssuedTokens()); n != 4 {
		t.Errorf("%d tokens issued, want two more for short-lived tokens of installation 9", n)
	}

	_, err := c.ReadFile(t.Context(), 0, owner, repo, "f", "")
	if !errors.Is(err, github.ErrNoInstallation) || !github.IsPermanent(err) {
		t.Errorf("app call without installation: %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// withTimeout returns a context that ends after d, ended with the test.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
