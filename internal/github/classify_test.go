package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v62/github"
)

func response(code int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(""))}
}

func TestClassify(t *testing.T) {
	soon := time.Now().Add(10 * time.Second)
	fiveSeconds := 5 * time.Second
	resetHeader := fmt.Sprint(soon.Unix())
	tests := []struct {
		name  string
		err   error
		retry bool
		// wait is the wait classify should name, to within a second.
		wait time.Duration
	}{
		{"primary rate limit", &gh.RateLimitError{Rate: gh.Rate{Reset: gh.Timestamp{Time: soon}},
			Response: response(403)}, true, 10 * time.Second},
		{"secondary rate limit", &gh.AbuseRateLimitError{RetryAfter: &fiveSeconds,
			Response: response(403)}, true, fiveSeconds},
		{"secondary rate limit without a wait", &gh.AbuseRateLimitError{Response: response(403)},
			true, time.Minute},
		{"server error", &gh.ErrorResponse{Response: response(500)}, true, 0},
		{"server error with retry-after", &gh.ErrorResponse{Response: response(503, "Retry-After", "7")},
			true, 7 * time.Second},
		{"wrapped server error", fmt.Errorf("read x: %w", &gh.ErrorResponse{Response: response(502)}),
			true, 0},
		{"429 without headers", &gh.ErrorResponse{Response: response(429)}, true, 0},
		{"429 as a primary limit", &gh.ErrorResponse{Response: response(429,
			"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", resetHeader)}, true, 10 * time.Second},
		{"403 with retry-after", &gh.ErrorResponse{Response: response(403, "Retry-After", "5")},
			true, fiveSeconds},
		{"403", &gh.ErrorResponse{Response: response(403)}, false, 0},
		{"404", &gh.ErrorResponse{Response: response(404)}, false, 0},
		{"422", &gh.ErrorResponse{Response: response(422)}, false, 0},
		{"token refresh 503", fmt.Errorf("refresh: %w",
			&ghinstallation.HTTPError{Response: response(503)}), true, 0},
		{"token refresh without response", &ghinstallation.HTTPError{RootCause: io.EOF}, true, 0},
		{"token refresh 401", &ghinstallation.HTTPError{Response: response(401)}, false, 0},
		{"attempt deadline", context.DeadlineExceeded, true, 0},
		{"network", &url.Error{Op: "Get", URL: "http://x", Err: errors.New("connection refused")},
			true, 0},
		{"anything else", errors.New("decode contents response"), false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			retry, wait := classify(tc.err)
			if retry != tc.retry {
				t.Errorf("retry = %v, want %v", retry, tc.retry)
			}
			if d := wait - tc.wait; d < -time.Second || d > time.Second {
				t.Errorf("wait = %v, want about %v", wait, tc.wait)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly ten", 11, "exactly ten"},
		{"one too many", 11, "one too ma…"},
		{"äöüäöü", 4, "äöü…"},
		{"", 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := truncate(tc.in, tc.n); got != tc.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestOperation(t *testing.T) {
	tests := []struct {
		method, path, want string
	}{
		{"GET", "repos/o/r/contents/.yaci.yml", OpGetContent},
		{"GET", "/repos/o/r/contents/a/b/c", OpGetContent},
		{"POST", "repos/o/r/statuses/abc", OpCreateCommitStatus},
		{"POST", "app/installations/12/access_tokens", OpCreateInstallationToken},
		{"GET", "repos/o/r", OpOther},
		{"DELETE", "repos/o/r/contents/f", OpOther},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			if got := operation(tc.method, tc.path); got != tc.want {
				t.Errorf("operation() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFileCacheEvictsOldest(t *testing.T) {
	c := newFileCache(2)
	key := func(p string) fileKey { return fileKey{owner: "o", repo: "r", path: p, ref: "main"} }
	c.put(key("a"), cachedFile{etag: "1", body: []byte("a")})
	c.put(key("b"), cachedFile{etag: "2", body: []byte("b")})
	c.get(key("a")) // a is now the most recent
	c.put(key("c"), cachedFile{etag: "3", body: []byte("c")})

	for p, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, ok := c.get(key(p)); ok != want {
			t.Errorf("cached %s = %v, want %v", p, ok, want)
		}
	}
	c.put(key("d"), cachedFile{body: []byte("no etag")})
	if _, ok := c.get(key("d")); ok {
		t.Error("cached a file without an ETag, which could never be revalidated")
	}
}
