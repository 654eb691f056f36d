package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/trigger"
)

func TestNew(t *testing.T) {
	nop := HandlerFunc(func(context.Context, trigger.Event) error { return nil })
	tests := []struct {
		name    string
		opts    Options
		h       Handler
		wantErr error
	}{
		{name: "no secret", opts: Options{}, h: nop, wantErr: ErrNoSecret},
		{name: "negative workers", opts: Options{Secret: testSecret, Workers: -1}, h: nop,
			wantErr: ErrNegative},
		{name: "negative max body", opts: Options{Secret: testSecret, MaxBody: -5}, h: nop,
			wantErr: ErrNegative},
		{name: "nil handler", opts: Options{Secret: testSecret}},
		{name: "defaults", opts: Options{Secret: testSecret}, h: nop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := New(tt.opts, tt.h)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New: error %v, want %v", err, tt.wantErr)
				}
			case tt.h == nil:
				if err == nil {
					t.Fatal("New with a nil handler: no error")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if in.maxBody != DefaultMaxBody || cap(in.queue) != DefaultQueueSize ||
					in.workers != DefaultWorkers || len(in.seen.ring) != DefaultDedupeSize ||
					in.drainTimeout != DefaultDrainTimeout {
					t.Errorf("defaults not applied: %+v", in)
				}
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	secret := bytes.Clone(testSecret)
	in, err := New(Options{Secret: secret},
		HandlerFunc(func(context.Context, trigger.Event) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 0xff

	if !bytes.Equal(in.secret, testSecret) {
		t.Error("the intake shares the caller's secret slice")
	}
}

func TestOptionsLogValueRedactsSecret(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "webhook", Options{Secret: testSecret})

	if strings.Contains(buf.String(), string(testSecret)) {
		t.Errorf("log line shows the secret: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "REDACTED") {
		t.Errorf("log line does not show the redaction: %s", buf.String())
	}
}

// TestServeHTTPStatus sends one delivery per case over real HTTP and
// checks the answer and whether anything was queued. Run is not started,
// so the queue shows exactly what ServeHTTP accepted.
func TestServeHTTPStatus(t *testing.T) {
	push := fixture(t, "push.json")
	pr := fixture(t, "pull_request-opened-fork.json")
	const maxBody = 32 << 10
	big := bytes.Repeat([]byte("x"), 2*maxBody)
	form := []byte(url.Values{"payload": {string(push)}}.Encode())

	tests := []struct {
		name       string
		d          delivery
		wantCode   int
		wantBody   string // prefix
		wantQueued bool
	}{
		{name: "GET", d: delivery{method: http.MethodGet},
			wantCode: http.StatusMethodNotAllowed},
		{name: "PUT", d: delivery{method: http.MethodPut, event: "push", guid: "g", body: push,
			sign: true}, wantCode: http.StatusMethodNotAllowed},
		{name: "body over the cap", d: delivery{event: "push", guid: "g", body: big, sign: true},
			wantCode: http.StatusRequestEntityTooLarge},
		{name: "chunked body over the cap", d: delivery{event: "push", guid: "g", body: big,
			sign: true, chunked: true}, wantCode: http.StatusRequestEntityTooLarge},
		{name: "no signature", d: delivery{event: "push", guid: "g", body: push},
			wantCode: http.StatusUnauthorized},
		{name: "signature under another secret", d: delivery{event: "push", guid: "g",
			body: push, signature: Sign([]byte("not the secret"), push)},
			wantCode: http.StatusUnauthorized},
		{name: "signature of other bytes", d: delivery{event: "push", guid: "g", body: push,
			signature: Sign(testSecret, append(bytes.Clone(push), ' '))},
			wantCode: http.StatusUnauthorized},
		{name: "signature without prefix", d: delivery{event: "push", guid: "g", body: push,
			signature: strings.TrimPrefix(Sign(testSecret, push), "sha256=")},
			wantCode: http.StatusUnauthorized},
		{name: "sha1 prefix", d: delivery{event: "push", guid: "g", body: push,
			signature: "sha1=" + strings.TrimPrefix(Sign(testSecret, push), "sha256=")},
			wantCode: http.StatusUnauthorized},
		{name: "truncated signature", d: delivery{event: "push", guid: "g", body: push,
			signature: Sign(testSecret, push)[:60]}, wantCode: http.StatusUnauthorized},
		{name: "signature not hex", d: delivery{event: "push", guid: "g", body: push,
			signature: "sha256=" + strings.Repeat("zz", 32)}, wantCode: http.StatusUnauthorized},
		{name: "no delivery id", d: delivery{event: "push", body: push, sign: true},
			wantCode: http.StatusBadRequest},
		{name: "delivery id too long", d: delivery{event: "push", body: push, sign: true,
			guid: strings.Repeat("a", maxDeliveryLen+1)}, wantCode: http.StatusBadRequest},
		{name: "no event name", d: delivery{guid: "g", body: push, sign: true},
			wantCode: http.StatusBadRequest},
		{name: "ping", d: delivery{event: "ping", guid: "g", body: fixture(t, "ping.json"),
			sign: true}, wantCode: http.StatusOK, wantBody: "pong"},
		{name: "push", d: delivery{event: "push", guid: "g", body: push, sign: true},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "push of a new branch", d: delivery{event: "push", guid: "g",
			body: fixture(t, "push-new-branch.json"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "push as a form", d: delivery{event: "push", guid: "g", body: form, sign: true,
			contentType: "application/x-www-form-urlencoded"},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "form without payload", d: delivery{event: "push", guid: "g",
			body: []byte("other=1"), sign: true,
			contentType: "application/x-www-form-urlencoded"}, wantCode: http.StatusBadRequest},
		{name: "tag push", d: delivery{event: "push", guid: "g",
			body: fixture(t, "push-tag.json"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "ignored: tag push"},
		{name: "branch deletion", d: delivery{event: "push", guid: "g",
			body: fixture(t, "push-branch-deleted.json"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "ignored: deletion"},
		{name: "after all zeros without deleted", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "after", strings.Repeat("0", 40)), sign: true},
			wantCode: http.StatusAccepted, wantBody: "ignored: deletion"},
		{name: "push to a note ref", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "ref", "refs/notes/commits"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "ignored: push to a ref"},
		{name: "push without repository", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "repository", deleteField), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "push without clone url", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "repository.clone_url", deleteField), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "push without after", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "after", deleteField), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "push with a short sha", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "after", "4b825dc"), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "push with a sha that is not hex", d: delivery{event: "push", guid: "g",
			body: edit(t, push, "after", "../../"+strings.Repeat("a", 34)), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "malformed JSON", d: delivery{event: "push", guid: "g",
			body: push[:len(push)/2], sign: true}, wantCode: http.StatusBadRequest},
		{name: "JSON array", d: delivery{event: "pull_request", guid: "g",
			body: []byte("[]"), sign: true}, wantCode: http.StatusBadRequest},
		{name: "empty body", d: delivery{event: "push", guid: "g", sign: true},
			wantCode: http.StatusBadRequest},
		{name: "wrong type of field", d: delivery{event: "pull_request", guid: "g",
			body: edit(t, pr, "number", "57"), sign: true}, wantCode: http.StatusBadRequest},
		{name: "pull request opened", d: delivery{event: "pull_request", guid: "g", body: pr,
			sign: true}, wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "pull request synchronize", d: delivery{event: "pull_request", guid: "g",
			body: edit(t, pr, "action", "synchronize"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "pull request reopened", d: delivery{event: "pull_request", guid: "g",
			body: edit(t, pr, "action", "reopened"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "pull request closed", d: delivery{event: "pull_request", guid: "g",
			body: fixture(t, "pull_request-closed.json"), sign: true},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "pull request labeled", d: delivery{event: "pull_request", guid: "g",
			body: edit(t, pr, "action", "labeled"), sign: true},
			wantCode: http.StatusAccepted, wantBody: `ignored: pull_request action "labeled"`},
		{name: "pull request without head sha", d: delivery{event: "pull_request", guid: "g",
			body: edit(t, pr, "pull_request.head.sha", deleteField), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "pull request without number", d: delivery{event: "pull_request", guid: "g",
			body: edit(t, edit(t, pr, "number", deleteField), "pull_request.number",
				deleteField), sign: true}, wantCode: http.StatusBadRequest},
		{name: "pull request without repository", d: delivery{event: "pull_request",
			guid: "g", body: edit(t, pr, "repository", deleteField), sign: true},
			wantCode: http.StatusBadRequest},
		{name: "pull request from a deleted fork", d: delivery{event: "pull_request",
			guid: "g", body: edit(t, pr, "pull_request.head.repo", nil), sign: true},
			wantCode: http.StatusAccepted, wantBody: "queued", wantQueued: true},
		{name: "event yaci does not build", d: delivery{event: "issues", guid: "g",
			body: []byte(`{"action":"opened"}`), sign: true},
			wantCode: http.StatusAccepted, wantBody: "ignored: event issues"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder(nil)
			in, srv := newIntake(t, Options{MaxBody: maxBody}, h)

			got := send(t, srv.Client(), srv.URL, tt.d)

			if got.code != tt.wantCode {
				t.Errorf("status %d %q, want %d", got.code, got.body, tt.wantCode)
			}
			if !strings.HasPrefix(got.body, tt.wantBody) {
				t.Errorf("body %q, want it to start with %q", got.body, tt.wantBody)
			}
			if tt.wantCode == http.StatusMethodNotAllowed && got.allow != http.MethodPost {
				t.Errorf("Allow header %q, want %q", got.allow, http.MethodPost)
			}
			if queued := len(in.queue) == 1; queued != tt.wantQueued {
				t.Errorf("queued %v, want %v", queued, tt.wantQueued)
			}
			if tt.wantQueued {
				if ev := <-in.queue; ev.Delivery != "g" {
					t.Errorf("queued event has delivery %q, want %q", ev.Delivery, "g")
				}
			}
		})
	}
}

// TestRejectedSignatureLogsNoPayload checks that a delivery with a bad
// signature leaves a log line with its id only, and queues nothing.
func TestRejectedSignatureLogsNoPayload(t *testing.T) {
	var logs syncBuffer
	in, srv := newIntake(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		newRecorder(nil))
	const marker = "payload-marker-7f0e"
	body := edit(t, fixture(t, "push.json"), "head_commit.message", marker)

	got := send(t, srv.Client(), srv.URL, delivery{event: "push", guid: "guid-bad-sig",
		body: body, signature: Sign([]byte("wrong"), body)})

	if got.code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", got.code)
	}
	if strings.Contains(logs.String(), marker) {
		t.Errorf("log shows payload content: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "guid-bad-sig") {
		t.Errorf("log does not name the delivery: %s", logs.String())
	}
	if len(in.queue) != 0 {
		t.Error("a delivery with a bad signature was queued")
	}
}

func TestConcurrentSameDelivery(t *testing.T) {
	h := newRecorder(nil)
	in, srv := newIntake(t, Options{}, h)
	stop := run(t, in)
	body := fixture(t, "push.json")

	codes := postConcurrently(t, srv, 100, func(int) delivery {
		return delivery{event: "push", guid: "same-guid", body: body, sign: true}
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	if codes[http.StatusAccepted] != 1 || codes[http.StatusOK] != 99 {
		t.Errorf("answers %v, want one 202 and 99 200", codes)
	}
	if n := len(h.got()); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func TestConcurrentDistinctDeliveries(t *testing.T) {
	h := newRecorder(nil)
	in, srv := newIntake(t, Options{}, h)
	stop := run(t, in)
	body := fixture(t, "push.json")

	codes := postConcurrently(t, srv, 100, func(i int) delivery {
		return delivery{event: "push", guid: fmt.Sprintf("guid-%03d", i), body: body, sign: true}
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	if codes[http.StatusAccepted] != 100 {
		t.Errorf("answers %v, want 100 202", codes)
	}
	seen := map[string]bool{}
	for _, ev := range h.got() {
		seen[ev.Delivery] = true
	}
	if len(h.got()) != 100 || len(seen) != 100 {
		t.Errorf("handler called %d times for %d deliveries, want 100 for 100",
			len(h.got()), len(seen))
	}
}

// postConcurrently sends n deliveries at once and counts the answers by
// status code.
func postConcurrently(t *testing.T, srv *httptest.Server, n int,
	build func(i int) delivery) map[int]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			a := send(t, srv.Client(), srv.URL, build(i))
			mu.Lock()
			codes[a.code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()

	return codes
}

func TestQueueFullThenRedelivery(t *testing.T) {
	h := newRecorder(nil)
	in, srv := newIntake(t, Options{QueueSize: 2, Workers: 1}, h)
	body := fixture(t, "push.json")
	d := func(guid string) delivery {
		return delivery{event: "push", guid: guid, body: body, sign: true}
	}

	// No workers yet: the first two fill the queue.
	for _, guid := range []string{"a", "b"} {
		if got := send(t, srv.Client(), srv.URL, d(guid)); got.code != http.StatusAccepted {
			t.Fatalf("delivery %s: status %d, want 202", guid, got.code)
		}
	}
	for range 2 { // a refused delivery is not remembered, so it is refused again
		got := send(t, srv.Client(), srv.URL, d("c"))
		if got.code != http.StatusServiceUnavailable {
			t.Fatalf("delivery c on a full queue: status %d, want 503", got.code)
		}
	}

	run(t, in)
	h.waitCalls(t, 2)
	if got := send(t, srv.Client(), srv.URL, d("c")); got.code != http.StatusAccepted {
		t.Fatalf("redelivery of c: status %d %q, want 202", got.code, got.body)
	}
	h.waitCalls(t, 3)
	if got := send(t, srv.Client(), srv.URL, d("a")); got.code != http.StatusOK {
		t.Errorf("redelivery of a: status %d, want 200 duplicate", got.code)
	}

	var guids []string
	for _, ev := range h.got() {
		guids = append(guids, ev.Delivery)
	}
	if strings.Join(guids, ",") != "a,b,c" {
		t.Errorf("handled %v, want a, b, c", guids)
	}
}

// TestRunFinishesQueuedWork stops the intake while a handler is busy and
// deliveries wait: Run refuses new ones, but handles the queued ones with a
// live context before it returns.
func TestRunFinishesQueuedWork(t *testing.T) {
	release := make(chan struct{})
	var ctxErrs []error
	var mu sync.Mutex
	h := newRecorder(func(ctx context.Context, ev trigger.Event) error {
		<-release
		mu.Lock()
		ctxErrs = append(ctxErrs, ctx.Err())
		mu.Unlock()
		return nil
	})
	in, srv := newIntake(t, Options{Workers: 1}, h)
	body := fixture(t, "push.json")
	for i := range 5 {
		got := send(t, srv.Client(), srv.URL, delivery{event: "push",
			guid: fmt.Sprintf("q%d", i), body: body, sign: true})
		if got.code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", got.code)
		}
	}
	stop := run(t, in)
	h.waitCalls(t, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitClosed(t, in)
	got := send(t, srv.Client(), srv.URL, delivery{event: "push", guid: "late", body: body,
		sign: true})
	if got.code != http.StatusServiceUnavailable {
		t.Errorf("delivery during shutdown: status %d, want 503", got.code)
	}
	close(release)

	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(h.got()); n != 5 {
		t.Errorf("handled %d deliveries, want 5", n)
	}
	for i, err := range ctxErrs {
		if err != nil {
			t.Errorf("delivery %d was handled with a done context: %v", i, err)
		}
	}
}

// waitClosed waits until the intake has stopped taking deliveries.
func waitClosed(t *testing.T, in *Intake) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in.mu.Lock()
		closed := in.closed
		in.mu.Unlock()
		if closed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("intake did not stop taking deliveries")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunDrainTimeout(t *testing.T) {
	h := newRecorder(func(ctx context.Context, ev trigger.Event) error {
		<-ctx.Done() // a handler stuck until it is told to give up
		return ctx.Err()
	})
	in, srv := newIntake(t, Options{Workers: 1, DrainTimeout: 50 * time.Millisecond}, h)
	body := fixture(t, "push.json")
	for i := range 3 {
		send(t, srv.Client(), srv.URL, delivery{event: "push", guid: fmt.Sprintf("d%d", i),
			body: body, sign: true})
	}
	stop := run(t, in)
	h.waitCalls(t, 1)

	err := stop()

	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("Run: %v, want %v", err, ErrDrainTimeout)
	}
	if !strings.Contains(err.Error(), "2 deliveries dropped") {
		t.Errorf("Run: %v, want it to count 2 dropped deliveries", err)
	}
	if n := len(h.got()); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func TestRunTwice(t *testing.T) {
	in, _ := newIntake(t, Options{}, newRecorder(nil))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := in.Run(ctx); err != nil {
		t.Fatalf("first Run: %v", err)
	}

	if err := in.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v, want %v", err, ErrRunning)
	}
}

// expectedErr is an error that says it is an expected outcome.
type expectedErr struct{}

func (expectedErr) Error() string  { return "no .yaci.yml" }
func (expectedErr) Expected() bool { return true }

// TestHandlerOutcomesLogged checks the level of each outcome's log line,
// that it names the delivery, and that the handler's ctx logger does too.
func TestHandlerOutcomesLogged(t *testing.T) {
	var logs syncBuffer
	h := newRecorder(func(ctx context.Context, ev trigger.Event) error {
		LoggerFrom(ctx).Info("from the handler")
		switch ev.Delivery {
		case "fails":
			return errors.New("create job: boom")
		case "expected":
			return fmt.Errorf("read config: %w", expectedErr{})
		case "panics":
			panic("handler bug")
		}
		return nil
	})
	in, srv := newIntake(t, Options{Workers: 1, Logger: slog.New(slog.NewJSONHandler(&logs,
		&slog.HandlerOptions{Level: slog.LevelDebug}))}, h)
	stop := run(t, in)
	body := fixture(t, "push.json")
	guids := []string{"fails", "expected", "panics", "works"}
	for _, guid := range guids {
		send(t, srv.Client(), srv.URL, delivery{event: "push", guid: guid, body: body,
			sign: true})
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	lines := logLines(t, logs.String())
	want := map[string]string{
		"fails": "ERROR", "expected": "WARN", "panics": "ERROR", "works": "DEBUG",
	}
	for _, guid := range guids {
		var outcome, fromHandler bool
		for _, l := range lines {
			if l["delivery"] != guid {
				continue
			}
			switch l["msg"] {
			case "from the handler":
				fromHandler = true
			case "webhook delivery failed", "webhook delivery not handled",
				"webhook handler panicked", "webhook delivery handled":
				outcome = true
				if l["level"] != want[guid] {
					t.Errorf("delivery %s: %q logged at %v, want %s", guid, l["msg"],
						l["level"], want[guid])
				}
			}
		}
		if !outcome || !fromHandler {
			t.Errorf("delivery %s: outcome logged %v, handler's line names it %v",
				guid, outcome, fromHandler)
		}
	}
}

// logLines parses JSON log output into one map per line.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.Lines(s) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}

	return lines
}

func TestLoggerFromDefault(t *testing.T) {
	if LoggerFrom(t.Context()) != slog.Default() {
		t.Error("LoggerFrom without a logger is not slog.Default()")
	}
	l := slog.New(slog.DiscardHandler)
	if LoggerFrom(WithLogger(t.Context(), l)) != l {
		t.Error("LoggerFrom does not return the logger WithLogger stored")
	}
}

func TestSeenSetForgetsOldest(t *testing.T) {
	s := newSeenSet(3)
	for _, g := range []string{"a", "b", "c", "b", "d"} {
		s.add(g)
	}

	for g, want := range map[string]bool{"a": false, "b": true, "c": true, "d": true} {
		if s.has(g) != want {
			t.Errorf("has(%q) = %v, want %v", g, !want, want)
		}
	}
}
