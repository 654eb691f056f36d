package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// result is how handling one Job went: err means try again, after the
// wait given if any, else with backoff; without err, after asks to look
// at the Job again then.
type result struct {
	err   error
	after time.Duration
}

// sync brings one run's report up to date with its Job, found in the
// cache by key, which was queued at seen.
func (w *Watcher) sync(ctx context.Context, key string, seen time.Time) result {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return result{}
	}
	job, err := w.lister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return result{}
	}
	if err != nil {
		return result{err: fmt.Errorf("read job %s from cache: %w", key, err)}
	}
	if w.released(job.UID) {
		// The cache has not yet seen the patch that recorded the report.
		return result{}
	}
	if job.Annotations[launch.AnnotationReported] != "" {
		return w.finishRelease(ctx, job)
	}

	pods := w.cachedPodsOf(job)
	now := w.opts.Clock.Now()
	d := decide(job, pods, now, w.opts.StuckAfter)
	if d.act == report && w.needsPods(job) {
		if pods, err = w.listPods(ctx, job); err != nil {
			return result{err: err}
		}
		// The cache may lag behind the API server; what it says now
		// decides.
		d = decide(job, pods, now, w.opts.StuckAfter)
	}
	w.log.Debug("run looked at", "run", job.Name, "decision", d.String(),
		"pods", len(pods), "resource_version", job.ResourceVersion)

	switch d.act {
	case end:
		return w.end(ctx, job, d)
	case report:
		return w.report(ctx, job, pods, d, seen)
	}

	return result{after: d.recheck}
}

// released reports whether this process recorded the report of the Job.
func (w *Watcher) released(uid types.UID) bool {
	p := w.lookup(uid)
	return p != nil && p.released
}

// needsPods reports whether all the pods of job, which is to be
// reported, must be read whole: for the Archiver, which has not yet run,
// or to learn why the Job failed, which its trimmed pods in the cache may
// not yet show. A run that passed, ended on its pod's word (the cached
// pod then says how), or whose cancellation says why, needs none.
func (w *Watcher) needsPods(job *batchv1.Job) bool {
	if w.opts.Archiver != nil && !w.archived(job.UID) {
		return true
	}
	c, ended := terminal(job)

	return ended && !succeeded(c) && !cancelledFirst(job, c) &&
		c.Reason != batchv1.JobReasonDeadlineExceeded
}

// archived reports whether the Job's logs were archived, or given up on.
func (w *Watcher) archived(uid types.UID) bool {
	p := w.lookup(uid)
	return p != nil && p.archived
}

// cachedPodsOf returns job's cached pods: those not running, trimmed.
func (w *Watcher) cachedPodsOf(job *batchv1.Job) []*corev1.Pod {
	objs, err := w.pods.GetIndexer().ByIndex(jobIndex, job.Namespace+"/"+job.Name)
	if err != nil {
		return nil
	}
	var pods []*corev1.Pod
	for _, obj := range objs {
		if c, ok := obj.(*cachedPod); ok && metav1.IsControlledBy(c, job) {
			pods = append(pods, c.pod())
		}
	}

	return pods
}

// listPods reads job's pods from the API server, whole: they are read
// once, for decide and the Archiver, and then dropped.
func (w *Watcher) listPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	ctx, cancel := w.call(ctx)
	defer cancel()

	list, err := w.client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: batchv1.ControllerUidLabel + "=" + string(job.UID),
	})
	if err != nil {
		return nil, fmt.Errorf("list pods of job %s: %w", job.Name, err)
	}
	pods := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		pods = append(pods, &list.Items[i])
	}

	return pods, nil
}

// report archives the run's logs, posts its final status and records
// that on the Job, skipping what an earlier try already did.
func (w *Watcher) report(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod, d decision, seen time.Time) result {
	p := w.progressOf(job.UID)
	if p.seen.IsZero() {
		p.seen = seen
	}
	log := w.runLog(job)
	info, err := launch.RunFromJob(job)
	if err != nil {
		// Without a commit and a context there is nothing to post on;
		// holding the Job would keep it forever.
		log.Error("run's job has unusable metadata; releasing it unreported", "error", err)
		return w.release(ctx, job, p, gaveUp)
	}

	if !p.posted {
		if err := w.archive(ctx, log, job, pods, p); err != nil {
			return result{err: err}
		}
		err := w.post(ctx, info, d)
		switch {
		case err != nil && w.opts.Permanent(err):
			log.Error("GitHub refused the final status for good; giving up",
				"state", d.state, "error", err)
			return w.release(ctx, job, p, gaveUp)
		case err != nil:
			return result{err: err, after: w.opts.RetryAfter(err)}
		}
		p.posted = true
		log.Info("run reported", "state", d.state, "description", d.desc)
		if w.opts.Observe != nil {
			w.opts.Observe(Report{Run: job.Name, State: d.state, Seen: p.seen,
				Posted: w.opts.Clock.Now()})
		}
	}

	return w.release(ctx, job, p, string(d.state))
}

// release records value as the Job's report and notes that it did.
func (w *Watcher) release(ctx context.Context, job *batchv1.Job, p *progress, value string) result {
	res := w.record(ctx, job, value)
	p.released = res.err == nil

	return res
}

