// Package watch sees yaci's runs end and tells GitHub: once per run, soon
// after its Job ends, also across restarts of yaci.
//
// A Watcher keeps shared informers on the runs' Jobs in one namespace and
// on their pods that are not running: a pending pod may be stuck, and a
// pod that ended ends its run, a second before the Job controller says
// so. Running pods, the bulk of a busy cluster, are not cached, and the
// cached ones are trimmed to the few fields the watcher reads; a run's
// whole pods are read from the API server once, when it is reported. It
// works through a rate-limited queue of Jobs. For each Job it decides
// (see decide) whether the run goes on, has ended, or cannot end on its
// own (an image that cannot be pulled, a pod no node can take), in which
// case it ends the run by deleting its Job.
//
// The Job is the record of whether a run was reported. launch.BuildJob
// puts launch.Finalizer on every Job, so that a Job deleted by anyone
// stays until the watcher has posted its final status; then one patch
// sets launch.AnnotationReported and removes the finalizer. A restarted
// Watcher therefore needs no state of its own: the first list of its
// informers holds every Job that ended, or was deleted, unreported.
//
// What is left is a window between posting a status and that patch: if
// yaci dies in it (or the patch keeps failing until it stops), the next
// Watcher posts the same final status again. That is accepted rather
// than closed. The second post is the same state, description and link
// on the same context, and GitHub shows only the latest status of a
// context, so nobody sees the difference; closing the window would mean
// recording an intent on the Job before posting and, after a crash,
// reading the commit's statuses back from GitHub to learn whether the
// post happened, an extra call and a second write on every run to save
// a harmless duplicate after a rare crash. A Watcher that is stopped by
// its context is no crash: it finishes the run at hand, post and patch.
// (TestCrashAfterPost dies in the window on purpose and shows the one
// repeat.)
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// Annotations the watcher and Supersede put on a run's Job. Like launch's,
// they are part of the record: a restarted yaci reads them back.
const (
	// AnnotationSupersededBy holds the commit whose run superseded this
	// one, or SupersededByClose.
	AnnotationSupersededBy = "yaci.dev/superseded-by"
	// AnnotationStuck holds why the watcher ended a run that could not
	// start, which becomes its status description.
	AnnotationStuck = "yaci.dev/stuck"
)

// SupersededByClose is the AnnotationSupersededBy value of the runs of a
// closed pull request.
const SupersededByClose = "closed"

// gaveUp is the launch.AnnotationReported value of a run whose status
// GitHub refused for good (see Options.Permanent), or whose Job's metadata
// no longer says where to post it.
const gaveUp = "gave-up"

// Defaults for the zero fields of Options.
const (
	DefaultStuckAfter    = 5 * time.Minute
	DefaultWorkers       = 4
	DefaultCallTimeout   = 10 * time.Second
	DefaultStatusTimeout = time.Minute
	DefaultRequeueBase   = time.Second
	DefaultRequeueMax    = 5 * time.Minute
)

// maxArchiveTries is how often archiving a run's logs is tried before the
// run is reported without them: a commit left pending is worse than a
// missing log.
const maxArchiveTries = 5

// jobIndex names the pod index by owning Job ("namespace/name").
const jobIndex = "job"

// notRunning is the field selector of the pods the watcher caches. A pod
// enters it when it ends, which the watch delivers as the pod's addition.
const notRunning = "status.phase!=" + string(corev1.PodRunning)

// ErrBadOptions is wrapped by Options.Validate's errors.
var ErrBadOptions = errors.New("watch: bad options")

// ErrAlreadyRun is returned by a second call of Run on one Watcher.
var ErrAlreadyRun = errors.New("watch: watcher already run")

// StatusWriter posts commit statuses. It has the shape of
// trigger.StatusWriter, so one adapter of the GitHub client serves both.
type StatusWriter interface {
	SetStatus(ctx context.Context, inst int64, owner, repo, sha string, s trigger.Status) error
}

