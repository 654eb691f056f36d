// Package queue admits yaci's runs: it starts suspended Jobs fairly
// across repositories and within limits.
//
// The queue lives in the cluster, not in yaci's memory. launch creates
// every run's Job suspended (launch.Options.Suspend); an Admitter keeps an
// informer on the runs' Jobs and un-suspends them, one patch per Job that
// also records AnnotationAdmittedAt. A restarted yaci rebuilds the queue
// from the Jobs as they are: a suspended Job without AnnotationAdmittedAt
// waits, an unsuspended one that has not finished runs, and a Job is
// never admitted twice, because the patch applies only to the version of
// the Job the decision was made on (its resourceVersion), and a Job that
// carries AnnotationAdmittedAt is never admitted again.
//
// # Limits
//
// At most Options.MaxRunning runs are running at once, and at most
// Options.MaxPerRepo of one repository (launch.LabelRepo). A repository
// may lower its own limit, never raise it, through AnnotationMaxParallel
// on its Jobs; the newest Job of the repository says which value holds.
// A Job runs, for counting, from its admission until it has a Complete
// or Failed condition or is being deleted. The Admitter counts a Job it
// admitted as running from the moment the API server accepted the patch,
// without waiting for its informer to show it, so a burst of events never
// admits more than the limits allow.
//
// # Order
//
// Repositories take turns: round-robin over the repositories that have
// queued Jobs, in the order of their names, starting after the one served
// last, one Job per turn; within a repository, first come first served
// (AnnotationQueuedAt or else creationTimestamp, then name). Round-robin
// was chosen over deficit or weighted fair sharing because admission has
// nothing to weigh by: how long a run will take is unknown when it is
// admitted, and estimating it from a repository's history would need
// state that is not in the cluster, which a restarted yaci would lose.
// Every admission is one unit, and deficit round-robin with unit costs is
// plain round-robin. Its state is one repository name, which a restarted
// Admitter recovers from the newest AnnotationAdmittedAt. It bounds what
// matters most for a shared CI: a repository that pushes one commit waits
// for at most one admission per other busy repository, however deep their
// backlogs. Long runs of one repository cannot take every slot either,
// because of the per-repository limit.
//
// # Leadership
//
// Only one Admitter in a cluster may run at a time (yaci runs it under
// leader election). Run may be stopped and called again: each Run starts
// from what the cluster says.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
)

// Annotations of a run's Job that admission reads or writes.
const (
	// AnnotationAdmittedAt holds when the Job was admitted, in RFC 3339
	// with nanoseconds. The Admitter sets it in the patch that starts
	// the Job; a Job that has it is never admitted again.
	AnnotationAdmittedAt = "yaci.dev/admitted-at"
	// AnnotationMaxParallel, when it holds a whole number of at least
	// one, lowers the per-repository limit of the Job's repository to
	// it; a larger value changes nothing. The newest Job of a repository
	// decides. The launcher copies the parallel key of .yaci.yml here.
	AnnotationMaxParallel = launch.AnnotationMaxParallel
	// AnnotationQueuedAt, when it holds an RFC 3339 time, is when the Job
	// joined the queue, in place of its creationTimestamp, which counts
	// whole seconds only; the launcher sets it on every suspended Job so
	// that runs launched within one second keep their order.
	AnnotationQueuedAt = launch.AnnotationQueuedAt
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxRunning  = 20
	DefaultMaxPerRepo  = 5
	DefaultCallTimeout = 10 * time.Second
)

// Bounds of the wait before a pass is tried again after a failed patch.
const (
	retryBase = 20 * time.Millisecond
	retryMax  = 10 * time.Second
)

// passKey is the only item of the work queue: every event asks for one
// pass over all queued Jobs, and events that come while one is queued
// fold into it.
const passKey = "admit"

// ErrBadOptions is wrapped by Options.Validate's errors.
var ErrBadOptions = errors.New("queue: bad options")

// ErrRunning is returned by Run while another Run of the same Admitter
// goes on.
var ErrRunning = errors.New("queue: admitter already running")

