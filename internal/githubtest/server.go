// Package githubtest runs a fake of the part of GitHub's REST API that
// yaci calls, on a real HTTP server, for tests. It answers with GitHub's
// own shapes, status codes and headers, records what it was sent, can be
// told to fail, and, when GitHub's OpenAPI description is at hand, fails the
// test on any request the description does not allow.
//
// The fake is strict about credentials: requests to repositories need a
// token given to SetToken or one the fake issued as an installation token,
// and installation tokens need an App JWT.
package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The endpoints the fake serves, named by their operationId in GitHub's
// OpenAPI description, for Calls and Responses.
const (
	EndpointGetContent              = "repos/get-content"
	EndpointCreateCommitStatus      = "repos/create-commit-status"
	EndpointCreateInstallationToken = "apps/create-installation-access-token"
	// EndpointUnknown counts requests the fake has no handler for.
	EndpointUnknown = "unknown"
)

// rateLimit is the hourly request budget the fake reports, GitHub's for an
// installation.
const rateLimit = 5000

// Server is a fake GitHub API. Its methods are safe for concurrent use,
// also while requests are being served.
type Server struct {
	// URL is the API root to give a client as its base URL, with a
	// trailing slash.
	URL string

	t    testing.TB
	srv  *httptest.Server
	mux  *http.ServeMux
	spec *spec // nil when no OpenAPI description was found

	// mu guards every field below it.
	mu          sync.Mutex
	tokens      map[string]bool
	issued      map[string]IssuedToken // by token value
	issuedOrder []IssuedToken
	appID       int64
	appKey      *rsa.PublicKey
	tokenTTL    time.Duration
	files       map[fileKey][]byte
	statuses    map[shaKey][]RecordedStatus
	statusID    int64
	failures    []pendingFailure
	calls       map[string]int
	responses   map[responseKey]int
	rateUsed    int
	rateReset   time.Time
}

type responseKey struct {
	endpoint string
	status   int
}

// NewServer starts a fake GitHub API that is closed when the test ends. It
// validates every request against GitHub's OpenAPI description when one is
// found (see EnvOpenAPI); a description that is named but cannot be loaded
// fails the test.
func NewServer(t testing.TB) *Server {
	t.Helper()

	s := &Server{
		t:         t,
		tokens:    make(map[string]bool),
		issued:    make(map[string]IssuedToken),
		tokenTTL:  time.Hour,
		files:     make(map[fileKey][]byte),
		statuses:  make(map[shaKey][]RecordedStatus),
		calls:     make(map[string]int),
		responses: make(map[responseKey]int),
		rateReset: time.Now().Add(time.Hour).Truncate(time.Second),
	}
	path, err := findDescription()
	if err != nil {
		t.Fatalf("githubtest: %v", err)
	}
	if path != "" {
		if s.spec, err = loadSpec(path); err != nil {
			t.Fatalf("githubtest: %v", err)
		}
	}

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.getContent)
	s.mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", s.createStatus)
	s.mux.HandleFunc("POST /app/installations/{installation_id}/access_tokens", s.createToken)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/"
	t.Cleanup(s.srv.Close)

	return s
}

// Validating reports whether requests are checked against GitHub's OpenAPI
// description.
func (s *Server) Validating() bool { return s.spec != nil }

// Client returns an HTTP client for the server, for tests that send raw
// requests.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetToken makes the server accept tok, sent as "token TOK" or "Bearer
// TOK", on repository endpoints.
func (s *Server) SetToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = true
}

// Calls returns how many requests the server received for an endpoint,
// failed ones included.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// Responses returns how many times the server answered an endpoint with
// status, such as 304 for conditional reads that cost no rate limit.
func (s *Server) Responses(endpoint string, status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.responses[responseKey{endpoint, status}]
}

// RateUsed returns how many requests counted against the rate limit: all
// but 304 answers, as on GitHub.
func (s *Server) RateUsed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateUsed
}

// serve is the server's handler: it counts the request, checks it against
// the OpenAPI description, injects a pending failure if one matches, and
// then hands it to the endpoint's handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	endpoint := endpointOf(pattern)
	rec := &recorder{ResponseWriter: w}
	defer s.count(endpoint, rec)

	if s.spec != nil {
		if err := s.spec.validateRequest(r); err != nil {
			s.t.Errorf("githubtest: %s %s does not match GitHub's OpenAPI description: %v",
				r.Method, r.URL.RequestURI(), err)
			s.writeError(rec, http.StatusUnprocessableEntity, "Invalid request.\n\n"+err.Error(), "")
			return
		}
	}
	if endpoint == EndpointUnknown {
		s.t.Errorf("githubtest: unexpected request %s %s", r.Method, r.URL.RequestURI())
	}
	if f, ok := s.takeFailure(endpoint); ok {
		s.writeFailure(rec, f)
		return
	}

	s.mux.ServeHTTP(rec, r)
}

// endpointOf names the endpoint a mux pattern serves.
func endpointOf(pattern string) string {
	switch {
	case strings.Contains(pattern, "/contents/"):
		return EndpointGetContent
	case strings.Contains(pattern, "/statuses/"):
		return EndpointCreateCommitStatus
	case strings.Contains(pattern, "/access_tokens"):
		return EndpointCreateInstallationToken
	default:
		return EndpointUnknown
	}
}

func (s *Server) count(endpoint string, rec *recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[endpoint]++
	s.responses[responseKey{endpoint, rec.status}]++
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// writeRateHeaders sets the rate limit headers GitHub sends on every
// answer. A 304 does not count against the limit.
func (s *Server) writeRateHeaders(w http.ResponseWriter, status int) {
	s.mu.Lock()
	if status != http.StatusNotModified {
		s.rateUsed++
	}
	used, reset := s.rateUsed, s.rateReset
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(rateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(rateLimit-used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-GitHub-Request-Id", randomID(8))
}

// writeJSON answers with status and v as JSON, the way GitHub does.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.t.Errorf("githubtest: encode response: %v", err)
		status, body = http.StatusInternalServerError, nil
	}

	s.writeRateHeaders(w, status)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// apiError is GitHub's error body, the basic-error and validation-error
// schemas of its description.
type apiError struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status"`
}

type fieldError struct {
	Resource string `json:"resource"`
	Field    string `json:"field"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

// docsURL is where GitHub's error bodies point when nothing more precise
// applies.
const docsURL = "https://docs.github.com/rest"

func (s *Server) writeError(w http.ResponseWriter, status int, msg, doc string, errs ...fieldError) {
	if doc == "" {
		doc = docsURL
	}
	s.writeJSON(w, status, apiError{
		Message: msg, Errors: errs, DocumentationURL: doc, Status: strconv.Itoa(status),
	})
}

func (s *Server) notFound(w http.ResponseWriter, doc string) {
	s.writeError(w, http.StatusNotFound, "Not Found", doc)
}

// retryAfterSeconds renders a wait as GitHub's Retry-After, whole seconds
// rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%X", b)
}
