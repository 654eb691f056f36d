package queue_test

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/queue"
)

// The skewed load: one repository pushes a backlog, nine others a few
// runs each right after it, under a global limit and no per-repository
// one to speak of. Every pod runs for skewRunFor.
const (
	skewBig        = 200
	skewSmall      = 5
	skewMaxRunning = 10
	skewRunFor     = 2 * time.Second
	// skewWait bounds the whole load: about 25 rounds of 3 s.
	skewWait = 6 * time.Minute
	// skewCreators create Jobs at once, so that submitting the backlog
	// takes well under one service time.
	skewCreators = 8
)

var skewSmallRepos = []string{"b", "c", "d", "e", "f", "g", "h", "i", "j"}

// skewResult is what one skewed load measured.
type skewResult struct {
	// byRepo holds each repository's runs in the order of admission.
	byRepo map[string][]run
	// aDuring counts the big repository's admissions from the first
	// submission of a small run to the last admission of one.
	aDuring int
	// jain is Jain's fairness index over the repositories' admission
	// rates while every repository had queued runs; window is how long
	// that was.
	jain   float64
	window time.Duration
	// submit is how long submitting every run took.
	submit time.Duration
}

// skewedLoad runs the skewed load in a namespace of its own.
func skewedLoad(tb testing.TB) skewResult {
	tb.Helper()
	e := newEnv(tb)
	e.start(queue.Options{MaxRunning: skewMaxRunning, MaxPerRepo: 1000})

	begin := time.Now()
	var big, small []string
	for i := range skewBig {
		big = append(big, fmt.Sprintf("a-%03d", i))
	}
	for _, r := range skewSmallRepos {
		for i := range skewSmall {
			small = append(small, fmt.Sprintf("%s-%d", r, i))
		}
	}
	createAll(tb, e, big)
	createAll(tb, e, small)
	submit := time.Since(begin)

	all := append(slices.Clone(big), small...)
	e.rec.within(tb, skewWait, "every run finished", func(r *recorder) bool {
		return r.finished(all...)
	})
	runs, _ := e.rec.snapshot()
	checkOnce(tb, runs, all)

	return measure(runs, submit)
}