// runLog returns the logger for what happens to job's run, naming the
// run and, as far as its metadata says, its repository, commit and
// status context.
func (w *Watcher) runLog(job *batchv1.Job) *slog.Logger {
	log := w.log.With("run", job.Name)
	if info, err := launch.RunFromJob(job); err == nil {
		log = log.With("repo", info.Repo.FullName(), "sha", info.SHA,
			"context", info.StatusContext)
	}

	return log
}

// archive keeps the run's logs, unless that was done or there is no
// Archiver. After maxArchiveTries failures it lets the report go on
// without them.
func (w *Watcher) archive(ctx context.Context, log *slog.Logger, job *batchv1.Job, pods []*corev1.Pod, p *progress) error {
	if w.opts.Archiver == nil || p.archived {
		return nil
	}

	err := w.opts.Archiver.Archive(ctx, job, pods)
	if err == nil {
		p.archived = true
		log.Debug("run's logs archived", "pods", len(pods))
		return nil
	}
	p.archiveTries++
	if p.archiveTries < maxArchiveTries {
		return fmt.Errorf("archive logs of %s: %w", job.Name, err)
	}
	log.Error("could not archive the run's logs; reporting it without them",
		"tries", p.archiveTries, "error", err)
	p.archived = true

	return nil
}

// post sets the run's final status.
func (w *Watcher) post(ctx context.Context, info launch.RunInfo, d decision) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.StatusTimeout)
	defer cancel()

	s := trigger.Status{
		State:       d.state,
		Context:     info.StatusContext,
		Description: d.desc,
	}
	if w.opts.RunURL != nil {
		s.TargetURL = w.opts.RunURL(info.Name)
	}
	err := w.opts.Statuses.SetStatus(ctx, info.InstallationID, info.Repo.Owner, info.Repo.Name,
		info.SHA, s)
	if err != nil {
		return fmt.Errorf("post %s status of %s: %w", d.state, info.Name, err)
	}

	return nil
}

// finishRelease removes the finalizer of a Job whose report is recorded
// but which still has it; there is nothing else to do for such a Job.
func (w *Watcher) finishRelease(ctx context.Context, job *batchv1.Job) result {
	if !slices.Contains(job.Finalizers, launch.Finalizer) {
		return result{}
	}

	return w.record(ctx, job, job.Annotations[launch.AnnotationReported])
}

// record sets launch.AnnotationReported to value and removes
// launch.Finalizer, in one patch that applies only to the version of the
// Job it was computed from. On a conflict it reads the Job again and
// retries; a Job that is gone, or replaced by another of its name, needs
// nothing more.
func (w *Watcher) record(ctx context.Context, job *batchv1.Job, value string) result {
	jobs := w.client.BatchV1().Jobs(job.Namespace)
	cur := job
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cur == nil {
			ctx, cancel := w.call(ctx)
			defer cancel()
			fresh, err := jobs.Get(ctx, job.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if fresh.UID != job.UID {
				return nil
			}
			cur = fresh
		}

		patch, err := releasePatch(cur, value)
		if err != nil {
			return err
		}
		ctx, cancel := w.call(ctx)
		defer cancel()
		_, err = jobs.Patch(ctx, job.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if apierrors.IsConflict(err) {
			cur = nil
		}
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return result{err: fmt.Errorf("record report of job %s: %w", job.Name, err)}
	}
	w.log.Debug("run's report recorded", "run", job.Name, "reported", value)

	return result{}
}

// releasePatch returns a merge patch that records value and removes
// launch.Finalizer from job. Its resourceVersion makes the API server
// refuse it with a conflict if the Job changed since, as the finalizer
// list is replaced whole.
func releasePatch(job *batchv1.Job, value string) ([]byte, error) {
	finalizers := []string{}
	for _, f := range job.Finalizers {
		if f != launch.Finalizer {
			finalizers = append(finalizers, f)
		}
	}

	return json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": job.ResourceVersion,
		"finalizers":      finalizers,
		"annotations":     map[string]string{launch.AnnotationReported: value},
	}})
}

// end ends a run that cannot finish on its own: it notes why on the Job
// and deletes it. The deletion brings the Job back to the watcher, which
// then reports the run with that reason like any cancelled run, once.
func (w *Watcher) end(ctx context.Context, job *batchv1.Job, d decision) result {
	w.runLog(job).Info("ending a run that cannot finish", "state", d.state, "reason", d.desc)
	if err := w.cancel(ctx, job, AnnotationStuck, d.desc); err != nil {
		return result{err: err}
	}

	return result{}
}

// cancel sets annotation key to value on job and deletes it, in the
// foreground so that its pods stop before it goes. Only the Job of job's
// UID is deleted, never a newer one of the same name.
func (w *Watcher) cancel(ctx context.Context, job *batchv1.Job, key, value string) error {
	jobs := w.client.BatchV1().Jobs(job.Namespace)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{key: value},
	}})
	if err != nil {
		return err
	}

	callCtx, cancel := w.call(ctx)
	defer cancel()
	_, err = jobs.Patch(callCtx, job.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return ignoreNotFound(fmt.Errorf("annotate job %s: %w", job.Name, err))
	}

	callCtx, cancel2 := w.call(ctx)
	defer cancel2()
	err = jobs.Delete(callCtx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if err != nil {
		return ignoreNotFound(fmt.Errorf("delete job %s: %w", job.Name, err))
	}

	return nil
}

// ignoreNotFound returns nil for an error saying the object is gone, and
// err otherwise. A conflict on a UID precondition means the same: the Job
// it was meant for is gone, replaced by another of its name.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}

	return err
}