// Options configure an Admitter. Namespace is required; every other zero
// field means its default.
type Options struct {
	// Namespace is where the runs' Jobs are.
	Namespace string
	// MaxRunning is how many runs may run at once in all.
	MaxRunning int
	// MaxPerRepo is how many runs of one repository may run at once.
	MaxPerRepo int
	// CallTimeout bounds each call to the API server.
	CallTimeout time.Duration
	// Logger receives a line per admission at Info; nil means
	// slog.Default().
	Logger *slog.Logger
	// Observe, when set, is called after each admission. It is the seam
	// for metrics; it must not block.
	Observe func(Admission)
	// Jobs, when set, is the informer of the runs' Jobs, made by
	// launch.NewJobInformer and shared with the watcher; the caller runs
	// it. Nil means each Run makes and runs one of its own.
	Jobs cache.SharedIndexInformer
	// Prepare, when set, is called just before a queued Job is started,
	// to make it ready to run after its wait (yaci renews its clone
	// token). An error holds the Job, and the rest of its repository so
	// that first come stays first served, until a later pass.
	Prepare func(ctx context.Context, name string) error
}

// Admission describes one Job the Admitter started.
type Admission struct {
	// Job is the Job's name, which is also the run's name.
	Job  string
	Repo string
	// Queued is when the Job joined the queue; Admitted is the time
	// recorded in its AnnotationAdmittedAt.
	Queued   time.Time
	Admitted time.Time
}

// Validate reports the first unusable field of o.
func (o Options) Validate() error {
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s: %w", o.Namespace, errs[0], ErrBadOptions)
	}
	if o.MaxRunning < 0 || o.MaxPerRepo < 0 || o.CallTimeout < 0 {
		return fmt.Errorf("limits and timeouts must not be negative: %w", ErrBadOptions)
	}

	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxRunning == 0 {
		o.MaxRunning = DefaultMaxRunning
	}
	if o.MaxPerRepo == 0 {
		o.MaxPerRepo = DefaultMaxPerRepo
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	return o
}

// Admitter starts queued runs' Jobs. Create it with New and start it with
// Run; Position may be called from any goroutine.
type Admitter struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger

	active atomic.Bool

	// mu guards the fields below, which belong to the current Run.
	mu sync.Mutex
	// lister reads the informer's Jobs; nil when no Run goes on.
	lister batchlisters.JobLister
	// last is the repository served last.
	last string
	// admitted holds the Jobs this Run admitted, by name, until the
	// informer shows their admission.
	admitted map[string]pending
}

// New returns an Admitter of the runs in o.Namespace, which it reads and
// changes through client. It fails when o does not validate.
func New(client kubernetes.Interface, o Options) (*Admitter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()

	return &Admitter{client: client, opts: o, log: o.Logger}, nil
}

// Run admits runs until ctx ends, and returns nil then, once the patch
// at hand, if any, has been answered. Run may be called again after it
// returned; each Run rebuilds its view from the cluster. It returns
// ErrRunning while another Run goes on.
func (a *Admitter) Run(ctx context.Context) error {
	if !a.active.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer a.active.Store(false)

	// The informer stops with ctx, which the calls deferred first wait
	// for, also when Run returns early.
	var ownJobs sync.WaitGroup
	defer ownJobs.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := a.opts.Jobs
	if jobs == nil {
		jobs = launch.NewJobInformer(a.client, a.opts.Namespace)
		ownJobs.Go(func() { jobs.RunWithContext(ctx) })
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryBase, retryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "yaci-admit"})
	defer queue.ShutDown()

	reg, err := jobs.AddEventHandler(handlers(queue))
	if err != nil {
		return fmt.Errorf("watch jobs in %s: %w", a.opts.Namespace, err)
	}
	// A shared informer outlives this Run, and may serve another.
	defer func() { _ = jobs.RemoveEventHandler(reg) }()
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return nil
	}
	if err := a.begin(batchlisters.NewJobLister(jobs.GetIndexer())); err != nil {
		return err
	}
	defer a.end()
	a.log.Info("admitting runs", "namespace", a.opts.Namespace,
		"max_running", a.opts.MaxRunning, "max_per_repo", a.opts.MaxPerRepo)

	queue.Add(passKey)
	stop := context.AfterFunc(ctx, queue.ShutDown)
	defer stop()
	for a.next(ctx, queue) {
	}
	a.log.Info("stopped admitting runs", "namespace", a.opts.Namespace)

	return nil
}

// handlers ask for a pass on every event that may let a Job start: a Job
// added, deleted, or changed in a way that matters to admission. The
// status updates of running Jobs, which are most events, do not.
func handlers(queue workqueue.TypedInterface[string]) cache.ResourceEventHandler {
	add := func(any) { queue.Add(passKey) }

	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		DeleteFunc: add,
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*batchv1.Job)
			n, ok2 := obj.(*batchv1.Job)
			if !ok1 || !ok2 || matters(o, n) {
				queue.Add(passKey)
			}
		},
	}
}

