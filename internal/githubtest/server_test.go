package githubtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	jwt "github.com/golang-jwt/jwt/v4"
)

const testToken = "test-token"

// recordingTB collects the errors the server reports instead of failing
// the test, for tests that the server reports them.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// request is one raw request to the fake.
type request struct {
	method, path, auth string
	body               any
	header             map[string]string
}

// send makes a raw request and returns the response with its body read.
func send(t *testing.T, s *Server, rq request) (*http.Response, []byte) {
	t.Helper()

	var body io.Reader
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), rq.method,
		strings.TrimSuffix(s.URL, "/")+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.auth != "" {
		req.Header.Set("Authorization", rq.auth)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}

	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if s.Validating() && resp.StatusCode != http.StatusUnprocessableEntity {
		checkResponse(t, s, req, resp, b)
	}

	return resp, b
}

// checkResponse validates the fake's answer against GitHub's description,
// which shows the fake speaks GitHub's shapes.
func checkResponse(t *testing.T, s *Server, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()

	route, params, err := s.spec.match(req)
	if err != nil {
		t.Fatalf("match %s %s: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
		},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{MultiError: true},
	}
	if resp.Header.Get("Content-Type") == "application/vnd.github.raw; charset=utf-8" {
		return // the description documents no schema for raw bytes
	}
	if err := openapi3filter.ValidateResponse(t.Context(), in); err != nil {
		t.Errorf("%s %s: response %d does not match the description: %v\n%s",
			req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
}

func newServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer(t)
	s.SetToken(testToken)
	return s
}

func TestGetContent(t *testing.T) {
	s := newServer(t)
	small := []byte("jobs:\n  - name: test\n")
	large := bytes.Repeat([]byte("x"), LargeFile+1)
	s.SetFile("Octo", "Hello", "main", ".yaci.yml", small)
	s.SetFile("octo", "hello", "main", "deploy/big.yaml", large)
	s.SetFile("octo", "hello", "0123456789abcdef0123456789abcdef01234567", ".yaci.yml", small)

	tests := []struct {
		name     string
		path     string
		header   map[string]string
		auth     string
		status   int
		encoding string
		body     []byte
	}{
		{name: "base64 file", path: "/repos/octo/hello/contents/.yaci.yml?ref=main",
			status: 200, encoding: "base64", body: small},
		{name: "case of owner and repo", path: "/repos/OCTO/Hello/contents/.yaci.yml",
			status: 200, encoding: "base64", body: small},
		{name: "at a sha", path: "/repos/octo/hello/contents/.yaci.yml?ref=0123456789abcdef0123456789abcdef01234567",
			status: 200, encoding: "base64", body: small},
		{name: "large file has no content", path: "/repos/octo/hello/contents/deploy/big.yaml",
			status: 200, encoding: "none"},
		{name: "raw media type", path: "/repos/octo/hello/contents/deploy/big.yaml",
			header: map[string]string{"Accept": "application/vnd.github.raw"}, status: 200, body: large},
		{name: "directory", path: "/repos/octo/hello/contents/deploy", status: 200},
		{name: "missing file", path: "/repos/octo/hello/contents/nope.yml", status: 404},
		{name: "missing ref", path: "/repos/octo/hello/contents/.yaci.yml?ref=other", status: 404},
		{name: "no token", path: "/repos/octo/hello/contents/.yaci.yml", auth: "-", status: 401},
		{name: "unknown token", path: "/repos/octo/hello/contents/.yaci.yml",
			auth: "token nope", status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auth := tc.auth
			switch auth {
			case "":
				auth = "Bearer " + testToken
			case "-":
				auth = ""
			}
			resp, body := send(t, s, request{method: "GET", path: tc.path, auth: auth, header: tc.header})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				var e apiError
				if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
					t.Errorf("error body %s is not GitHub's error shape (%v)", body, err)
				}
				return
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if tc.encoding == "" {
				if tc.body != nil && !bytes.Equal(body, tc.body) {
					t.Errorf("raw body differs: %d bytes, want %d", len(body), len(tc.body))
				}
				return
			}
			var f contentEntry
			if err := json.Unmarshal(body, &f); err != nil {
				t.Fatal(err)
			}
			if f.Encoding != tc.encoding {
				t.Errorf("encoding = %q, want %q", f.Encoding, tc.encoding)
			}
			if tc.body != nil {
				got, err := base64.StdEncoding.DecodeString(*f.Content)
				if err != nil || !bytes.Equal(got, tc.body) {
					t.Errorf("content = %q (%v), want %q", got, err, tc.body)
				}
				if f.SHA != blobSHA(tc.body) {
					t.Errorf("sha = %s, want the git blob id %s", f.SHA, blobSHA(tc.body))
				}
			}
		})
	}
}

