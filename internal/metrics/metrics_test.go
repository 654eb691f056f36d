package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/trigger"
	"github.com/yaci-ci/yaci/internal/watch"
)

func TestObserveGitHub(t *testing.T) {
	tests := []struct {
		name      string
		obs       github.Observation
		op, code  string
		rateAfter float64
	}{
		{"status posted", github.Observation{Operation: github.OpCreateCommitStatus,
			Method: "POST", StatusCode: 201, RateRemaining: 4999,
			Duration: 120 * time.Millisecond}, github.OpCreateCommitStatus, "201", 4999},
		{"no rate header keeps the last value", github.Observation{
			Operation: github.OpGetContent, Method: "GET", StatusCode: 304,
			RateRemaining: -1, Duration: time.Millisecond}, github.OpGetContent, "304", 4999},
		{"no response", github.Observation{Operation: github.OpCreateInstallationToken,
			Method: "POST", RateRemaining: -1, Duration: 10 * time.Second},
			github.OpCreateInstallationToken, "none", 4999},
		{"rate limited", github.Observation{Operation: github.OpCreateCommitStatus,
			Method: "POST", StatusCode: 403, RateRemaining: 0},
			github.OpCreateCommitStatus, "403", 0},
		{"unknown operation", github.Observation{Operation: "repos/delete",
			Method: "DELETE", StatusCode: 204, RateRemaining: 10}, other, "204", 10},
		{"nonsense code", github.Observation{Operation: github.OpOther,
			Method: "GET", StatusCode: 1234, RateRemaining: -1}, github.OpOther, other, 10},
	}
	// One Metrics for all steps: the rate limit gauge carries over.
	m := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counter(t, m, "yaci_github_requests_total",
				"operation", tt.op, "code", tt.code)
			h := sample(t, m.reg, "yaci_github_request_duration_seconds", "operation", tt.op)
			countBefore, sumBefore := h.GetHistogram().GetSampleCount(),
				h.GetHistogram().GetSampleSum()

			m.ObserveGitHub(tt.obs)

			if got := counter(t, m, "yaci_github_requests_total",
				"operation", tt.op, "code", tt.code); got != before+1 {
				t.Errorf("requests{operation=%q,code=%q} = %v, want %v",
					tt.op, tt.code, got, before+1)
			}
			hist := histogram(t, m, "yaci_github_request_duration_seconds",
				"operation", tt.op)
			if hist.GetSampleCount() != countBefore+1 {
				t.Errorf("duration samples = %d, want %d", hist.GetSampleCount(), countBefore+1)
			}
			if d := hist.GetSampleSum() - sumBefore; d != tt.obs.Duration.Seconds() {
				t.Errorf("duration sum grew by %v, want %v", d, tt.obs.Duration.Seconds())
			}
			if got := gauge(t, m, "yaci_github_rate_limit_remaining"); got != tt.rateAfter {
				t.Errorf("rate limit remaining = %v, want %v", got, tt.rateAfter)
			}
		})
	}
}

func TestObserveReport(t *testing.T) {
	seen := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		report  watch.Report
		result  string
		delay   float64
		samples uint64
	}{
		{"success", watch.Report{Run: "yaci-1", State: trigger.StateSuccess, Seen: seen,
			Posted: seen.Add(1500 * time.Millisecond)}, "success", 1.5, 1},
		{"failure", watch.Report{Run: "yaci-2", State: trigger.StateFailure, Seen: seen,
			Posted: seen.Add(time.Minute)}, "failure", 60, 1},
		{"error", watch.Report{Run: "yaci-3", State: trigger.StateError, Seen: seen,
			Posted: seen.Add(time.Second)}, "error", 1, 1},
		{"not a final state", watch.Report{Run: "yaci-4", State: trigger.StatePending,
			Seen: seen, Posted: seen.Add(time.Second)}, other, 1, 1},
		{"posted before seen", watch.Report{Run: "yaci-5", State: trigger.StateSuccess,
			Seen: seen, Posted: seen.Add(-time.Second)}, "success", 0, 1},
		{"seen unknown", watch.Report{Run: "yaci-6", State: trigger.StateSuccess,
			Posted: seen}, "success", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()

			m.ObserveReport(tt.report)

			if got := counter(t, m, "yaci_runs_finished_total", "result", tt.result); got != 1 {
				t.Errorf("runs finished{result=%q} = %v, want 1", tt.result, got)
			}
			h := histogram(t, m, "yaci_status_report_seconds")
			if h.GetSampleCount() != tt.samples || h.GetSampleSum() != tt.delay*
				float64(tt.samples) {
				t.Errorf("report delay: %d samples summing %v, want %d summing %v",
					h.GetSampleCount(), h.GetSampleSum(), tt.samples, tt.delay)
			}
		})
	}
}

