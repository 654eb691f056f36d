package queue_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/trigger"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// waitFor bounds every wait of these tests; none should come near it.
const waitFor = 2 * time.Minute

const owner = "octo"

func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if os.Getenv("YACI_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}

	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is one test's namespace of the real control plane and what watches
// it.
type env struct {
	tb  testing.TB
	ns  string
	cs  kubernetes.Interface
	rec *recorder
}

// newEnv makes a namespace and starts recording its runs' Jobs before any
// exists.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	cfg, ns := testenv.Namespace(tb)
	e := &env{tb: tb, ns: ns, cs: kubernetes.NewForConfigOrDie(cfg)}
	e.rec = record(tb, e.cs, ns)

	return e
}

// runFor returns a job option that keeps its pod running for d.
func runFor(d time.Duration) func(*repoconfig.Job) {
	return func(j *repoconfig.Job) {
		j.Env = append(j.Env, repoconfig.EnvVar{Name: testenv.RunForEnv, Value: d.String()})
	}
}

// create launches a run of repo's job name as launch builds it, suspended,
// as an Admitter finds it. The Job is named name; it gets the queued-at
// annotation of now, as a launcher would set it. The finalizer launch puts
// on every Job is left off, as no watcher runs here to remove it, unless
// keepFinalizer is set.
func (e *env) create(repo, name string, keepFinalizer bool, mods ...func(*repoconfig.Job)) *batchv1.Job {
	e.tb.Helper()
	job, err := e.tryCreate(repo, name, keepFinalizer, mods...)
	if err != nil {
		e.tb.Fatal(err)
	}

	return job
}

// tryCreate is create for any goroutine: it returns its error.
func (e *env) tryCreate(repo, name string, keepFinalizer bool, mods ...func(*repoconfig.Job)) (*batchv1.Job, error) {
	sum := sha1.Sum([]byte(e.ns + "/" + name))
	run := trigger.Run{
		Event: trigger.Event{
			Delivery: "delivery-" + name,
			Kind:     repoconfig.EventPush,
			Repo: trigger.Repo{
				Owner: owner, Name: repo,
				CloneURL: "https://github.com/" + owner + "/" + repo + ".git",
			},
			SHA: hex.EncodeToString(sum[:]), Ref: "refs/heads/main", Branch: "main",
		},
		Job:     repoconfig.Job{Name: "test", Image: "busybox:1", Run: "true"},
		Attempt: 1,
	}
	for _, m := range mods {
		m(&run.Job)
	}
	job, err := launch.BuildJob(run, launch.Options{Namespace: e.ns, Suspend: true})
	if err != nil {
		return nil, err
	}
	job.Name = name
	job.Annotations[queue.AnnotationQueuedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	if !keepFinalizer {
		job.Finalizers = nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	made, err := e.cs.BatchV1().Jobs(e.ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create job %s: %w", name, err)
	}

	return made, nil
}

// admitter is a running Admitter and the way to stop it.
type admitter struct {
	*queue.Admitter
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs a new Admitter with o (its namespace and logger filled in)
// until stop is called or the test ends.
func (e *env) start(o queue.Options) *admitter {
	e.tb.Helper()
	o.Namespace, o.Logger = e.ns, testLogger(e.tb)
	a, err := queue.New(e.cs, o)
	if err != nil {
		e.tb.Fatal(err)
	}

	return e.run(a)
}

// run runs a until stop is called or the test ends.
func (e *env) run(a *queue.Admitter) *admitter {
	e.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &admitter{Admitter: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	e.tb.Cleanup(func() { r.stop(e.tb) })

	return r
}

// stop stops the Admitter and waits until its Run has returned.
func (r *admitter) stop(tb testing.TB) {
	tb.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				tb.Errorf("Run = %v", err)
			}
		case <-time.After(waitFor):
			tb.Error("admitter did not stop")
		}
	})
}

// delete deletes the Job name.
func (e *env) delete(name string) {
	e.tb.Helper()
	err := e.cs.BatchV1().Jobs(e.ns).Delete(context.Background(), name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if err != nil {
		e.tb.Fatalf("delete job %s: %v", name, err)
	}
}

// dropFinalizers lets the Job name go, if it is still there.
func (e *env) dropFinalizers(name string) {
	e.tb.Helper()
	_, err := e.cs.BatchV1().Jobs(e.ns).Patch(context.Background(), name, types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.tb.Errorf("drop finalizers of job %s: %v", name, err)
	}
}

// run is what the recorder learnt of one Job.
type run struct {
	name, repo string
	queued     time.Time
	// admittedAt holds every AnnotationAdmittedAt value the Job had.
	admittedAt []string
	// started is set once the Job was seen unsuspended.
	started  bool
	running  bool
	finished bool
	deleting bool
}

// admitted returns the time of the Job's (first) admission.
func (r *run) admitted() time.Time {
	if len(r.admittedAt) == 0 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, r.admittedAt[0])

	return t
}