func TestGetContentConditional(t *testing.T) {
	s := newServer(t)
	s.SetFile("octo", "hello", "", "a.txt", []byte("one"))
	get := func(etag string) *http.Response {
		resp, _ := send(t, s, request{method: "GET", path: "/repos/octo/hello/contents/a.txt",
			auth: "token " + testToken, header: map[string]string{"If-None-Match": etag}})
		return resp
	}

	first := get("")
	used := s.RateUsed()
	if got := get(first.Header.Get("ETag")); got.StatusCode != http.StatusNotModified {
		t.Fatalf("with the current ETag: status %d, want 304", got.StatusCode)
	}
	if s.RateUsed() != used {
		t.Errorf("a 304 counted against the rate limit: used %d, was %d", s.RateUsed(), used)
	}
	if n := s.Responses(EndpointGetContent, http.StatusNotModified); n != 1 {
		t.Errorf("Responses(304) = %d, want 1", n)
	}

	s.SetFile("octo", "hello", "", "a.txt", []byte("two"))
	if got := get(first.Header.Get("ETag")); got.StatusCode != http.StatusOK {
		t.Errorf("after a change: status %d, want 200", got.StatusCode)
	}
	if n := s.Calls(EndpointGetContent); n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}
}

func TestCreateStatus(t *testing.T) {
	s := newServer(t)
	sha := "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	path := "/repos/octo/hello/statuses/" + sha

	resp, body := send(t, s, request{method: "POST", path: path, auth: "token " + testToken,
		body: map[string]any{"state": "pending", "context": "yaci/push/test",
			"description": "queued", "target_url": "https://yaci.example/runs/1"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	send(t, s, request{method: "POST", path: path, auth: "token " + testToken,
		body: map[string]any{"state": "success", "context": "yaci/push/test"}})

	got := s.Statuses("Octo", "Hello", sha)
	if len(got) != 2 || got[0].State != "pending" ||
		got[0].TargetURL != "https://yaci.example/runs/1" ||
		got[1].State != "success" || got[1].Description != "" {
		t.Errorf("recorded %+v", got)
	}
	if n := s.StatusCount("octo", "hello", sha, "yaci/push/test", "success"); n != 1 {
		t.Errorf("StatusCount = %d, want 1", n)
	}

	long := strings.Repeat("é", maxDescription+1)
	resp, body = send(t, s, request{method: "POST", path: path, auth: "token " + testToken,
		body: map[string]any{"state": "failure", "description": long}})
	if resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), "too long") {
		t.Errorf("description over 140 characters: status %d: %s", resp.StatusCode, body)
	}
}

func TestValidationCatchesBadRequests(t *testing.T) {
	probe := NewServer(t)
	if !probe.Validating() {
		t.Skip("GitHub's OpenAPI description is not available")
	}

	tests := []struct {
		name string
		rq   request
		want string
	}{
		{name: "status state outside the enum",
			rq: request{method: "POST", path: "/repos/o/r/statuses/abc",
				body: map[string]any{"state": "bogus"}},
			want: "bogus"},
		{name: "status without state",
			rq: request{method: "POST", path: "/repos/o/r/statuses/abc",
				body: map[string]any{"context": "x"}},
			want: "state"},
		{name: "description of the wrong type",
			rq: request{method: "POST", path: "/repos/o/r/statuses/abc",
				body: map[string]any{"state": "success", "description": 7}},
			want: "description"},
		{name: "token permissions outside the enum",
			rq: request{method: "POST", path: "/app/installations/1/access_tokens",
				body: map[string]any{"permissions": map[string]string{"contents": "everything"}}},
			want: "contents"},
		{name: "installation id not an integer",
			rq: request{method: "POST", path: "/app/installations/abc/access_tokens",
				body: map[string]any{}},
			want: "installation_id"},
		{name: "undocumented operation",
			rq:   request{method: "DELETE", path: "/repos/o/r/statuses/abc"},
			want: "no operation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			s := NewServer(rec)
			s.SetToken(testToken)
			tc.rq.auth = "token " + testToken

			resp, _ := send(t, s, tc.rq)
			errs := rec.errors()
			if len(errs) == 0 {
				t.Fatalf("no violation reported; status %d", resp.StatusCode)
			}
			if !strings.Contains(errs[0], tc.want) {
				t.Errorf("violation %q does not mention %q", errs[0], tc.want)
			}
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422", resp.StatusCode)
			}
		})
	}
}

func TestUnknownEndpointIsReported(t *testing.T) {
	rec := &recordingTB{TB: t}
	s := NewServer(rec)
	resp, _ := send(t, s, request{method: "GET", path: "/user", auth: "token x"})
	if len(rec.errors()) == 0 {
		t.Errorf("no error reported for GET /user (status %d)", resp.StatusCode)
	}
	if s.Calls(EndpointUnknown) != 1 {
		t.Errorf("Calls(unknown) = %d, want 1", s.Calls(EndpointUnknown))
	}
}

