package github_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
)

// requestTimes records when each request of one operation was sent, so a
// test can check a wait GitHub asked for was kept.
type requestTimes struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *requestTimes) observe(ob github.Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, time.Now().Add(-ob.Duration))
}

// gap returns the time between the first two requests.
func (r *requestTimes) gap(t *testing.T) time.Duration {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.times) < 2 {
		t.Fatalf("%d requests, want a retry", len(r.times))
	}
	return r.times[1].Sub(r.times[0])
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name string
		fail func(*githubtest.Server)
		// ctx bounds the call when positive.
		ctx       time.Duration
		calls     int
		ok        bool
		permanent bool
		// minGap is the least time between the first two requests.
		minGap time.Duration
		// retryAfter is the least wait the error hands back.
		retryAfter time.Duration
	}{
		{name: "502 then success",
			fail:  func(s *githubtest.Server) { s.FailNext(1, http.StatusBadGateway, 0) },
			calls: 2, ok: true},
		{name: "429 with retry-after is waited out",
			fail:  func(s *githubtest.Server) { s.FailNext(1, http.StatusTooManyRequests, time.Second) },
			calls: 2, ok: true, minGap: 900 * time.Millisecond},
		{name: "503 with retry-after is waited out",
			fail:  func(s *githubtest.Server) { s.FailNext(1, http.StatusServiceUnavailable, time.Second) },
			calls: 2, ok: true, minGap: 900 * time.Millisecond},
		{name: "secondary rate limit is waited out",
			fail:  func(s *githubtest.Server) { s.SecondaryRateLimitNext(1, time.Second) },
			calls: 2, ok: true, minGap: 900 * time.Millisecond},
		{name: "primary rate limit resetting soon is waited out",
			fail: func(s *githubtest.Server) {
				s.PrimaryRateLimitNext(1, http.StatusForbidden, time.Now().Add(time.Second))
			},
			calls: 2, ok: true},
		{name: "primary rate limit as 429",
			fail: func(s *githubtest.Server) {
				s.PrimaryRateLimitNext(1, http.StatusTooManyRequests, time.Now().Add(time.Second))
			},
			calls: 2, ok: true},
		{name: "primary rate limit resetting later is handed back",
			fail: func(s *githubtest.Server) {
				s.PrimaryRateLimitNext(1, http.StatusForbidden, time.Now().Add(time.Hour))
			},
			calls: 1, retryAfter: 59 * time.Minute},
		{name: "secondary rate limit naming no wait is handed back",
			fail:  func(s *githubtest.Server) { s.SecondaryRateLimitNext(1, 0) },
			calls: 1, retryAfter: 59 * time.Second},
		{name: "retry-after beyond the deadline is handed back at once",
			fail: func(s *githubtest.Server) {
				s.FailNext(1, http.StatusServiceUnavailable, 3*time.Second)
			},
			ctx:   time.Second,
			calls: 1, retryAfter: 2 * time.Second},
		{name: "404 is not retried",
			fail:  func(s *githubtest.Server) { s.FailNext(1, http.StatusNotFound, 0) },
			calls: 1, permanent: true},
		{name: "422 is not retried",
			fail:  func(s *githubtest.Server) { s.FailNext(1, http.StatusUnprocessableEntity, 0) },
			calls: 1, permanent: true},
		{name: "403 without a rate limit is not retried",
			fail:  func(s *githubtest.Server) { s.FailNext(1, http.StatusForbidden, 0) },
			calls: 1, permanent: true},
		{name: "attempts run out",
			fail:  func(s *githubtest.Server) { s.FailNext(10, http.StatusInternalServerError, 0) },
			calls: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := githubtest.NewServer(t)
			var times requestTimes
			c := newTokenClient(t, s, func(o *github.Options) { o.Observe = times.observe })
			tc.fail(s)
			ctx := t.Context()
			if tc.ctx > 0 {
				ctx = withTimeout(t, tc.ctx)
			}

			start := time.Now()
			err := c.SetStatus(ctx, 0, owner, repo, sha,
				github.Status{State: github.StateSuccess, Context: "yaci/push/test"})
			elapsed := time.Since(start)

			if n := s.Calls(githubtest.EndpointCreateCommitStatus); n != tc.calls {
				t.Errorf("%d API calls, want %d", n, tc.calls)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("SetStatus() error = %v", err)
				}
				if n := len(s.Statuses(owner, repo, sha)); n != 1 {
					t.Errorf("%d statuses recorded, want 1", n)
				}
				if tc.minGap > 0 && times.gap(t) < tc.minGap {
					t.Errorf("retried after %v, before the %v GitHub asked for", times.gap(t), tc.minGap)
				}
				return
			}
			if err == nil {
				t.Fatal("SetStatus() succeeded, want an error")
			}
			if github.IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.permanent, tc.permanent)
			}
			if got := github.RetryAfter(err); got < tc.retryAfter {
				t.Errorf("RetryAfter() = %v, want at least %v", got, tc.retryAfter)
			}
			if tc.retryAfter > 0 && elapsed > tc.retryAfter/2 {
				t.Errorf("the call sat out %v of a wait it was to hand back", elapsed)
			}
		})
	}
}

