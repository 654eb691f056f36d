package metrics

import (
	"net/http"
	"strings"
	"time"
)

// Outcomes of a webhook delivery, the values of the outcome label. They
// follow the answers webhook.Intake documents on its ServeHTTP.
const (
	OutcomeQueued      = "queued"
	OutcomeIgnored     = "ignored"
	OutcomeDuplicate   = "duplicate"
	OutcomePong        = "pong"
	OutcomeRejected    = "rejected"
	OutcomeBadRequest  = "bad_request"
	OutcomeUnavailable = "unavailable"
	OutcomeError       = "error"
)

// webhookEvents are the event names counted under their own name. The
// header is read before the signature is checked, so anyone could send
// any name; the rest share "other".
var webhookEvents = []string{"push", "pull_request", "ping"}

// queuedBody is how the intake's body begins when it queued a delivery,
// the only thing that tells a queued delivery from an ignored one: both
// are 202.
const queuedBody = "queued"

// Webhook wraps the /webhook handler to count each delivery by event and
// outcome and time its answer. The outcome is read from the status code
// the handler answers with and, for 202, the start of its body.
func (m *Metrics) Webhook(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}

		next.ServeHTTP(rec, r)

		event := oneOf(r.Header.Get("X-GitHub-Event"), webhookEvents...)
		m.deliveries.WithLabelValues(event, outcome(event, rec)).Inc()
		m.handling.Observe(time.Since(start).Seconds())
	})
}

// outcome names what the intake did with a delivery of event from how it
// answered.
func outcome(event string, rec *recorder) string {
	switch code := rec.status(); code {
	case http.StatusAccepted:
		if strings.HasPrefix(string(rec.head), queuedBody) {
			return OutcomeQueued
		}
		return OutcomeIgnored
	case http.StatusOK:
		if event == "ping" {
			return OutcomePong
		}
		return OutcomeDuplicate
	case http.StatusUnauthorized:
		return OutcomeRejected
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge,
		http.StatusMethodNotAllowed:
		return OutcomeBadRequest
	case http.StatusServiceUnavailable:
		return OutcomeUnavailable
	default:
		return OutcomeError
	}
}

// recorder keeps the status code and the first bytes of the body a
// handler writes.
type recorder struct {
	http.ResponseWriter
	code int
	head []byte
}

// WriteHeader records the first final status code written; 1xx answers
// such as 103 Early Hints come before it.
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write keeps the start of the body; a write without WriteHeader means
// 200, as it does for net/http.
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if n := len(queuedBody) - len(r.head); n > 0 {
		r.head = append(r.head, b[:min(n, len(b))]...)
	}

	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}

// status is the code the client got: 200 when the handler wrote nothing.
func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}

	return r.code
}
