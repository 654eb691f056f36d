package webhook

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/yaci-ci/yaci/internal/trigger"
)

// documentedStatus are the codes ServeHTTP may answer a POST with.
var documentedStatus = map[int]bool{
	http.StatusOK:                    true,
	http.StatusAccepted:              true,
	http.StatusBadRequest:            true,
	http.StatusUnauthorized:          true,
	http.StatusRequestEntityTooLarge: true,
	http.StatusServiceUnavailable:    true,
}

// FuzzServeHTTP posts arbitrary bodies with arbitrary signature headers
// and event names. When sign is set, the fuzz function replaces the header
// with the correct signature, so that about half the inputs get past the
// check and exercise the decoding. Whatever the input, ServeHTTP must not
// panic, must answer only documented codes, must refuse a bad signature
// without calling the handler, and must call the handler exactly for a
// delivery it answered "queued".
func FuzzServeHTTP(f *testing.F) {
	for _, name := range []string{"push.json", "push-tag.json", "push-branch-deleted.json",
		"pull_request-opened-fork.json", "pull_request-closed.json", "ping.json"} {
		body := fixture(f, name)
		kind, _, _ := strings.Cut(strings.TrimSuffix(name, ".json"), "-")
		f.Add(body, "", kind, true)
		f.Add(body, Sign([]byte("other secret"), body), kind, false)
	}
	f.Add([]byte(`{"ref":"refs/heads/x","after":"`+strings.Repeat("a", 40)+`"}`), "",
		"push", true)
	f.Add([]byte("not json"), "sha256=00", "push", false)

	var handled atomic.Int64
	h := HandlerFunc(func(context.Context, trigger.Event) error {
		handled.Add(1)
		return nil
	})
	in, err := New(Options{Secret: testSecret, MaxBody: 64 << 10, QueueSize: 2,
		Logger: slog.New(slog.DiscardHandler)}, h)
	if err != nil {
		f.Fatal(err)
	}
	var n int

	f.Fuzz(func(t *testing.T, body []byte, sig, event string, sign bool) {
		correct := Sign(testSecret, body)
		if sign {
			sig = correct
		}
		n++
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set(headerSignature, sig)
		req.Header.Set(headerEvent, event)
		req.Header.Set(headerDelivery, "fuzz-"+strconv.Itoa(n)) // never a duplicate
		rec := httptest.NewRecorder()
		before := handled.Load()

		in.ServeHTTP(rec, req)
		// Hand whatever was queued to the handler, as a worker would.
		for len(in.queue) > 0 {
			in.handle(t.Context(), <-in.queue)
		}

		code, calls := rec.Code, handled.Load()-before
		if !documentedStatus[code] {
			t.Fatalf("status %d is not documented", code)
		}
		// An upper-case copy of the right MAC may pass; anything else may not.
		if !strings.EqualFold(sig, correct) && (code != http.StatusUnauthorized || calls != 0) {
			t.Fatalf("bad signature %q: status %d, %d handler calls", sig, code, calls)
		}
		if sig == correct && code == http.StatusUnauthorized {
			t.Fatal("correct signature refused")
		}
		queued := code == http.StatusAccepted && rec.Body.String() == "queued"
		if (calls == 1) != queued || calls > 1 {
			t.Fatalf("status %d %q, %d handler calls", code, rec.Body.String(), calls)
		}
	})
}