// recorder follows every change of a namespace's runs' Jobs through a
// watch, in the order of the API server, and keeps the largest number of
// Jobs that ran at once, in all and per repository.
type recorder struct {
	mu   sync.Mutex
	runs map[string]*run
	// started lists the Jobs in the order they were first seen
	// unsuspended.
	started   []string
	total     int
	maxTotal  int
	perRepo   map[string]int
	maxByRepo map[string]int
	err       error
}

// record starts a recorder of the runs in ns; it stops when the test ends.
func record(tb testing.TB, cs kubernetes.Interface, ns string) *recorder {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	jobs := cs.BatchV1().Jobs(ns)
	list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: launch.Selector})
	if err != nil {
		tb.Fatal(err)
	}
	// A busy API server may end a watch; the retry watcher goes on from
	// the last version seen, so no change is missed.
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = launch.Selector
			return jobs.Watch(ctx, o)
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	rec := &recorder{runs: make(map[string]*run), perRepo: make(map[string]int),
		maxByRepo: make(map[string]int)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if ctx.Err() != nil {
				continue // the client's own note that the test stopped it
			}
			rec.see(ev)
		}
		if ctx.Err() == nil {
			rec.fail(errors.New("job watch ended early"))
		}
	}()
	tb.Cleanup(func() {
		cancel()
		w.Stop()
		<-done
		if err := rec.error(); err != nil {
			tb.Error(err)
		}
	})

	return rec
}

func (rec *recorder) fail(err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.err == nil {
		rec.err = err
	}
}

func (rec *recorder) error() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()

	return rec.err
}

// isRunning is the brief's definition of a running Job, written here
// apart from the package's own.
func isRunning(job *batchv1.Job) bool {
	if ptr.Deref(job.Spec.Suspend, false) || job.DeletionTimestamp != nil {
		return false
	}

	return !isFinished(job)
}

func isFinished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) &&
			c.Status == corev1.ConditionTrue {
			return true
		}
	}

	return false
}

func (rec *recorder) see(ev watch.Event) {
	job, ok := ev.Object.(*batchv1.Job)
	if !ok {
		if ev.Type == watch.Error {
			rec.fail(apierrors.FromObject(ev.Object))
		}
		return
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.runs[job.Name]
	if r == nil {
		q, _ := time.Parse(time.RFC3339Nano, job.Annotations[queue.AnnotationQueuedAt])
		r = &run{name: job.Name, repo: job.Labels[launch.LabelRepo], queued: q}
		rec.runs[job.Name] = r
	}
	at, ok := job.Annotations[queue.AnnotationAdmittedAt]
	if ok && !slices.Contains(r.admittedAt, at) {
		r.admittedAt = append(r.admittedAt, at)
	}
	if !ptr.Deref(job.Spec.Suspend, true) && !r.started {
		r.started = true
		rec.started = append(rec.started, job.Name)
	}
	r.finished = r.finished || isFinished(job)
	r.deleting = job.DeletionTimestamp != nil

	now := isRunning(job) && ev.Type != watch.Deleted
	switch {
	case now && !r.running:
		rec.total++
		rec.perRepo[r.repo]++
	case !now && r.running:
		rec.total--
		rec.perRepo[r.repo]--
	}
	r.running = now
	rec.maxTotal = max(rec.maxTotal, rec.total)
	rec.maxByRepo[r.repo] = max(rec.maxByRepo[r.repo], rec.perRepo[r.repo])
}

// until waits until cond holds of the recorder, reading it under its lock.
func (rec *recorder) until(tb testing.TB, what string, cond func(*recorder) bool) {
	tb.Helper()
	rec.within(tb, waitFor, what, cond)
}

// within is until with a bound of its own.
func (rec *recorder) within(tb testing.TB, d time.Duration, what string, cond func(*recorder) bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		rec.mu.Lock()
		ok := cond(rec)
		rec.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			rec.mu.Lock()
			seen, started := len(rec.runs), len(rec.started)
			rec.mu.Unlock()
			tb.Fatalf("gave up waiting until %s (%d jobs seen, %d started)", what, seen, started)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finished reports whether the Jobs names have all finished.
func (rec *recorder) finished(names ...string) bool {
	for _, n := range names {
		if r := rec.runs[n]; r == nil || !r.finished {
			return false
		}
	}

	return true
}

// snapshot returns copies of what the recorder learnt, once the caller
// no longer expects changes.
func (rec *recorder) snapshot() (runs map[string]run, started []string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	runs = make(map[string]run, len(rec.runs))
	for n, r := range rec.runs {
		runs[n] = *r
	}

	return runs, slices.Clone(rec.started)
}

// checkOnce fails the test for each of names that was not admitted
// exactly once.
func checkOnce(tb testing.TB, runs map[string]run, names []string) {
	tb.Helper()
	for _, n := range names {
		if got := runs[n].admittedAt; len(got) != 1 {
			tb.Errorf("job %s had admitted-at values %v, want exactly one", n, got)
		}
	}
}
