// Package webhook is yaci's intake of GitHub webhook deliveries. It caps and
// verifies each request before anything else, decodes push and pull_request
// payloads into a trigger.Event, drops redeliveries of what it already
// queued, and hands the events to a Handler from a bounded queue served by a
// few workers. Nothing past this package sees
// GitHub's payload types.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yaci-ci/yaci/internal/logctx"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// Defaults for the zero values of Options.
const (
	// DefaultMaxBody is GitHub's own cap on a payload: it does not send
	// larger ones, so anything larger is not from GitHub.
	DefaultMaxBody = 25 << 20
	// DefaultQueueSize bounds the deliveries acknowledged but not yet
	// handled.
	DefaultQueueSize = 1000
	// DefaultWorkers is how many deliveries are handled at once.
	DefaultWorkers = 4
	// DefaultDedupeSize is how many delivery GUIDs are remembered.
	DefaultDedupeSize = 10000
	// DefaultDrainTimeout leaves room within Kubernetes' default 30 s
	// termination grace period for the rest of the shutdown.
	DefaultDrainTimeout = 25 * time.Second
)

// maxDeliveryLen bounds the X-GitHub-Delivery value kept in memory and in
// logs; GitHub's GUIDs are 36 characters.
const maxDeliveryLen = 128

// Headers GitHub sets on each delivery.
const (
	headerDelivery  = "X-GitHub-Delivery"
	headerEvent     = "X-GitHub-Event"
	headerSignature = "X-Hub-Signature-256"
)

var (
	// ErrNoSecret is returned by New when Options.Secret is empty: an
	// intake without a secret would run anything anyone posts.
	ErrNoSecret = errors.New("webhook: no secret")
	// ErrNegative is returned by New when a size, count or duration in
	// Options is negative.
	ErrNegative = errors.New("negative value")
	// ErrRunning is returned by Run when the intake already runs or ran.
	ErrRunning = errors.New("webhook: intake already started")
	// ErrDrainTimeout is returned by Run when the drain timeout passed
	// before every queued delivery was handled.
	ErrDrainTimeout = errors.New("webhook: drain timeout")
)

// Handler does the work a delivery asks for; intake calls it from its
// workers, with a context that carries a logger naming the delivery (see
// LoggerFrom). The context is not cancelled when the intake starts to shut
// down, only when its drain timeout ends.
//
// An error is logged with the delivery id, at Error level unless it is
// expected: an error in whose chain (errors.As) some error has a method
// Expected() bool that returns true, such as a user's bad configuration,
// or a cancellation at shutdown, is logged at Warn level.
type Handler interface {
	Handle(ctx context.Context, ev trigger.Event) error
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, ev trigger.Event) error

// Handle calls f(ctx, ev).
func (f HandlerFunc) Handle(ctx context.Context, ev trigger.Event) error { return f(ctx, ev) }

// Options configures an Intake. Zero values take the defaults above.
type Options struct {
	// Secret is the webhook secret shared with GitHub; required.
	Secret []byte
	// MaxBody caps a request's body in bytes (DefaultMaxBody).
	MaxBody int64
	// QueueSize bounds the deliveries waiting for a worker
	// (DefaultQueueSize); when it is full, deliveries get 503.
	QueueSize int
	// Workers is how many deliveries are handled at once (DefaultWorkers).
	Workers int
	// DedupeSize is how many delivery GUIDs are remembered to answer
	// redeliveries with "duplicate" (DefaultDedupeSize).
	DedupeSize int
	// DrainTimeout bounds how long Run keeps handling queued deliveries
	// after its context ends (DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Logger receives the intake's log lines (slog.Default()).
	Logger *slog.Logger
}

// LogValue redacts the secret, so that logging Options is harmless.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("secret", "REDACTED"),
		slog.Int64("max_body", o.MaxBody),
		slog.Int("queue_size", o.QueueSize),
		slog.Int("workers", o.Workers),
		slog.Int("dedupe_size", o.DedupeSize),
		slog.Duration("drain_timeout", o.DrainTimeout),
	)
}

// withDefaults returns o with zero values replaced by the defaults, or an
// error naming the first value that cannot work.
func (o Options) withDefaults() (Options, error) {
	if len(o.Secret) == 0 {
		return o, ErrNoSecret
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max body", o.MaxBody}, {"queue size", int64(o.QueueSize)},
		{"workers", int64(o.Workers)}, {"dedupe size", int64(o.DedupeSize)},
		{"drain timeout", int64(o.DrainTimeout)},
	} {
		if f.v < 0 {
			return o, fmt.Errorf("webhook options: %s %d: %w", f.name, f.v, ErrNegative)
		}
	}

	o.MaxBody = orDefault(o.MaxBody, DefaultMaxBody)
	o.QueueSize = orDefault(o.QueueSize, DefaultQueueSize)
	o.Workers = orDefault(o.Workers, DefaultWorkers)
	o.DedupeSize = orDefault(o.DedupeSize, DefaultDedupeSize)
	o.DrainTimeout = orDefault(o.DrainTimeout, DefaultDrainTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	return o, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}

	return v
}

