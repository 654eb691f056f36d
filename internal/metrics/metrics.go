// Package metrics is yaci's Prometheus instrumentation. A Metrics value owns
// its own registry, so tests and several servers in one process never share
// counters, and it offers one seam per part of yaci: middleware for the
// webhook, and Observe methods that match the Observe hooks of the GitHub
// client, the status watcher and the admission queue.
//
// No metric has a label that grows with use: no repository, commit,
// delivery or run name. Every label value comes from a fixed set, and
// anything outside it is counted as "other".
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/trigger"
	"github.com/yaci-ci/yaci/internal/watch"
)

// namespace prefixes every metric yaci defines.
const namespace = "yaci"

// other is the label value for anything outside a label's known set.
const other = "other"

// Buckets, in seconds, for each kind of wait. They span what is normal
// and what is worth an alert, with about two buckets per doubling where
// the interesting values lie.
var (
	// webhookBuckets: verifying and queueing a delivery takes well under
	// a millisecond; seconds mean the intake is starved.
	webhookBuckets = []float64{
		0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
		0.1, 0.25, 0.5, 1, 2.5,
	}
	// githubBuckets: GitHub answers in tens to hundreds of milliseconds;
	// the client's own timeout is ten seconds.
	githubBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	// reportBuckets: a final status includes archiving the run's logs
	// and any retries of GitHub's API.
	reportBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	// queueBuckets: a run waits nothing on an idle cluster and up to
	// hours behind a busy repository.
	queueBuckets = []float64{
		0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400,
	}
)

// Metrics holds yaci's collectors and the registry that serves them.
// Create it with New. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	deliveries *prometheus.CounterVec
	handling   prometheus.Histogram

	githubRequests *prometheus.CounterVec
	githubDuration *prometheus.HistogramVec
	rateRemaining  prometheus.Gauge

	runsStarted  prometheus.Counter
	runsAdmitted prometheus.Counter
	runsFinished *prometheus.CounterVec
	reportDelay  prometheus.Histogram
	queueWait    prometheus.Histogram

	leader     prometheus.Gauge
	queueDepth atomic.Pointer[func() float64]
}

// New returns a Metrics whose registry holds yaci's metrics and the
// standard Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.newWebhook()
	m.newGitHub()
	m.newRuns()

	return m
}

func (m *Metrics) newWebhook() {
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "webhook_deliveries_total",
		Help:      "Webhook deliveries answered, by event name and outcome.",
	}, []string{"event", "outcome"})
	m.handling = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "webhook_handling_seconds",
		Help:      "Time from a webhook request's arrival to its answer.",
		Buckets:   webhookBuckets,
	})
	m.reg.MustRegister(m.deliveries, m.handling)
}

func (m *Metrics) newGitHub() {
	m.githubRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "github_requests_total",
		Help: "HTTP requests made to GitHub's API, by operation and status code " +
			`("none" when no response came back).`,
	}, []string{"operation", "code"})
	m.githubDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "github_request_duration_seconds",
		Help:      "Time until GitHub's response headers arrived, by operation.",
		Buckets:   githubBuckets,
	}, []string{"operation"})
	m.rateRemaining = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "github_rate_limit_remaining",
		Help: "Requests left in the rate limit window, as GitHub reported " +
			"with its most recent response.",
	})
	m.reg.MustRegister(m.githubRequests, m.githubDuration, m.rateRemaining)
}

func (m *Metrics) newRuns() {
	m.runsStarted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "runs_started_total",
		Help:      "Runs whose Job was created.",
	})
	m.runsAdmitted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "runs_admitted_total",
		Help:      "Runs the queue admitted to start.",
	})
	m.runsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "runs_finished_total",
		Help:      "Runs whose final status GitHub took, by result.",
	}, []string{"result"})
	m.reportDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "status_report_seconds",
		Help:      "Time from seeing a run end to GitHub taking its final status.",
		Buckets:   reportBuckets,
	})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "queue_wait_seconds",
		Help:      "Time runs waited in the queue before admission.",
		Buckets:   queueBuckets,
	})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "leader",
		Help:      "1 while this replica holds the leader lease, else 0.",
	})
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "queue_depth",
		Help:      "Runs waiting in the queue for admission.",
	}, m.depth)
	m.reg.MustRegister(m.runsStarted, m.runsAdmitted, m.runsFinished, m.reportDelay,
		m.queueWait, m.leader, depth)
}

// Handler returns the handler for GET /metrics, serving the registry in
// whichever exposition format the scraper asks for.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
}

// Registry returns the registry behind Handler, for other parts to
// register their own collectors in.
func (m *Metrics) Registry() *prometheus.Registry {
	return m.reg
}

// ObserveGitHub records one request of the GitHub client. It has the
// signature of github.Options.Observe.
func (m *Metrics) ObserveGitHub(o github.Observation) {
	op := oneOf(o.Operation, github.OpGetContent, github.OpCreateCommitStatus,
		github.OpCreateInstallationToken)
	m.githubRequests.WithLabelValues(op, statusCode(o.StatusCode)).Inc()
	m.githubDuration.WithLabelValues(op).Observe(o.Duration.Seconds())
	if o.RateRemaining >= 0 {
		m.rateRemaining.Set(float64(o.RateRemaining))
	}
}

// ObserveReport records a run whose final status GitHub took. It has the
// signature of watch.Options.Observe.
func (m *Metrics) ObserveReport(r watch.Report) {
	result := oneOf(string(r.State), string(trigger.StateSuccess),
		string(trigger.StateFailure), string(trigger.StateError))
	m.runsFinished.WithLabelValues(result).Inc()
	if !r.Seen.IsZero() && !r.Posted.IsZero() {
		m.reportDelay.Observe(since(r.Seen, r.Posted))
	}
}

// ObserveAdmission records a run the queue admitted. It has the signature
// of queue.Options.Observe.
func (m *Metrics) ObserveAdmission(a queue.Admission) {
	m.runsAdmitted.Inc()
	if !a.Queued.IsZero() && !a.Admitted.IsZero() {
		m.queueWait.Observe(since(a.Queued, a.Admitted))
	}
}

// RunStarted counts a run whose Job was created.
func (m *Metrics) RunStarted() {
	m.runsStarted.Inc()
}

// SetLeader says whether this replica holds the leader lease.
func (m *Metrics) SetLeader(leader bool) {
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.Set(v)
}

// SetQueueDepthFunc sets the function yaci_queue_depth reads at each
// scrape; it must be cheap and safe to call from any goroutine. Until it
// is set, or when f is nil, the depth reads 0.
func (m *Metrics) SetQueueDepthFunc(f func() float64) {
	if f == nil {
		m.queueDepth.Store(nil)
		return
	}
	m.queueDepth.Store(&f)
}

func (m *Metrics) depth() float64 {
	if f := m.queueDepth.Load(); f != nil {
		return (*f)()
	}

	return 0
}

// since returns the seconds from start to end. Clocks of different
// replicas may disagree, so a negative span counts as zero rather than
// lowering the histogram's sum.
func since(start, end time.Time) float64 {
	return max(end.Sub(start), 0).Seconds()
}

// oneOf returns v when it is one of known, else "other".
func oneOf(v string, known ...string) string {
	for _, k := range known {
		if v == k {
			return v
		}
	}

	return other
}

// statusCode is the code label of an HTTP status: "none" for no response,
// and "other" for a number HTTP does not define, so that a broken proxy
// cannot add label values without bound.
func statusCode(code int) string {
	switch {
	case code == 0:
		return "none"
	case code < 100 || code > 599:
		return other
	default:
		return strconv.Itoa(code)
	}
}