// Archiver keeps a run's logs. The watcher calls it once a run has ended
// and before it posts the final status, so logs are saved before the
// Job's TTL removes the pods. job comes from the watcher's cache, trimmed
// (see trim): all but its pod template and selector. pods come whole from
// the API server. They must not be changed. An
// Archive that keeps failing is given up on after a few tries, and the
// run is reported without its logs.
type Archiver interface {
	Archive(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) error
}

// Report describes one final status the watcher posted.
type Report struct {
	// Run is the run's name.
	Run   string
	State trigger.State
	// Seen is when the watcher was told of the change that ended the
	// run: the informer's event that put the Job in the queue.
	Seen time.Time
	// Posted is when GitHub answered that it took the status.
	Posted time.Time
}

// Options configure a Watcher. Namespace and Statuses are required; every
// other zero field means its default.
type Options struct {
	// Namespace is where the runs' Jobs are.
	Namespace string
	// Statuses posts the final statuses.
	Statuses StatusWriter
	// RunURL returns the address of a run's page from its name, the
	// final status's link; nil means no link.
	RunURL func(name string) string
	// Archiver, when set, keeps each run's logs before it is reported.
	Archiver Archiver
	// StuckAfter is how long a run's pod may wait for a node before the
	// run is ended as an error.
	StuckAfter time.Duration
	// Workers is how many runs are handled at once.
	Workers int
	// Logger receives a line per state change of a run at Info and per
	// object at Debug; nil means slog.Default().
	Logger *slog.Logger
	// Clock tells the time; tests set a fake one.
	Clock clock.WithTicker
	// Permanent, when set, reports whether a failed status post can never
	// succeed (github.IsPermanent): the run is then given up on instead of
	// tried again. Nil means every failure is tried again.
	Permanent func(error) bool
	// RetryAfter, when set, returns how long GitHub asked to wait after a
	// failed post (github.RetryAfter); the run is tried again no sooner.
	RetryAfter func(error) time.Duration
	// Observe, when set, is called after each final status GitHub
	// accepted, from any worker. It is the seam for metrics; it must not
	// block.
	Observe func(Report)
	// CallTimeout bounds each call to the API server.
	CallTimeout time.Duration
	// StatusTimeout bounds one status post, its own retries included.
	StatusTimeout time.Duration
	// Jobs, when set, is the informer of the runs' Jobs, made by
	// launch.NewJobInformer and shared with the admitter; the caller runs
	// it. Nil means the watcher makes and runs one of its own.
	Jobs cache.SharedIndexInformer
	// RequeueBase and RequeueMax are the first and the longest wait
	// before a run whose report failed is tried again; the wait doubles
	// with each failure.
	RequeueBase time.Duration
	RequeueMax  time.Duration
}

// Validate reports the first unusable field of o.
func (o Options) Validate() error {
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s: %w", o.Namespace, errs[0], ErrBadOptions)
	}
	if o.Statuses == nil {
		return fmt.Errorf("no status writer: %w", ErrBadOptions)
	}
	if o.StuckAfter < 0 || o.Workers < 0 || o.CallTimeout < 0 || o.StatusTimeout < 0 ||
		o.RequeueBase < 0 || o.RequeueMax < 0 {
		return fmt.Errorf("durations and workers must not be negative: %w", ErrBadOptions)
	}
	d := o.withDefaults()
	if d.RequeueBase > d.RequeueMax {
		return fmt.Errorf("requeue base %s exceeds max %s: %w",
			d.RequeueBase, d.RequeueMax, ErrBadOptions)
	}

	return nil
}

func (o Options) withDefaults() Options {
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&o.StuckAfter, DefaultStuckAfter)
	set(&o.CallTimeout, DefaultCallTimeout)
	set(&o.StatusTimeout, DefaultStatusTimeout)
	set(&o.RequeueBase, DefaultRequeueBase)
	set(&o.RequeueMax, DefaultRequeueMax)
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Permanent == nil {
		o.Permanent = func(error) bool { return false }
	}
	if o.RetryAfter == nil {
		o.RetryAfter = func(error) time.Duration { return 0 }
	}

	return o
}

