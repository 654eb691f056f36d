package metrics

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/yaci-ci/yaci/internal/webhook"
)

// TestWebhookOutcomes runs answers of every kind through the middleware
// and checks the delivery is counted under the right labels, and only
// there.
func TestWebhookOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		code    int
		body    string
		noWrite bool
		want    string
		label   string
	}{
		{"queued push", "push", 202, "queued", false, OutcomeQueued, "push"},
		{"queued pull request", "pull_request", 202, "queued", false, OutcomeQueued,
			"pull_request"},
		{"ignored tag", "push", 202, "ignored: tag push", false, OutcomeIgnored, "push"},
		{"ignored other event", "issues", 202, "ignored: event issues", false, OutcomeIgnored,
			other},
		{"empty 202", "push", 202, "", false, OutcomeIgnored, "push"},
		{"duplicate", "push", 200, "duplicate", false, OutcomeDuplicate, "push"},
		{"pong", "ping", 200, "pong", false, OutcomePong, "ping"},
		{"nothing written", "push", 0, "", true, OutcomeDuplicate, "push"},
		{"body without header", "ping", 0, "pong", false, OutcomePong, "ping"},
		{"bad signature", "push", 401, "bad signature", false, OutcomeRejected, "push"},
		{"bad payload", "pull_request", 400, "bad payload", false, OutcomeBadRequest,
			"pull_request"},
		{"too large", "push", 413, "payload too large", false, OutcomeBadRequest, "push"},
		{"wrong method", "", 405, "method not allowed", false, OutcomeBadRequest, other},
		{"queue full", "push", 503, "queue full", false, OutcomeUnavailable, "push"},
		{"panic answer", "push", 500, "", false, OutcomeError, "push"},
		{"forged event", "push\nx", 401, "bad signature", false, OutcomeRejected, other},
		{"case differs", "Push", 202, "queued", false, OutcomeQueued, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			h := m.Webhook(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.noWrite {
					return
				}
				if tt.code != 0 {
					w.WriteHeader(tt.code)
				}
				io.WriteString(w, tt.body)
			}))

			req := httptest.NewRequest(http.MethodPost, "/webhook", nil)
			req.Header.Set("X-GitHub-Event", tt.event)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Body.String() != tt.body && !tt.noWrite {
				t.Errorf("body = %q, want %q passed through", rec.Body.String(), tt.body)
			}
			if got := counter(t, m, "yaci_webhook_deliveries_total",
				"event", tt.label, "outcome", tt.want); got != 1 {
				t.Errorf("deliveries{event=%q,outcome=%q} = %v, want 1", tt.label, tt.want, got)
			}
			if n := deliveryCount(t, m); n != 1 {
				t.Errorf("all deliveries = %v, want 1", n)
			}
			if c := histogram(t, m, "yaci_webhook_handling_seconds").GetSampleCount(); c != 1 {
				t.Errorf("handling samples = %d, want 1", c)
			}
		})
	}
}

// deliveryCount sums yaci_webhook_deliveries_total over all labels.
func deliveryCount(t *testing.T, m *Metrics) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == "yaci_webhook_deliveries_total" {
			for _, s := range f.GetMetric() {
				sum += s.GetCounter().GetValue()
			}
		}
	}

	return sum
}

// TestWebhookEarlyHints checks that a 1xx answer before the final one is
// not taken for the outcome.
func TestWebhookEarlyHints(t *testing.T) {
	m := New()
	h := m.Webhook(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if got := counter(t, m, "yaci_webhook_deliveries_total",
		"event", other, "outcome", OutcomeUnavailable); got != 1 {
		t.Errorf("unavailable deliveries = %v, want 1", got)
	}
}

// testSecret signs the deliveries sent to the real intake.
var testSecret = []byte("metrics test secret")

// TestWebhookIntake sends deliveries to the real webhook intake behind the
// middleware over HTTP, so that a change in how the intake answers shows
// up here as a wrong outcome.
func TestWebhookIntake(t *testing.T) {
	in, err := webhook.New(webhook.Options{
		Secret:    testSecret,
		QueueSize: 1,
		MaxBody:   4096,
	}, webhook.HandlerFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	srv := httptest.NewServer(m.Webhook(in))
	t.Cleanup(srv.Close)

	// The intake is never Run, so its one-place queue stays full after
	// the first delivery.
	steps := []struct {
		name     string
		method   string
		event    string
		delivery string
		body     string
		sign     bool
		code     int
		outcome  string
		label    string
	}{
		{"ping", "POST", "ping", "d-ping", `{"zen":"x"}`, true, 200, OutcomePong, "ping"},
		{"push", "POST", "push", "d-1", pushBody("refs/heads/main"), true, 202, OutcomeQueued,
			"push"},
		{"redelivery", "POST", "push", "d-1", pushBody("refs/heads/main"), true, 200,
			OutcomeDuplicate, "push"},
		{"queue full", "POST", "push", "d-2", pushBody("refs/heads/main"), true, 503,
			OutcomeUnavailable, "push"},
		{"tag", "POST", "push", "d-3", pushBody("refs/tags/v1"), true, 202, OutcomeIgnored,
			"push"},
		{"other event", "POST", "issues", "d-4", `{}`, true, 202, OutcomeIgnored, other},
		{"unsigned", "POST", "push", "d-5", pushBody("refs/heads/main"), false, 401,
			OutcomeRejected, "push"},
		{"broken json", "POST", "pull_request", "d-6", `{`, true, 400, OutcomeBadRequest,
			"pull_request"},
		{"too large", "POST", "push", "d-7", strings.Repeat(" ", 5000), true, 413,
			OutcomeBadRequest, "push"},
		{"get", "GET", "push", "d-8", "", false, 405, OutcomeBadRequest, "push"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := counter(t, m, "yaci_webhook_deliveries_total",
				"event", s.label, "outcome", s.outcome)
			req, err := http.NewRequestWithContext(t.Context(), s.method, srv.URL,
				strings.NewReader(s.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", s.event)
			req.Header.Set("X-GitHub-Delivery", s.delivery)
			if s.sign {
				req.Header.Set("X-Hub-Signature-256", sign(s.body))
			}

			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			if resp.StatusCode != s.code {
				t.Fatalf("status = %d, want %d", resp.StatusCode, s.code)
			}
			after := counter(t, m, "yaci_webhook_deliveries_total",
				"event", s.label, "outcome", s.outcome)
			if after != before+1 {
				t.Errorf("deliveries{event=%q,outcome=%q} went %v → %v, want +1",
					s.label, s.outcome, before, after)
			}
		})
	}
}

// pushBody is the smallest push payload the intake decodes.
func pushBody(ref string) string {
	return `{"ref":"` + ref + `","before":"` + strings.Repeat("0", 40) +
		`","after":"` + strings.Repeat("a", 40) + `","repository":{"name":"demo",` +
		`"full_name":"octo/demo","clone_url":"https://github.com/octo/demo.git",` +
		`"private":false,"owner":{"login":"octo"}},"installation":{"id":7}}`
}

// sign returns the X-Hub-Signature-256 value of body.
func sign(body string) string {
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(body))

	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
