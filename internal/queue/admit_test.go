package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/trigger"
)

func repoLabel(repo string) string {
	return launch.RepoLabel(trigger.Repo{Owner: owner, Name: repo})
}

// TestLimits pushes runs of three repositories while an Admitter runs,
// and checks from the Job watch that the limits held at every moment,
// that they were reached, and that each Job was admitted exactly once.
func TestLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const maxRunning, maxPerRepo = 3, 2
	e.start(queue.Options{MaxRunning: maxRunning, MaxPerRepo: maxPerRepo})

	var names []string
	for _, rc := range []struct {
		repo string
		n    int
	}{{"one", 4}, {"two", 3}, {"three", 2}} {
		for i := range rc.n {
			name := fmt.Sprintf("%s-%d", rc.repo, i)
			e.create(rc.repo, name, false, runFor(2*time.Second))
			names = append(names, name)
		}
	}
	e.rec.until(t, "every run finished", func(r *recorder) bool { return r.finished(names...) })

	e.rec.mu.Lock()
	maxTotal, maxByRepo := e.rec.maxTotal, e.rec.maxByRepo
	e.rec.mu.Unlock()
	if maxTotal != maxRunning {
		t.Errorf("at most %d jobs ran at once, want exactly the limit %d", maxTotal, maxRunning)
	}
	for repo, n := range maxByRepo {
		if n > maxPerRepo {
			t.Errorf("repository %s ran %d jobs at once, limit %d", repo, n, maxPerRepo)
		}
	}
	runs, _ := e.rec.snapshot()
	checkOnce(t, runs, names)
}

// TestFirstComeFirstServed queues runs of one repository under names in
// the reverse order of their arrival, and one of another repository, and
// checks that each repository's runs start in the order they came.
func TestFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	arrival := []string{"fifo-d", "fifo-c", "fifo-b", "fifo-a"}
	for _, name := range arrival {
		e.create("fifo", name, false, runFor(time.Second))
	}
	e.create("other", "other-1", false, runFor(time.Second))
	e.start(queue.Options{MaxRunning: 2, MaxPerRepo: 1})

	all := append(slices.Clone(arrival), "other-1")
	e.rec.until(t, "every run finished", func(r *recorder) bool { return r.finished(all...) })

	runs, started := e.rec.snapshot()
	var fifo []string
	for _, n := range started {
		if runs[n].repo == repoLabel("fifo") {
			fifo = append(fifo, n)
		}
	}
	if !slices.Equal(fifo, arrival) {
		t.Errorf("runs of fifo started in the order %v, want their arrival order %v", fifo, arrival)
	}
	if i := slices.Index(started, "other-1"); i > 1 {
		t.Errorf("the other repository's run started %dth, want it in the first round", i+1)
	}
	checkOnce(t, runs, all)
}

// TestDeletedQueuedJobNeverStarts deletes queued runs, one kept by a
// finalizer (being deleted) and one gone at once, and checks that neither
// ever starts while the runs behind them do.
func TestDeletedQueuedJobNeverStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("del", "del-1", false, runFor(3*time.Second))
	e.create("del", "del-2", true)
	e.create("del", "del-3", false)
	e.create("del", "del-4", false)
	t.Cleanup(func() { e.dropFinalizers("del-2") })

	e.delete("del-2")
	e.rec.until(t, "del-2 is being deleted", func(r *recorder) bool {
		return r.runs["del-2"] != nil && r.runs["del-2"].deleting
	})
	e.start(queue.Options{MaxRunning: 1})
	e.rec.until(t, "del-1 started", func(r *recorder) bool { return len(r.started) == 1 })
	e.delete("del-3")
	e.rec.until(t, "del-4 finished", func(r *recorder) bool { return r.finished("del-1", "del-4") })

	runs, started := e.rec.snapshot()
	if want := []string{"del-1", "del-4"}; !slices.Equal(started, want) {
		t.Errorf("started %v, want %v", started, want)
	}
	for _, n := range []string{"del-2", "del-3"} {
		if len(runs[n].admittedAt) != 0 {
			t.Errorf("deleted queued job %s was admitted at %v", n, runs[n].admittedAt)
		}
	}
	checkOnce(t, runs, []string{"del-1", "del-4"})
}