// Watcher reports the end of runs. Create it with New and start it with
// Run; Supersede may be called before, during or without Run.
type Watcher struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger

	// ownJobs is set when the watcher made jobs, and runs it.
	ownJobs      bool
	jobs         cache.SharedIndexInformer
	lister       batchlisters.JobLister
	podInformers informers.SharedInformerFactory
	// pods holds the runs' pods that are not running, trimmed.
	pods  cache.SharedIndexInformer
	queue workqueue.TypedRateLimitingInterface[string]

	started atomic.Bool
	synced  atomic.Bool

	// mu guards the maps runs and queued, not what runs points to.
	mu sync.Mutex
	// queued is when each Job in the queue was first put there since it
	// was last taken out, for Report.Seen.
	queued map[string]time.Time
	// runs is what this process has done for each Job not yet gone,
	// by UID: it keeps a run from being archived or posted twice when
	// a step after it failed, or when the cache has not yet seen the
	// patch that released the Job.
	runs map[types.UID]*progress
}

// progress is what the watcher has done about one Job. Only the worker
// handling the Job touches it, and the queue hands a Job to one worker
// at a time.
type progress struct {
	// seen is when the watcher first learnt that the run was over.
	seen         time.Time
	archiveTries int
	archived     bool
	posted       bool
	released     bool
}

// New returns a Watcher of the runs in o.Namespace, which it reads and
// changes through client. It fails when o does not validate.
func New(client kubernetes.Interface, o Options) (*Watcher, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()

	jobs, ownJobs := o.Jobs, o.Jobs == nil
	if ownJobs {
		jobs = launch.NewJobInformer(client, o.Namespace)
	}
	// Only a pending pod can be stuck and only an ended one ends a run;
	// nothing of a running pod matters. So the cache leaves running pods
	// out, which on a busy cluster are most of them.
	pods := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(o.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = launch.Selector
			lo.FieldSelector = notRunning
		}),
		informers.WithTransform(trim),
	)
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.RequeueBase, o.RequeueMax),
		// Retries of all runs together stay polite when GitHub is down.
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(10, 100)},
	)
	w := &Watcher{
		client:       client,
		opts:         o,
		log:          o.Logger,
		ownJobs:      ownJobs,
		jobs:         jobs,
		lister:       batchlisters.NewJobLister(jobs.GetIndexer()),
		podInformers: pods,
		pods:         pods.Core().V1().Pods().Informer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "yaci-watch", Clock: o.Clock}),
		runs:   make(map[types.UID]*progress),
		queued: make(map[string]time.Time),
	}
	if err := w.pods.AddIndexers(cache.Indexers{jobIndex: podJobKeys}); err != nil {
		return nil, fmt.Errorf("index pods by job: %w", err)
	}
	if err := w.addHandlers(); err != nil {
		return nil, err
	}

	return w, nil
}

func (w *Watcher) addHandlers() error {
	_, err := w.jobs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.enqueueJob,
		UpdateFunc: func(_, obj any) { w.enqueueJob(obj) },
		DeleteFunc: w.jobGone,
	})
	if err != nil {
		return fmt.Errorf("watch jobs: %w", err)
	}

	enqueuePod := func(obj any) {
		for _, key := range podJobKeysOf(obj) {
			w.enqueue(key)
		}
	}
	_, err = w.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueuePod,
		UpdateFunc: func(_, obj any) { enqueuePod(obj) },
		DeleteFunc: enqueuePod,
	})
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}

	return nil
}

func (w *Watcher) enqueueJob(obj any) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		w.log.Debug("job without a key", "error", err)
		return
	}
	w.enqueue(key)
}

// enqueue puts the Job of key in the queue, noting when.
func (w *Watcher) enqueue(key string) {
	w.mu.Lock()
	if _, ok := w.queued[key]; !ok {
		w.queued[key] = w.opts.Clock.Now()
	}
	w.mu.Unlock()

	w.queue.Add(key)
}