func TestRetryStopsAtContextDeadline(t *testing.T) {
	s := githubtest.NewServer(t)
	c := newTokenClient(t, s, func(o *github.Options) {
		o.Retry = github.RetryPolicy{MaxAttempts: 1000, InitialInterval: 20 * time.Millisecond,
			MaxInterval: 20 * time.Millisecond}
	})
	s.FailNext(1000, http.StatusBadGateway, 0)

	err := c.SetStatus(withTimeout(t, 300*time.Millisecond), 0, owner, repo, sha,
		github.Status{State: github.StatePending})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SetStatus() error = %v, want the deadline", err)
	}
	if !strings.Contains(err.Error(), "502") {
		t.Errorf("error %q does not say what the last attempt met", err)
	}
	if github.IsPermanent(err) {
		t.Error("a call cut short by its deadline is reported permanent")
	}
	if n := s.Calls(githubtest.EndpointCreateCommitStatus); n < 2 || n > 100 {
		t.Errorf("%d API calls, want a few retries within the deadline", n)
	}
}

// flakyTransport fails or stalls the first requests it is given and then
// passes requests on.
type flakyTransport struct {
	next  http.RoundTripper
	left  atomic.Int32
	stall bool
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.left.Add(-1) < 0 {
		return f.next.RoundTrip(req)
	}
	if f.stall {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return nil, errors.New("connection reset by peer")
}

func TestRetriesTransportFailures(t *testing.T) {
	tests := []struct {
		name  string
		stall bool
	}{
		{name: "network error", stall: false},
		{name: "attempt deadline", stall: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := githubtest.NewServer(t)
			s.SetFile(owner, repo, "main", "f", []byte("x"))
			flaky := &flakyTransport{next: http.DefaultTransport, stall: tc.stall}
			flaky.left.Store(2)
			c := newTokenClient(t, s, func(o *github.Options) {
				o.Transport = flaky
				o.Timeout = 100 * time.Millisecond
			})

			got, err := c.ReadFile(t.Context(), 0, owner, repo, "f", "main")
			if err != nil || string(got) != "x" {
				t.Errorf("ReadFile() = %q, %v; want x after two failed attempts", got, err)
			}
		})
	}
}

func TestRetriesTokenRefresh(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetFile(owner, repo, "", "f", []byte("x"))
	c := newAppClient(t, s)
	s.Fail(1, githubtest.Failure{Endpoint: githubtest.EndpointCreateInstallationToken,
		Status: http.StatusInternalServerError})

	if _, err := c.ReadFile(t.Context(), 7, owner, repo, "f", ""); err != nil {
		t.Fatalf("ReadFile() after a failed token refresh: %v", err)
	}
	if n := s.Calls(githubtest.EndpointCreateInstallationToken); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}

	s.Fail(1, githubtest.Failure{Endpoint: githubtest.EndpointCreateInstallationToken,
		Status: http.StatusNotFound})
	_, err := c.ReadFile(t.Context(), 8, owner, repo, "f", "")
	if err == nil || !github.IsPermanent(err) {
		t.Errorf("ReadFile() for a removed installation: %v, want a permanent error", err)
	}
}