// matters reports whether a Job's change from old to job may change what
// admission does.
func matters(old, job *batchv1.Job) bool {
	return classify(job) == queued || classify(old) != classify(job) ||
		old.Annotations[AnnotationMaxParallel] != job.Annotations[AnnotationMaxParallel]
}

// begin makes the state of a new Run: the informer's Jobs, and the
// repository served last as the cluster records it.
func (a *Admitter) begin(lister batchlisters.JobLister) error {
	jobs, err := lister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list jobs in %s: %w", a.opts.Namespace, err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.lister = lister
	a.last = lastServed(jobs)
	a.admitted = make(map[string]pending)

	return nil
}

func (a *Admitter) end() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lister = nil
	a.admitted = nil
}

// next makes one pass from the queue; it returns false once the queue is
// shut down.
func (a *Admitter) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	key, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(key)

	again, err := a.pass(ctx)
	switch {
	case err != nil:
		a.log.Warn("could not admit runs; will retry", "namespace", a.opts.Namespace,
			"error", err)
		queue.AddRateLimited(key)
	case again:
		queue.AddRateLimited(key)
	default:
		queue.Forget(key)
	}

	return true
}

// pass admits what the limits allow, in order. It returns again=true when
// a Job it chose could not be admitted as it was seen (it changed or went
// away meanwhile), so that another pass decides with fresher data.
func (a *Admitter) pass(ctx context.Context) (again bool, err error) {
	if err := a.settleUnsure(ctx); err != nil {
		return false, err
	}
	s, err := a.state()
	if err != nil {
		return false, err
	}

	// A repository whose oldest chosen Job could not start has its later
	// ones wait for the next pass, so that first come stays first served.
	held := make(map[string]bool)
	for _, e := range admissions(s, a.opts.MaxRunning, a.opts.MaxPerRepo) {
		if ctx.Err() != nil {
			return false, nil
		}
		if held[e.repo] {
			continue
		}
		if a.opts.Prepare != nil {
			if err := a.opts.Prepare(ctx, e.name); err != nil {
				a.log.Warn("could not prepare run for its start; will retry", "run", e.name,
					"error", err)
				held[e.repo], again = true, true
				continue
			}
		}
		err := a.admit(ctx, e)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			a.log.Debug("run changed before its admission", "run", e.name, "error", err)
			held[e.repo], again = true, true
			continue
		}
		if err != nil {
			return false, err
		}
	}

	return again, nil
}

// state returns what admission knows now, after forgetting the Jobs this
// Run admitted that the informer shows by now.
func (a *Admitter) state() (state, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	jobs, err := a.lister.List(labels.Everything())
	if err != nil {
		return state{}, fmt.Errorf("list jobs in %s: %w", a.opts.Namespace, err)
	}
	byName := make(map[string]*batchv1.Job, len(jobs))
	for _, job := range jobs {
		byName[job.Name] = job
	}
	maps.DeleteFunc(a.admitted, func(name string, p pending) bool {
		return settled(p, byName[name])
	})

	return newState(jobs, a.admitted, a.last), nil
}

// admit starts the Job of e, if it is still the version e was made from,
// and records the admission at once.
func (a *Admitter) admit(ctx context.Context, e entry) error {
	now := time.Now().UTC()
	at := now.Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			// The precondition: a Job changed since the cache saw it,
			// admitted by an earlier Admitter or being deleted, is
			// refused with a conflict instead of started.
			"resourceVersion": e.rv,
			"annotations":     map[string]string{AnnotationAdmittedAt: at},
		},
		"spec": map[string]any{"suspend": false},
	})
	if err != nil {
		return fmt.Errorf("admit job %s: %w", e.name, err)
	}

	call, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.CallTimeout)
	defer cancel()
	job, err := a.client.BatchV1().Jobs(a.opts.Namespace).Patch(call, e.name,
		types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !refused(err) {
		// The patch may have been applied: count the Job as running
		// until a read says (see settleUnsure).
		a.remember(e.name, pending{at: at})
	}
	if err != nil {
		return fmt.Errorf("admit job %s: %w", e.name, err)
	}

	a.mu.Lock()
	a.admitted[e.name] = pending{uid: string(job.UID), at: at, sure: true}
	a.last = e.repo
	a.mu.Unlock()
	a.announce(ctx, e, now)

	return nil
}

// announce tells of one admission: a log line and Options.Observe.
func (a *Admitter) announce(ctx context.Context, e entry, at time.Time) {
	a.log.InfoContext(ctx, "admitted run", "run", e.name, "repo", e.repo,
		"waited", at.Sub(e.since).Round(time.Millisecond))
	if a.opts.Observe != nil {
		a.opts.Observe(Admission{Job: e.name, Repo: e.repo, Queued: e.since, Admitted: at})
	}
}