// dequeued returns when the Job of key was put in the queue, and forgets
// it; a Job requeued by the watcher itself was put there now.
func (w *Watcher) dequeued(key string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()

	at, ok := w.queued[key]
	delete(w.queued, key)
	if !ok {
		return w.opts.Clock.Now()
	}

	return at
}

// jobGone forgets what was done for a Job that no longer exists. A Job
// gone without a report had its finalizer removed by someone else; there
// is no record left to report from.
func (w *Watcher) jobGone(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}

	w.mu.Lock()
	p := w.runs[job.UID]
	delete(w.runs, job.UID)
	w.mu.Unlock()

	if job.Annotations[launch.AnnotationReported] == "" && (p == nil || !p.posted) {
		w.log.Warn("run's job is gone without a final status; its finalizer was removed",
			"run", job.Name)
	}
}

// podJobKeys indexes a pod by the Job that owns it.
func podJobKeys(obj any) ([]string, error) {
	return podJobKeysOf(obj), nil
}

func podJobKeysOf(obj any) []string {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(metav1.Object)
	if !ok {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "Job" {
		return nil
	}

	return []string{pod.GetNamespace() + "/" + ref.Name}
}

// HasSynced reports whether the watcher has read every run's Job and pod
// once and handles them: what /readyz asks of it.
func (w *Watcher) HasSynced() bool {
	return w.synced.Load()
}

// Run watches the runs until ctx ends, and returns nil then, once each
// worker has finished the run it was handling (a report started is
// posted and recorded). It may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	// The informers stop with ctx; the calls deferred first wait for
	// them, also when Run returns before ctx ends.
	var ownJobs sync.WaitGroup
	defer ownJobs.Wait()
	defer w.podInformers.Shutdown()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer w.queue.ShutDown()

	w.podInformers.Start(ctx.Done())
	if w.ownJobs {
		ownJobs.Go(func() { w.jobs.RunWithContext(ctx) })
	}
	if !cache.WaitForCacheSync(ctx.Done(), w.jobs.HasSynced, w.pods.HasSynced) {
		return nil
	}
	w.synced.Store(true)
	defer w.synced.Store(false)
	w.log.Info("watching runs", "namespace", w.opts.Namespace, "workers", w.opts.Workers)

	var workers sync.WaitGroup
	for range w.opts.Workers {
		workers.Go(func() {
			for w.next(ctx) {
			}
		})
	}

	<-ctx.Done()
	w.queue.ShutDown()
	workers.Wait()
	w.log.Info("stopped watching runs", "namespace", w.opts.Namespace)

	return nil
}

// next handles one Job from the queue; it returns false once the queue
// is shut down. The Job's work runs on a context that ctx's end does not
// cancel, each call with its own deadline, so that stopping never cuts a
// report between its post and its record.
func (w *Watcher) next(ctx context.Context) bool {
	key, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(key)

	res := w.sync(context.WithoutCancel(ctx), key, w.dequeued(key))
	switch {
	case res.err != nil && res.after > 0:
		w.log.Warn("could not handle run; will retry", "job", key, "retry_in", res.after,
			"error", res.err)
		w.queue.AddAfter(key, res.after)
	case res.err != nil:
		w.log.Warn("could not handle run; will retry", "job", key, "error", res.err)
		w.queue.AddRateLimited(key)
	default:
		w.queue.Forget(key)
		if res.after > 0 {
			w.queue.AddAfter(key, res.after)
		}
	}

	return true
}

// lookup returns what was done for the Job with uid, or nil.
func (w *Watcher) lookup(uid types.UID) *progress {
	w.mu.Lock()
	defer w.mu.Unlock()

	return w.runs[uid]
}

// progressOf returns what was done for the Job with uid, making a record
// if there is none.
func (w *Watcher) progressOf(uid types.UID) *progress {
	w.mu.Lock()
	defer w.mu.Unlock()

	p := w.runs[uid]
	if p == nil {
		p = &progress{}
		w.runs[uid] = p
	}

	return p
}

// call returns a context for one call to the API server.
func (w *Watcher) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.opts.CallTimeout)
}