// createAll creates the runs names (each "<repo>-<n>") with a few
// creators at once, each queued at the moment of its creation.
func createAll(tb testing.TB, e *env, names []string) {
	tb.Helper()
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range skewCreators {
		wg.Go(func() {
			for n := range work {
				repo := n[:1]
				if _, err := e.tryCreate(repo, n, false, runFor(skewRunFor)); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// measure computes the figures of a finished skewed load.
func measure(runs map[string]run, submit time.Duration) skewResult {
	res := skewResult{byRepo: make(map[string][]run), submit: submit}
	for _, r := range runs {
		repo := r.name[:1]
		res.byRepo[repo] = append(res.byRepo[repo], r)
	}
	for _, rs := range res.byRepo {
		slices.SortFunc(rs, func(x, y run) int { return x.admitted().Compare(y.admitted()) })
	}

	// The window in which every repository had queued runs: from the
	// first run of the last repository to arrive to the last admission
	// of the first repository to run dry.
	var from, to, firstSmall, lastSmall time.Time
	for repo, rs := range res.byRepo {
		first := slices.MinFunc(rs, func(x, y run) int { return x.queued.Compare(y.queued) }).queued
		last := rs[len(rs)-1].admitted()
		if first.After(from) {
			from = first
		}
		if to.IsZero() || last.Before(to) {
			to = last
		}
		if repo != "a" {
			if firstSmall.IsZero() || first.Before(firstSmall) {
				firstSmall = first
			}
			if last.After(lastSmall) {
				lastSmall = last
			}
		}
	}
	for _, r := range res.byRepo["a"] {
		if at := r.admitted(); at.After(firstSmall) && !at.After(lastSmall) {
			res.aDuring++
		}
	}

	res.window = to.Sub(from)
	var sum, squares float64
	for _, rs := range res.byRepo {
		n := 0
		for _, r := range rs {
			if at := r.admitted(); at.After(from) && !at.After(to) {
				n++
			}
		}
		rate := float64(n) / res.window.Seconds()
		sum += rate
		squares += rate * rate
	}
	res.jain = sum * sum / (float64(len(res.byRepo)) * squares)

	return res
}

// waits returns the max and the 95th percentile (nearest rank) of the
// waits, creation to admission, of runs.
func waits(runs []run) (maxWait, p95 time.Duration) {
	ws := make([]time.Duration, 0, len(runs))
	for _, r := range runs {
		ws = append(ws, r.admitted().Sub(r.queued))
	}
	slices.Sort(ws)
	rank := int(math.Ceil(0.95*float64(len(ws)))) - 1

	return ws[len(ws)-1], ws[max(rank, 0)]
}

// smallRuns returns every run of the small repositories.
func (res skewResult) smallRuns() []run {
	var out []run
	for _, r := range skewSmallRepos {
		out = append(out, res.byRepo[r]...)
	}

	return out
}

// TestSkewedLoad checks that a backlog of one repository does not delay
// the others: every small run is admitted before the big repository's
// 30th, and while small runs wait the big one gets about its share of a
// round. It logs the figures; BenchmarkSkewedLoad reports them.
func TestSkewedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("skewed load takes a minute or two; run without -short")
	}
	res := skewedLoad(t)

	for _, repo := range append([]string{"a"}, skewSmallRepos...) {
		maxWait, p95 := waits(res.byRepo[repo])
		t.Logf("repo %s: %3d runs, wait max %6.2fs p95 %6.2fs", repo, len(res.byRepo[repo]),
			maxWait.Seconds(), p95.Seconds())
	}
	t.Logf("submitted in %s; Jain's index %.4f over %s; a admitted %d while small runs waited",
		res.submit.Round(time.Millisecond), res.jain, res.window.Round(time.Millisecond),
		res.aDuring)

	a30 := res.byRepo["a"][29].admitted()
	for _, r := range res.smallRuns() {
		if !r.admitted().Before(a30) {
			t.Errorf("run %s admitted at %s, after a's 30th run (%s)", r.name,
				r.admitted().Format(time.StampMilli), a30.Format(time.StampMilli))
		}
	}
	// Five rounds serve the small repositories; the big one has one
	// turn a round, and may have had the first turns of the first.
	if res.aDuring > 2*skewSmall+1 {
		t.Errorf("a was admitted %d times while small runs waited, want about %d (one a round)",
			res.aDuring, skewSmall)
	}
}

// BenchmarkSkewedLoad reports the waits and fairness of the skewed load.
// Each iteration is a whole load of 245 runs; run it with -benchtime=1x.
func BenchmarkSkewedLoad(b *testing.B) {
	var res skewResult
	for b.Loop() {
		res = skewedLoad(b)
	}

	aMax, aP95 := waits(res.byRepo["a"])
	sMax, sP95 := waits(res.smallRuns())
	b.ReportMetric(aMax.Seconds(), "a-max-wait-s")
	b.ReportMetric(aP95.Seconds(), "a-p95-wait-s")
	b.ReportMetric(sMax.Seconds(), "small-max-wait-s")
	b.ReportMetric(sP95.Seconds(), "small-p95-wait-s")
	b.ReportMetric(res.jain, "jain")
	b.ReportMetric(float64(res.aDuring), "a-admitted-while-small-waited")
	for _, repo := range append([]string{"a"}, skewSmallRepos...) {
		maxWait, p95 := waits(res.byRepo[repo])
		b.Logf("repo %s: %3d runs, wait max %6.2fs p95 %6.2fs", repo, len(res.byRepo[repo]),
			maxWait.Seconds(), p95.Seconds())
	}
	b.Logf("Jain's index %.4f over %s", res.jain, res.window.Round(time.Millisecond))
}