// refused reports whether err is the API server's answer that it did not
// apply a request, as opposed to a lost answer.
func refused(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsNotFound(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsMethodNotSupported(err)
}

func (a *Admitter) remember(name string, p pending) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitted[name] = p
}

// settleUnsure reads from the API server each Job whose admission patch
// went unanswered, and keeps counting it as running only if the patch was
// applied. It fails, and the pass waits, if a read fails: better a slot
// idle for a while than one too many runs.
func (a *Admitter) settleUnsure(ctx context.Context) error {
	a.mu.Lock()
	var unsure []string
	for name, p := range a.admitted {
		if !p.sure {
			unsure = append(unsure, name)
		}
	}
	a.mu.Unlock()
	slices.Sort(unsure)

	for _, name := range unsure {
		job, p, keep, err := a.read(ctx, name)
		if err != nil {
			return err
		}
		a.mu.Lock()
		if keep {
			a.admitted[name] = p
			a.last = repoOf(job)
		} else {
			delete(a.admitted, name)
		}
		a.mu.Unlock()
		if keep {
			at, _ := time.Parse(time.RFC3339Nano, p.at)
			a.announce(ctx, entryOf(job), at)
		}
	}

	return nil
}

// read returns what the API server says of the Job name whose admission
// is unsure: whether it was admitted by this Run (keep), and as what.
func (a *Admitter) read(ctx context.Context, name string) (job *batchv1.Job, p pending, keep bool, err error) {
	a.mu.Lock()
	want := a.admitted[name].at
	a.mu.Unlock()

	call, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.CallTimeout)
	defer cancel()
	job, err = a.client.BatchV1().Jobs(a.opts.Namespace).Get(call, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, pending{}, false, nil
	}
	if err != nil {
		return nil, pending{}, false, fmt.Errorf("read job %s after unanswered admission: %w",
			name, err)
	}
	if job.Annotations[AnnotationAdmittedAt] != want || ptr.Deref(job.Spec.Suspend, false) {
		return job, pending{}, false, nil
	}

	return job, pending{uid: string(job.UID), at: want, sure: true}, true, nil
}

// HasSynced reports whether a Run goes on and has read every Job once:
// what /readyz may ask of the leader.
func (a *Admitter) HasSynced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()

	return a.lister != nil
}

// Position returns how many Jobs are to be admitted before the queued
// Job name, and false if name is not queued or no Run goes on.
//
// It is an estimate from the current order: it takes the queued Jobs in
// the round-robin order admission would follow if every repository had a
// free slot whenever its turn came. It is exact while the per-repository
// limits do not hold anyone back and no Job joins or leaves the queue. A
// repository at its own limit lets its turn pass, which brings others
// forward; a Job that joins from a repository with nothing queued gets a
// turn in the round it joins, so it may go before Jobs counted ahead of
// it (by at most one per other repository and round); a Job deleted from
// the queue makes the estimate too high.
func (a *Admitter) Position(name string) (ahead int, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lister == nil {
		return 0, false
	}

	jobs, err := a.lister.List(labels.Everything())
	if err != nil {
		return 0, false
	}
	i := slices.IndexFunc(order(newState(jobs, a.admitted, a.last)), func(e entry) bool {
		return e.name == name
	})
	if i < 0 {
		return 0, false
	}

	return i, true
}

// Ahead returns how many of jobs would be admitted before the queued Job
// called name, in the order admission takes them, as Position does; any
// replica can ask it of a list of Jobs read from the API server. ok is
// false when name is not queued among jobs.
func Ahead(jobs []*batchv1.Job, name string) (ahead int, ok bool) {
	i := slices.IndexFunc(order(newState(jobs, nil, lastServed(jobs))), func(e entry) bool {
		return e.name == name
	})
	if i < 0 {
		return 0, false
	}

	return i, true
}

// Queued returns how many Jobs wait for admission, from the informer's
// cache; ok is false while the Admitter is not running.
func (a *Admitter) Queued() (n int, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lister == nil {
		return 0, false
	}

	jobs, err := a.lister.List(labels.Everything())
	if err != nil {
		return 0, false
	}
	for _, job := range jobs {
		// A Job this Admitter just started may still look suspended in
		// the cache; it no longer waits.
		_, started := a.admitted[job.Name]
		if classify(job) == queued && !started {
			n++
		}
	}

	return n, true
}
