package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/trigger"
)

// largePush returns the push fixture grown with more commits to at least
// size bytes, the size of an ordinary push of a few commits.
func largePush(b *testing.B, size int) []byte {
	b.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fixture(b, "push.json"), &doc); err != nil {
		b.Fatal(err)
	}
	commit := doc["commits"].([]any)[0].(map[string]any)

	for {
		out, err := json.Marshal(doc)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) >= size {
			return out
		}
		c := make(map[string]any, len(commit))
		for k, v := range commit {
			c[k] = v
		}
		c["id"] = fmt.Sprintf("%040x", len(doc["commits"].([]any)))
		doc["commits"] = append(doc["commits"].([]any), c)
	}
}

// benchIntake returns a running intake whose handler does nothing and
// whose logger formats every line as in production, then drops it.
func benchIntake(b *testing.B) *Intake {
	b.Helper()
	in, err := New(Options{
		Secret: testSecret,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, HandlerFunc(func(context.Context, trigger.Event) error { return nil }))
	if err != nil {
		b.Fatal(err)
	}
	run(b, in)

	return in
}

// BenchmarkIntake measures one signed ~10 KB push through ServeHTTP:
// reading, verifying, decoding and queueing. Workers drain the queue
// meanwhile, as they would in production.
func BenchmarkIntake(b *testing.B) {
	body := largePush(b, 10<<10)
	in := benchIntake(b)
	sig := Sign(testSecret, body)
	r := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/webhook", r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerEvent, "push")
	req.Header.Set(headerSignature, sig)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()

	key := http.CanonicalHeaderKey(headerDelivery)
	var n int
	for b.Loop() {
		n++
		r.Reset(body)
		req.Body = io.NopCloser(r)
		req.Header[key] = []string{"bench-" + strconv.Itoa(n)}
		rec := httptest.NewRecorder()

		in.ServeHTTP(rec, req)

		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d %q", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkLoad500 sends signed ~10 KB pushes over loopback HTTP at a
// steady 500 per second, one b.N per delivery, and reports the median and
// 99th percentile time from sending a delivery to reading its answer. Run
// it for a few seconds, e.g. -bench Load500 -benchtime 3s (~1500 sends).
func BenchmarkLoad500(b *testing.B) {
	const rate = 500
	body := largePush(b, 10<<10)
	sig := Sign(testSecret, body)
	srv := httptest.NewServer(benchIntake(b))
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)

	post := func(guid string) (time.Duration, error) {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(headerEvent, "push")
		req.Header.Set(headerSignature, sig)
		req.Header.Set(headerDelivery, guid)

		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err == nil && resp.StatusCode != http.StatusAccepted {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}

		return took, err
	}
	for i := range 8 { // open a few connections before measuring
		if _, err := post("warm-" + strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}

	lat := make([]time.Duration, b.N)
	errs := make(chan error, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// Each send has its slot on a fixed schedule, so a slow answer
		// does not hold back the next send.
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
		wg.Go(func() {
			took, err := post("load-" + strconv.Itoa(i))
			lat[i] = took
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sends/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
