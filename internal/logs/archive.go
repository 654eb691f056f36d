package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Defaults for the zero fields of ArchiverOptions.
const (
	DefaultCallTimeout = 10 * time.Second
	DefaultLogTimeout  = 2 * time.Minute
	DefaultLogAttempts = 3
)

// ArchiverOptions say how an Archiver reads logs. Zero fields mean their
// defaults.
type ArchiverOptions struct {
	// CallTimeout bounds a call that lists pods.
	CallTimeout time.Duration
	// LogTimeout bounds the copy of one container's log.
	LogTimeout time.Duration
	// LogAttempts is how often a log that fails to arrive for a reason
	// that may pass (a timeout, an unavailable API server) is asked for
	// before the run is archived with a note instead.
	LogAttempts int
	// Logger receives a line per archived run; nil means slog.Default().
	Logger *slog.Logger
}

func (o ArchiverOptions) withDefaults() ArchiverOptions {
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.LogTimeout <= 0 {
		o.LogTimeout = DefaultLogTimeout
	}
	if o.LogAttempts <= 0 {
		o.LogAttempts = DefaultLogAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	return o
}

// Archiver copies the logs and metadata of ended runs into a Store, so
// that their pages outlive their Jobs.
type Archiver struct {
	client kubernetes.Interface
	store  Store
	opts   ArchiverOptions
}

// NewArchiver returns an Archiver that reads pods' logs through client
// and keeps them in store.
func NewArchiver(client kubernetes.Interface, store Store, o ArchiverOptions) *Archiver {
	return &Archiver{client: client, store: store, opts: o.withDefaults()}
}

// Archive stores the log of every container (the clone step and the
// script) of every pod of job, then the run's metadata. pods are the
// Job's pods as the caller knows them; when pods is empty, Archive lists
// them itself.
//
// A log that cannot be read (the pod is gone, the container never
// started, the API server kept failing) is noted in the metadata rather
// than failing the call, so that reporting the run never waits on it.
// Archive fails only when job is not a yaci run, when the store cannot be
// written, or when ctx ends; the caller may retry, and may report the run
// regardless.
//
// Archiving again is harmless: a run archived as ended, from the same
// Job, is left as it is, and a log that could be read before but no
// longer can keeps its earlier copy.
func (a *Archiver) Archive(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) error {
	if err := checkName("run", job.Name); err != nil {
		return fmt.Errorf("archive job %s: %w", job.Name, err)
	}
	if len(pods) == 0 {
		var err error
		if pods, err = a.listPods(ctx, job); err != nil {
			return fmt.Errorf("archive job %s: list pods: %w", job.Name, err)
		}
	}
	run, err := runFromJob(job, pods)
	if err != nil {
		return fmt.Errorf("archive job %s: %w", job.Name, err)
	}
	log := a.opts.Logger.With("run", run.Name, "delivery", run.Delivery)

	old, err := a.store.GetRun(ctx, run.Name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("archive job %s: %w", job.Name, err)
	}
	if old != nil && old.JobUID != run.JobUID {
		old = nil
	}
	if old != nil && old.State.Final() && old.Archived != nil {
		log.DebugContext(ctx, "run already archived")
		return nil
	}

	for i := range run.Pods {
		for j := range run.Pods[i].Containers {
			err := a.archiveLog(ctx, log, run, &run.Pods[i], &run.Pods[i].Containers[j], old)
			if err != nil {
				return fmt.Errorf("archive job %s: %w", job.Name, err)
			}
		}
	}

	now := time.Now().UTC()
	run.Archived = &now
	if err := a.store.PutRun(ctx, run); err != nil {
		return fmt.Errorf("archive job %s: %w", job.Name, err)
	}
	log.InfoContext(ctx, "archived run logs", "state", run.State, "pods", len(run.Pods))

	return nil
}

func (a *Archiver) listPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()

	list, err := a.client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: podsSelector(job.Name),
	})
	if err != nil {
		return nil, err
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}

	return pods, nil
}

// sourceError marks an error that came from reading a pod's log, as
// opposed to writing the store.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceReader tags its reader's errors as sourceErrors.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}

	return n, err
}

// archiveLog copies one container's log into the store and records the
// outcome in ctr. Only a store failure or the end of ctx is an error.
func (a *Archiver) archiveLog(ctx context.Context, log *slog.Logger, run *Run, pod *Pod,
	ctr *Container, old *Run) error {
	if !ctr.Started() {
		ctr.Note = "no log: the container never started"
		if ctr.Reason != "" {
			ctr.Note += " (" + ctr.Reason + ")"
		}
		return nil
	}

	var err error
	for attempt := 1; attempt <= a.opts.LogAttempts; attempt++ {
		var info LogInfo
		info, err = a.copyLog(ctx, run, pod.Name, ctr.Name)
		if err == nil {
			ctr.Log = &info
			return nil
		}
		var src *sourceError
		if !errors.As(err, &src) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !mayPass(src.err) || attempt == a.opts.LogAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}

	if prev := oldLog(old, pod.Name, ctr.Name); prev != nil {
		ctr.Log = prev
		return nil
	}
	ctr.Note = "log unavailable: " + unavailableReason(err)
	log.WarnContext(ctx, "container log not archived", "pod", pod.Name,
		"container", ctr.Name, "err", err)

	return nil
}

// copyLog streams one container's log from the API server to the store.
func (a *Archiver) copyLog(ctx context.Context, run *Run, pod, container string) (LogInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.LogTimeout)
	defer cancel()

	req := a.client.CoreV1().Pods(run.Namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container,
	})
	rc, err := req.Stream(ctx)
	if err != nil {
		return LogInfo{}, &sourceError{err}
	}
	// Closing stops the transfer once the store has read its bound.
	defer rc.Close()

	info, err := a.store.PutLog(ctx, run.Name, pod, container, sourceReader{rc})
	var src *sourceError
	if err != nil && ctx.Err() != nil && !errors.As(err, &src) {
		// This log's own deadline ran out: the log's fault, not the
		// store's. The caller tells it from its own context ending.
		err = &sourceError{err}
	}

	return info, err
}

// mayPass reports whether reading a log again may work.
func mayPass(err error) bool {
	switch {
	case apierrors.IsNotFound(err), apierrors.IsBadRequest(err),
		apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		// A log that took LogTimeout once would take it again.
		return false
	}

	return true
}

// unavailableReason says in a few words why a log could not be read.
func unavailableReason(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "the pod no longer exists"
	case apierrors.IsBadRequest(err):
		return "the container has no log to give"
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return "yaci may not read pod logs"
	case errors.Is(err, context.DeadlineExceeded):
		return "reading it took too long"
	default:
		return "the API server did not deliver it"
	}
}

// oldLog returns the archived LogInfo of a container in an earlier
// archive of the same Job, or nil.
func oldLog(old *Run, pod, container string) *LogInfo {
	if old == nil {
		return nil
	}
	for _, p := range old.Pods {
		if p.Name != pod {
			continue
		}
		for _, c := range p.Containers {
			if c.Name == container && c.Log != nil {
				return c.Log
			}
		}
	}

	return nil
}
