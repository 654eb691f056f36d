package github

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The operations yaci calls, named by their operationId in GitHub's OpenAPI
// description. Observation.Operation carries them.
const (
	OpGetContent              = "repos/get-content"
	OpCreateCommitStatus      = "repos/create-commit-status"
	OpCreateInstallationToken = "apps/create-installation-access-token"
	// OpOther is any request that is none of the above.
	OpOther = "other"
)

// Observation describes one HTTP request the client made, for metrics.
type Observation struct {
	// Operation is one of the Op constants.
	Operation string
	Method    string
	// StatusCode is zero when no response came back.
	StatusCode int
	// RateRemaining is the X-RateLimit-Remaining GitHub reported with
	// the response, or -1 when there was none.
	RateRemaining int
	// Duration is the time until the response's headers arrived.
	Duration time.Duration
}

// observer wraps the base transport to log and observe every request,
// including the token refreshes ghinstallation makes on its own.
type observer struct {
	next    http.RoundTripper
	base    *url.URL
	observe func(Observation)
	log     *slog.Logger
}

// RoundTrip implements http.RoundTripper. It logs the method and path
// only: headers carry credentials.
func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := o.next.RoundTrip(req)

	ob := Observation{
		Operation:     operation(req.Method, strings.TrimPrefix(req.URL.Path, o.base.Path)),
		Method:        req.Method,
		RateRemaining: -1,
		Duration:      time.Since(start),
	}
	if resp != nil {
		ob.StatusCode = resp.StatusCode
		if n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); err == nil {
			ob.RateRemaining = n
		}
	}
	o.log.LogAttrs(req.Context(), slog.LevelDebug, "github request",
		slog.String("op", ob.Operation), slog.String("method", req.Method),
		slog.String("path", req.URL.Path), slog.Int("status", ob.StatusCode),
		slog.Int("rate_remaining", ob.RateRemaining), slog.Duration("took", ob.Duration))
	if o.observe != nil {
		o.observe(ob)
	}

	return resp, err
}

// operation names the call a request makes from its method and its path
// below the API root.
func operation(method, path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == http.MethodGet && len(seg) >= 5 && seg[0] == "repos" && seg[3] == "contents":
		return OpGetContent
	case method == http.MethodPost && len(seg) >= 5 && seg[0] == "repos" && seg[3] == "statuses":
		return OpCreateCommitStatus
	case method == http.MethodPost && len(seg) == 4 && seg[0] == "app" &&
		seg[1] == "installations" && seg[3] == "access_tokens":
		return OpCreateInstallationToken
	default:
		return OpOther
	}
}