func TestInstallationTokens(t *testing.T) {
	s := newServer(t)
	key := newKey(t)
	s.SetAppKey(42, &key.PublicKey)
	s.SetFile("octo", "hello", "", "f", []byte("x"))
	s.SetFile("octo", "other", "", "f", []byte("x"))

	resp, body := send(t, s, request{method: "POST", path: "/app/installations/7/access_tokens",
		auth: "Bearer " + appJWT(t, key, 42, time.Minute),
		body: map[string]any{"repositories": []string{"hello"},
			"permissions": map[string]string{"contents": "read"}}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || !strings.HasPrefix(tok.Token, "ghs_") {
		t.Fatalf("token response %s (%v)", body, err)
	}
	issued := s.IssuedTokens()
	if len(issued) != 1 || issued[0].InstallationID != 7 || issued[0].Repositories[0] != "hello" ||
		issued[0].Permissions["contents"] != "read" {
		t.Errorf("issued %+v", issued)
	}

	uses := []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"reads its repository", "GET", "/repos/octo/hello/contents/f", nil, 200},
		{"cannot see another repository", "GET", "/repos/octo/other/contents/f", nil, 404},
		{"cannot write statuses", "POST", "/repos/octo/hello/statuses/abc",
			map[string]string{"state": "success"}, 403},
	}
	for _, u := range uses {
		t.Run(u.name, func(t *testing.T) {
			resp, body := send(t, s, request{method: u.method, path: u.path,
				auth: "token " + tok.Token, body: u.body})
			if resp.StatusCode != u.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, u.status, body)
			}
		})
	}

	bad := []struct {
		name string
		auth string
	}{
		{"no jwt", ""},
		{"plain token", "token " + testToken},
		{"wrong key", "Bearer " + appJWT(t, newKey(t), 42, time.Minute)},
		{"wrong issuer", "Bearer " + appJWT(t, key, 43, time.Minute)},
		{"expired", "Bearer " + appJWT(t, key, 42, -time.Minute)},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			resp, _ := send(t, s, request{method: "POST", path: "/app/installations/7/access_tokens",
				auth: b.auth, body: map[string]any{}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	reset := time.Now().Add(time.Minute)
	tests := []struct {
		name   string
		fail   func(*Server)
		status int
		header map[string]string
		doc    string
	}{
		{name: "server error with retry-after",
			fail:   func(s *Server) { s.FailNext(1, 502, 1500*time.Millisecond) },
			status: 502, header: map[string]string{"Retry-After": "2"}},
		{name: "secondary rate limit",
			fail:   func(s *Server) { s.SecondaryRateLimitNext(1, 3*time.Second) },
			status: 403, header: map[string]string{"Retry-After": "3"},
			doc: "secondary-rate-limits"},
		{name: "primary rate limit",
			fail:   func(s *Server) { s.PrimaryRateLimitNext(1, 429, reset) },
			status: 429, header: map[string]string{"X-RateLimit-Remaining": "0",
				"X-RateLimit-Reset": strconv.FormatInt(reset.Unix(), 10)}},
		{name: "only on its endpoint",
			fail: func(s *Server) {
				s.Fail(1, Failure{Endpoint: EndpointCreateCommitStatus, Status: 500})
			},
			status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.SetFile("o", "r", "", "f", []byte("x"))
			tc.fail(s)
			get := request{method: "GET", path: "/repos/o/r/contents/f", auth: "token " + testToken}

			resp, body := send(t, s, get)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for k, v := range tc.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(string(body), tc.doc) {
				t.Errorf("body %s does not mention %q", body, tc.doc)
			}
			if resp, _ := send(t, s, get); resp.StatusCode != http.StatusOK {
				t.Errorf("after the failure: status %d, want 200", resp.StatusCode)
			}
		})
	}
}

func TestFindDescriptionHonoursEnv(t *testing.T) {
	t.Setenv(EnvOpenAPI, t.TempDir()+"/missing.json")
	if _, err := findDescription(); err == nil {
		t.Error("a named description that does not exist was not reported")
	}
}

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// appJWT signs a JWT as a GitHub App does, expiring after ttl.
func appJWT(t *testing.T, key *rsa.PrivateKey, appID int64, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	claims := jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now.Add(-30 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer:    strconv.FormatInt(appID, 10),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestWorksWithoutDescription(t *testing.T) {
	t.Setenv(EnvOpenAPI, "")
	t.Chdir(t.TempDir()) // no go.mod above, so no shared tree beside it
	rec := &recordingTB{TB: t}
	s := NewServer(rec)
	s.SetToken(testToken)
	if s.Validating() {
		t.Fatal("validating without a description")
	}

	resp, body := send(t, s, request{method: "POST", path: "/repos/o/r/statuses/abc",
		auth: "token " + testToken, body: map[string]any{"state": "bogus"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "state") {
		t.Errorf("bogus state: status %d: %s", resp.StatusCode, body)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("reported %q without a description to check against", errs)
	}
}