func TestObserveAdmission(t *testing.T) {
	queued := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	m := New()

	m.ObserveAdmission(queue.Admission{Job: "yaci-a", Repo: "octo/demo",
		Queued: queued, Admitted: queued.Add(90 * time.Second)})
	m.ObserveAdmission(queue.Admission{Job: "yaci-b", Repo: "octo/demo",
		Queued: queued, Admitted: queued.Add(500 * time.Millisecond)})
	m.ObserveAdmission(queue.Admission{Job: "yaci-c", Repo: "octo/other",
		Queued: queued, Admitted: queued.Add(-time.Second)})

	if got := counter(t, m, "yaci_runs_admitted_total"); got != 3 {
		t.Errorf("runs admitted = %v, want 3", got)
	}
	h := histogram(t, m, "yaci_queue_wait_seconds")
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 90.5 {
		t.Errorf("queue wait: %d samples summing %v, want 3 summing 90.5",
			h.GetSampleCount(), h.GetSampleSum())
	}
	// The 1 s bucket holds the half-second wait and the skewed one.
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 1 && b.GetCumulativeCount() != 2 {
			t.Errorf("waits ≤ 1 s = %d, want 2", b.GetCumulativeCount())
		}
	}
}

func TestRunsLeaderAndDepth(t *testing.T) {
	m := New()
	if got := gauge(t, m, "yaci_queue_depth"); got != 0 {
		t.Errorf("depth before a func is set = %v, want 0", got)
	}

	m.RunStarted()
	m.RunStarted()
	m.SetLeader(true)
	depth := 4.0
	m.SetQueueDepthFunc(func() float64 { return depth })

	if got := counter(t, m, "yaci_runs_started_total"); got != 2 {
		t.Errorf("runs started = %v, want 2", got)
	}
	if got := gauge(t, m, "yaci_leader"); got != 1 {
		t.Errorf("leader = %v, want 1", got)
	}
	if got := gauge(t, m, "yaci_queue_depth"); got != 4 {
		t.Errorf("depth = %v, want 4", got)
	}
	depth = 1
	if got := gauge(t, m, "yaci_queue_depth"); got != 1 {
		t.Errorf("depth is read at each scrape: got %v, want 1", got)
	}

	m.SetLeader(false)
	m.SetQueueDepthFunc(nil)
	if got := gauge(t, m, "yaci_leader"); got != 0 {
		t.Errorf("leader after losing the lease = %v, want 0", got)
	}
	if got := gauge(t, m, "yaci_queue_depth"); got != 0 {
		t.Errorf("depth after the func is cleared = %v, want 0", got)
	}
}

// TestScrape serves Handler over HTTP, feeds every seam once, and parses
// the text exposition: each of yaci's metrics is there with its type, and
// no label outside the fixed sets appears.
func TestScrape(t *testing.T) {
	m := New()
	feedAll(m)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	families := scrape(t, srv)

	want := map[string]dto.MetricType{
		"yaci_webhook_deliveries_total":        dto.MetricType_COUNTER,
		"yaci_webhook_handling_seconds":        dto.MetricType_HISTOGRAM,
		"yaci_github_requests_total":           dto.MetricType_COUNTER,
		"yaci_github_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"yaci_github_rate_limit_remaining":     dto.MetricType_GAUGE,
		"yaci_runs_started_total":              dto.MetricType_COUNTER,
		"yaci_runs_admitted_total":             dto.MetricType_COUNTER,
		"yaci_runs_finished_total":             dto.MetricType_COUNTER,
		"yaci_status_report_seconds":           dto.MetricType_HISTOGRAM,
		"yaci_queue_wait_seconds":              dto.MetricType_HISTOGRAM,
		"yaci_queue_depth":                     dto.MetricType_GAUGE,
		"yaci_leader":                          dto.MetricType_GAUGE,
		// The standard collectors are there too.
		"go_goroutines":              dto.MetricType_GAUGE,
		"process_start_time_seconds": dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		f, ok := families[name]
		if !ok {
			t.Errorf("%s missing from the scrape", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
	}

	allowed := map[string]bool{"event": true, "outcome": true, "operation": true,
		"code": true, "result": true}
	for name, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if strings.HasPrefix(name, "yaci_") && !allowed[l.GetName()] {
					t.Errorf("%s has label %s", name, l.GetName())
				}
			}
		}
	}
}

// TestLint runs promtool's checks on every metric the registry serves.
func TestLint(t *testing.T) {
	m := New()
	feedAll(m)

	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// feedAll calls every seam once so that each vector has a sample.
func feedAll(m *Metrics) {
	now := time.Now()
	m.Webhook(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(),
		httptest.NewRequest(http.MethodPost, "/webhook", nil))
	m.ObserveGitHub(github.Observation{Operation: github.OpGetContent, Method: "GET",
		StatusCode: 200, RateRemaining: 100, Duration: time.Millisecond})
	m.ObserveReport(watch.Report{Run: "yaci-1", State: trigger.StateSuccess,
		Seen: now, Posted: now.Add(time.Second)})
	m.ObserveAdmission(queue.Admission{Job: "yaci-1", Queued: now, Admitted: now})
	m.RunStarted()
	m.SetLeader(true)
	m.SetQueueDepthFunc(func() float64 { return 2 })
}

// scrape fetches srv's exposition in the text format and parses it.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}

	return families
}