// TestRestart stops an Admitter half way and lets a new one, and then the
// first again, finish the queue: no Job is admitted twice, the limit
// holds across the handovers, and every run finishes.
func TestRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var names []string
	for i := range 4 {
		for _, repo := range []string{"ra", "rb"} {
			name := fmt.Sprintf("%s-%d", repo, i)
			e.create(repo, name, false, runFor(time.Second))
			names = append(names, name)
		}
	}
	o := queue.Options{MaxRunning: 2}

	first := e.start(o)
	e.rec.until(t, "three runs started", func(r *recorder) bool { return len(r.started) >= 3 })
	if err := first.Run(t.Context()); !errors.Is(err, queue.ErrRunning) {
		t.Errorf("second Run of a running Admitter = %v, want ErrRunning", err)
	}
	first.stop(t)

	second := e.start(o)
	e.rec.until(t, "six runs started", func(r *recorder) bool { return len(r.started) >= 6 })
	second.stop(t)

	e.run(first.Admitter)
	e.rec.until(t, "every run finished", func(r *recorder) bool { return r.finished(names...) })

	runs, _ := e.rec.snapshot()
	checkOnce(t, runs, names)
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if e.rec.maxTotal > o.MaxRunning {
		t.Errorf("%d jobs ran at once across restarts, limit %d", e.rec.maxTotal, o.MaxRunning)
	}
}

// TestRepoLowersItsLimit checks that a repository whose Jobs carry
// AnnotationMaxParallel runs no more than it asked for, while another
// repository uses the whole per-repository limit.
func TestRepoLowersItsLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var names []string
	for i := range 3 {
		for _, repo := range []string{"low", "high"} {
			name := fmt.Sprintf("%s-%d", repo, i)
			job := e.create(repo, name, false, runFor(2*time.Second))
			if repo == "low" {
				annotate(t, e, job.Name, queue.AnnotationMaxParallel, "1")
			}
			names = append(names, name)
		}
	}
	e.start(queue.Options{MaxRunning: 10, MaxPerRepo: 3})
	e.rec.until(t, "every run finished", func(r *recorder) bool { return r.finished(names...) })

	e.rec.mu.Lock()
	low, high := e.rec.maxByRepo[repoLabel("low")], e.rec.maxByRepo[repoLabel("high")]
	e.rec.mu.Unlock()
	if low != 1 {
		t.Errorf("repository low ran up to %d jobs at once, want the 1 it asked for", low)
	}
	if high != 3 {
		t.Errorf("repository high ran up to %d jobs at once, want the limit 3", high)
	}
	runs, _ := e.rec.snapshot()
	checkOnce(t, runs, names)
}

// annotate sets an annotation on the Job name, as a launcher would have
// when creating it.
func annotate(t *testing.T, e *env, name, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	_, err := e.cs.BatchV1().Jobs(e.ns).Patch(t.Context(), name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("annotate job %s: %v", name, err)
	}
}

// TestPosition checks the queue positions an Admitter reports while one
// run holds the only slot.
func TestPosition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.start(queue.Options{MaxRunning: 1})
	e.create("pa", "pa-0", false, runFor(time.Minute))
	e.rec.until(t, "the admitter synced", func(*recorder) bool { return a.HasSynced() })
	e.rec.until(t, "pa-0 started", func(r *recorder) bool { return len(r.started) == 1 })
	for _, n := range []string{"pa-1", "pa-2"} {
		e.create("pa", n, false)
	}
	e.create("pb", "pb-1", false)

	// pa was served last, so pb's turn comes first.
	want := map[string]int{"pb-1": 0, "pa-1": 1, "pa-2": 2}
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	for name, ahead := range want {
		for {
			got, ok := a.Position(name)
			if ok && got == ahead {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("Position(%s) = %d, %v; want %d, true", name, got, ok, ahead)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, ok := a.Position("pa-0"); ok {
		t.Error("Position of a running job is ok, want not queued")
	}
	if n, ok := a.Queued(); !ok || n != 3 {
		t.Errorf("Queued() = %d, %v; want 3 waiting behind the running one", n, ok)
	}
	if _, ok := a.Position("nope"); ok {
		t.Error("Position of an unknown job is ok")
	}

	a.stop(t)
	if a.HasSynced() {
		t.Error("HasSynced after Run returned")
	}
	if _, ok := a.Queued(); ok {
		t.Error("Queued is ok after Run returned")
	}
	if _, ok := a.Position("pa-1"); ok {
		t.Error("Position is ok after Run returned")
	}
}