// Intake is the http.Handler for GitHub's POST /webhook and the queue and
// workers behind it. Create it with New, serve it, and call Run once.
type Intake struct {
	secret       []byte
	maxBody      int64
	workers      int
	drainTimeout time.Duration
	log          *slog.Logger
	handler      Handler

	started atomic.Bool

	// mu guards sending on and closing queue, closed and seen, so that a
	// GUID is remembered exactly when its delivery entered the queue.
	// Workers receive from queue without it.
	mu     sync.Mutex
	queue  chan trigger.Event
	closed bool
	seen   *seenSet
}

// New returns an Intake that hands the deliveries it accepts to h.
func New(opts Options, h Handler) (*Intake, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("webhook: nil handler")
	}

	return &Intake{
		secret:       bytes.Clone(opts.Secret),
		maxBody:      opts.MaxBody,
		workers:      opts.Workers,
		drainTimeout: opts.DrainTimeout,
		log:          opts.Logger,
		handler:      h,
		queue:        make(chan trigger.Event, opts.QueueSize),
		seen:         newSeenSet(opts.DedupeSize),
	}, nil
}

// ServeHTTP takes one delivery. It answers:
//
//   - 405 to any method but POST;
//   - 413 to a body over MaxBody;
//   - 401 to a missing or wrong X-Hub-Signature-256, and does nothing else;
//   - 400 to a missing X-GitHub-Delivery or X-GitHub-Event, or a payload
//     that is malformed or lacks the repository or commit;
//   - 200 "pong" to a ping;
//   - 202 "ignored: <reason>" to events, actions and refs yaci does not
//     build (GitHub shows any 4xx as a failed delivery);
//   - 200 "duplicate" to a delivery GUID it already queued;
//   - 202 "queued" once the delivery is queued for a worker;
//   - 503 when the queue is full or the intake is shutting down, so that
//     GitHub records a failed delivery that can be redelivered.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}

	buf, err := in.readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, "payload too large")
			return
		}
		reply(w, http.StatusBadRequest, "cannot read body")
		return
	}
	defer putBuffer(buf)
	body := buf.Bytes()

	if !validSignature(in.secret, body, r.Header.Get(headerSignature)) {
		// Nothing from the body is logged: it is unauthenticated, and the
		// header values are clipped for the same reason.
		in.log.Warn("webhook signature rejected",
			"delivery", clip(r.Header.Get(headerDelivery)),
			"event", clip(r.Header.Get(headerEvent)),
			"remote", r.RemoteAddr)
		reply(w, http.StatusUnauthorized, "bad signature")
		return
	}

	code, msg := in.accept(r, body)
	reply(w, code, msg)
}

// readBody reads the whole body, refusing more than maxBody bytes. A
// declared length over the cap is refused before reading anything. The
// caller gives the buffer back with putBuffer once done with the bytes.
func (in *Intake) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	if r.ContentLength > in.maxBody {
		return nil, &http.MaxBytesError{Limit: in.maxBody}
	}
	r.Body = http.MaxBytesReader(w, r.Body, in.maxBody)

	buf := bufferPool.Get().(*bytes.Buffer)
	// With a declared length the buffer grows once; ReadFrom wants MinRead
	// spare bytes to see the end of the body.
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		putBuffer(buf)
		return nil, fmt.Errorf("read webhook body: %w", err)
	}

	return buf, nil
}

// bufferPool holds body buffers between requests: at hundreds of
// deliveries a second, a fresh buffer per body is most of the garbage.
// Nothing decoded from a body refers to its bytes, so a buffer can be
// reused as soon as the request is answered.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps a rare huge body from pinning its memory in the
// pool.
const maxPooledBuffer = 1 << 20

func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBuffer {
		return
	}
	buf.Reset()
	bufferPool.Put(buf)
}

// accept acts on a delivery whose signature is good and returns the status
// and body to answer with.
func (in *Intake) accept(r *http.Request, body []byte) (int, string) {
	delivery := r.Header.Get(headerDelivery)
	kind := r.Header.Get(headerEvent)
	log := in.log.With("delivery", clip(delivery), "event", clip(kind))
	if delivery == "" || len(delivery) > maxDeliveryLen {
		log.Warn("webhook delivery refused: no usable delivery id")
		return http.StatusBadRequest, "missing or bad " + headerDelivery
	}
	if kind == "" {
		log.Warn("webhook delivery refused: no event name")
		return http.StatusBadRequest, "missing " + headerEvent
	}

	payload, err := formPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		log.Warn("webhook delivery refused", "error", err)
		return http.StatusBadRequest, "bad payload"
	}

	if kind == "ping" {
		log.Info("webhook ping")
		return http.StatusOK, "pong"
	}

	d, err := decodePayload(kind, payload)
	if err != nil {
		log.Warn("webhook delivery refused", "error", err)
		return http.StatusBadRequest, "bad payload"
	}
	if d.ignore != "" {
		log.Debug("webhook delivery ignored", "reason", d.ignore)
		return http.StatusAccepted, "ignored: " + d.ignore
	}

	d.event.Delivery = delivery

	return in.enqueue(log, d.event)
}

