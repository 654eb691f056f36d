package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/yaci-ci/yaci/internal/github"
)

// BenchmarkWebhook measures what the middleware adds to each delivery.
func BenchmarkWebhook(b *testing.B) {
	m := New()
	h := m.Webhook(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "queued")
	}))
	req := httptest.NewRequest(http.MethodPost, "/webhook", nil)
	req.Header.Set("X-GitHub-Event", "push")
	w := discard{header: http.Header{}}
	b.ReportAllocs()

	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkObserveGitHub measures the cost the GitHub client pays per
// request.
func BenchmarkObserveGitHub(b *testing.B) {
	m := New()
	o := github.Observation{Operation: github.OpCreateCommitStatus, Method: "POST",
		StatusCode: 201, RateRemaining: 4000}
	b.ReportAllocs()

	for b.Loop() {
		m.ObserveGitHub(o)
	}
}

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the middleware rather than a recorder.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
