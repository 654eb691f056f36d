package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/trigger"
)

// testSecret is the secret of the project's fixtures; testdata/signatures.json
// holds MACs made with it by openssl.
var testSecret = []byte("yaci test secret; used only by these fixtures")

// sharedDir holds GitHub's published payloads and vectors when the
// workplace provides them; tests that read it skip that part otherwise.
const sharedDir = "/work/shared/testdata/github"

// fixture returns the bytes of testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}

	return b
}

// edit returns body with the JSON value at the dotted path replaced by v,
// or removed when v is deleteField.
func edit(t testing.TB, body []byte, path string, v any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}

	keys := strings.Split(path, ".")
	m := doc
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("edit %s: %s is not an object", path, k)
		}
		m = next
	}
	last := keys[len(keys)-1]
	if v == deleteField {
		delete(m, last)
	} else {
		m[last] = v
	}

	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}

	return out
}

// deleteField tells edit to remove a field.
var deleteField = &struct{ name string }{"delete"}

// delivery describes one request to the intake.
type delivery struct {
	method      string // POST when empty
	event       string
	guid        string
	body        []byte
	signature   string // computed from testSecret when empty and sign is set
	sign        bool
	contentType string // application/json when empty
	chunked     bool   // send without a Content-Length
}

// request builds the HTTP request for d aimed at url.
func (d delivery) request(t testing.TB, url string) *http.Request {
	t.Helper()
	method := d.method
	if method == "" {
		method = http.MethodPost
	}

	var body io.Reader = bytes.NewReader(d.body)
	if d.chunked {
		body = io.MultiReader(body) // hides the length from net/http
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}

	ct := d.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	if d.event != "" {
		req.Header.Set(headerEvent, d.event)
	}
	if d.guid != "" {
		req.Header.Set(headerDelivery, d.guid)
	}
	sig := d.signature
	if sig == "" && d.sign {
		sig = Sign(testSecret, d.body)
	}
	if sig != "" {
		req.Header.Set(headerSignature, sig)
	}

	return req
}

// answer is what the intake answered.
type answer struct {
	code  int
	body  string
	allow string
}

// send posts d to the server at url over real HTTP.
func send(t testing.TB, client *http.Client, url string, d delivery) answer {
	t.Helper()
	resp, err := client.Do(d.request(t, url))
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}

	return answer{code: resp.StatusCode, body: string(b), allow: resp.Header.Get("Allow")}
}

// recorder is a Handler that remembers the events it was given.
type recorder struct {
	mu     sync.Mutex
	events []trigger.Event
	called chan struct{} // receives once per call, when buffered enough
	fn     func(ctx context.Context, ev trigger.Event) error
}

func newRecorder(fn func(context.Context, trigger.Event) error) *recorder {
	return &recorder{called: make(chan struct{}, 1000), fn: fn}
}

func (r *recorder) Handle(ctx context.Context, ev trigger.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.called <- struct{}{}:
	default:
	}
	if r.fn != nil {
		return r.fn(ctx, ev)
	}

	return nil
}

// got returns a copy of the events handled so far.
func (r *recorder) got() []trigger.Event {
	r.mu.Lock()
	defer r.mu.Unlock()

	return append([]trigger.Event(nil), r.events...)
}

// waitCalls waits until the handler was called n times in all.
func (r *recorder) waitCalls(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(r.got()) < n {
		select {
		case <-r.called:
		case <-deadline:
			t.Fatalf("handler called %d times, want %d", len(r.got()), n)
		}
	}
}

// newIntake returns an intake with testSecret and a logger writing to the
// test's output, plus a test server in front of it.
func newIntake(t testing.TB, opts Options, h Handler) (*Intake, *httptest.Server) {
	t.Helper()
	opts.Secret = testSecret
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{
			Level: slog.LevelDebug,
		}))
	}
	in, err := New(opts, h)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)

	return in, srv
}

// run starts in.Run and returns a function that stops it and returns
// Run's error; the test's cleanup stops it too if the test did not.
func run(t testing.TB, in *Intake) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()

	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("run did not return")
			}
		})

		return err
	}
	t.Cleanup(func() { _ = stop() })

	return stop
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}