// formPayload returns the JSON payload of a body. GitHub sends the JSON
// itself, or, for a hook set to application/x-www-form-urlencoded, a form
// whose "payload" field holds it; the signature covers the raw body either
// way.
func formPayload(contentType string, body []byte) ([]byte, error) {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return body, nil
	}

	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("parse form body: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, errors.New("form body has no payload field")
	}

	return []byte(payload), nil
}

// enqueue queues ev unless its delivery was queued before, the queue is
// full, or the intake is shutting down.
func (in *Intake) enqueue(log *slog.Logger, ev trigger.Event) (int, string) {
	in.mu.Lock()
	defer in.mu.Unlock()

	if in.closed {
		log.Warn("webhook delivery refused: shutting down")
		return http.StatusServiceUnavailable, "shutting down"
	}
	if in.seen.has(ev.Delivery) {
		log.Info("webhook delivery is a duplicate")
		return http.StatusOK, "duplicate"
	}

	select {
	case in.queue <- ev:
		in.seen.add(ev.Delivery)
		log.Info("webhook delivery queued", "repo", ev.Repo.FullName(), "sha", ev.SHA)
		return http.StatusAccepted, "queued"
	default:
		log.Warn("webhook delivery refused: queue full", "queue_size", cap(in.queue))
		return http.StatusServiceUnavailable, "queue full"
	}
}

// Run starts the workers and blocks until ctx ends. Then it stops taking
// deliveries (new ones get 503) and keeps handling the queued ones until
// the queue is empty or DrainTimeout has passed; at that point the
// handlers' context is cancelled, deliveries still queued are dropped
// with a log line each, and Run returns an error wrapping ErrDrainTimeout.
// Deliveries that arrive before Run is called wait in the queue.
func (in *Intake) Run(ctx context.Context) error {
	if !in.started.CompareAndSwap(false, true) {
		return ErrRunning
	}

	// Handlers outlive ctx by up to the drain timeout, but keep its values.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()

	var wg sync.WaitGroup
	var dropped atomic.Int64
	for range in.workers {
		wg.Go(func() { in.work(workCtx, &dropped) })
	}

	<-ctx.Done()
	in.stopTaking()
	in.log.Info("webhook intake draining", "queued", len(in.queue))
	timer := time.AfterFunc(in.drainTimeout, stopWork)
	defer timer.Stop()
	wg.Wait()

	if n := dropped.Load(); n > 0 {
		return fmt.Errorf("drain webhook queue: %d deliveries dropped: %w", n, ErrDrainTimeout)
	}
	in.log.Info("webhook intake drained")

	return nil
}

// stopTaking makes enqueue refuse deliveries and closes the queue, so that
// workers return once it is empty.
func (in *Intake) stopTaking() {
	in.mu.Lock()
	defer in.mu.Unlock()

	in.closed = true
	close(in.queue)
}

// work handles queued deliveries until the queue is closed and empty.
// Once ctx is done (the drain timeout passed) it drops them instead.
func (in *Intake) work(ctx context.Context, dropped *atomic.Int64) {
	for ev := range in.queue {
		if ctx.Err() != nil {
			dropped.Add(1)
			in.log.Warn("webhook delivery dropped: drain timeout passed",
				"delivery", ev.Delivery, "repo", ev.Repo.FullName(), "sha", ev.SHA)
			continue
		}
		in.handle(ctx, ev)
	}
}

// handle runs the handler on one delivery and logs how it went. A panic in
// the handler is logged and does not take the worker down.
func (in *Intake) handle(ctx context.Context, ev trigger.Event) {
	log := in.log.With("delivery", ev.Delivery)
	// The GUID rides in ctx too, so that parts which log with ctx but
	// not with this logger (the GitHub client, say) name it as well.
	ctx = WithLogger(logctx.WithDelivery(ctx, ev.Delivery), log)
	defer func() {
		if p := recover(); p != nil {
			log.Error("webhook handler panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()

	start := time.Now()
	err := in.handler.Handle(ctx, ev)
	took := time.Since(start)

	switch {
	case err == nil:
		log.Debug("webhook delivery handled", "took", took)
	case isExpected(ctx, err):
		log.Warn("webhook delivery not handled", "took", took, "error", err)
	default:
		log.Error("webhook delivery failed", "event", ev.Kind, "repo", ev.Repo.FullName(),
			"took", took, "error", err)
	}
}

// expecter is what an error says about itself when it is an expected
// outcome rather than a fault.
type expecter interface {
	Expected() bool
}

// isExpected reports whether err is an expected outcome: an error that
// says so, or the cancellation of ctx at shutdown.
func isExpected(ctx context.Context, err error) bool {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)) {
		return true
	}
	var e expecter

	return errors.As(err, &e) && e.Expected()
}

// reply writes a short plain-text answer.
func reply(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

// clip shortens a header value taken from an unverified or untrusted
// request before it goes into a log line.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}

	return s
}
