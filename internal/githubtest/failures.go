package githubtest

import (
	"net/http"
	"strconv"
	"time"
)

// Failure describes an error answer the server gives instead of serving a
// request.
type Failure struct {
	// Endpoint limits the failure to one endpoint; empty matches any.
	Endpoint string
	// Status is the HTTP status to answer with.
	Status int
	// RetryAfter, when positive, is sent as a Retry-After header.
	RetryAfter time.Duration
	// RateLimitReset, when set, makes the answer a primary rate limit:
	// X-RateLimit-Remaining 0 and this reset time.
	RateLimitReset time.Time
	// Secondary makes the answer a secondary rate limit, with the body
	// GitHub sends for one.
	Secondary bool
}

type pendingFailure struct {
	Failure
	left int
}

// Fail makes the next n requests that f matches fail as f says; a zero
// Status means 500. Failures queue up in the order they were added.
func (s *Server) Fail(n int, f Failure) {
	if n <= 0 {
		return
	}
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, pendingFailure{Failure: f, left: n})
}

// FailNext makes the next n requests, to any endpoint, fail with status,
// and with a Retry-After header when retryAfter is positive.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.Fail(n, Failure{Status: status, RetryAfter: retryAfter})
}

// SecondaryRateLimitNext makes the next n requests meet GitHub's secondary
// rate limit: 403 with its documented body and, when positive, Retry-After.
func (s *Server) SecondaryRateLimitNext(n int, retryAfter time.Duration) {
	s.Fail(n, Failure{Status: http.StatusForbidden, RetryAfter: retryAfter, Secondary: true})
}

// PrimaryRateLimitNext makes the next n requests meet an exhausted primary
// rate limit, answered with status (403 or 429), no requests remaining and
// the given reset time.
func (s *Server) PrimaryRateLimitNext(n, status int, reset time.Time) {
	s.Fail(n, Failure{Status: status, RateLimitReset: reset})
}

// takeFailure returns the first pending failure matching endpoint, using
// up one of its requests.
func (s *Server) takeFailure(endpoint string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	for i := range s.failures {
		f := &s.failures[i]
		if f.Endpoint != "" && f.Endpoint != endpoint {
			continue
		}
		f.left--
		taken := f.Failure
		if f.left <= 0 {
			s.failures = append(s.failures[:i], s.failures[i+1:]...)
		}
		return taken, true
	}

	return Failure{}, false
}

// Documentation links GitHub's rate limit answers carry.
const (
	docsPrimaryLimit   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
	docsSecondaryLimit = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

func (s *Server) writeFailure(w http.ResponseWriter, f Failure) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(f.RetryAfter))
	}

	switch {
	case f.Secondary:
		s.writeError(w, f.Status, "You have exceeded a secondary rate limit. "+
			"Please wait a few minutes before you try again.", docsSecondaryLimit)
	case !f.RateLimitReset.IsZero():
		// writeJSON sets the rate headers; these replace them after.
		w = &rateLimitedWriter{ResponseWriter: w, reset: f.RateLimitReset}
		s.writeError(w, f.Status, "API rate limit exceeded for installation.", docsPrimaryLimit)
	default:
		s.writeError(w, f.Status, http.StatusText(f.Status), "")
	}
}

// rateLimitedWriter reports an exhausted rate limit in the headers it
// writes, whatever the counters say.
type rateLimitedWriter struct {
	http.ResponseWriter
	reset time.Time
}

func (w *rateLimitedWriter) WriteHeader(code int) {
	h := w.Header()
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Used", strconv.Itoa(rateLimit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(w.reset.Unix(), 10))
	w.ResponseWriter.WriteHeader(code)
}
