// Package launch turns a run into a Kubernetes batch/v1 Job and a clone
// Secret owned by it, and creates them idempotently.
//
// A run's Job is created suspended, then its Secret (which holds the token
// the clone step uses), then the Job is started, so that its pod never
// starts without the token and the token is deleted with the Job. The
// Job's labels and annotations are the record of the run: RunFromJob reads
// them back.
package launch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/trigger"
)

// ErrJobDeleting is returned by Launch when the run's Job exists but is
// being deleted, so the run can be neither counted as launched nor created
// again yet. It is worth retrying once the deletion has finished.
var ErrJobDeleting = errors.New("launch: job is being deleted")

// errNoUID means the API server answered a create without a UID, which a
// real one never does; without it the Secret could not name its owner.
var errNoUID = errors.New("created job has no uid")

// Launcher creates runs' Jobs and Secrets through the API server.
type Launcher struct {
	client kubernetes.Interface
	opts   Options
}

// New returns a Launcher that creates Jobs with client as o says. It fails
// when o does not validate.
func New(client kubernetes.Interface, o Options) (*Launcher, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}

	return &Launcher{client: client, opts: o.withDefaults()}, nil
}

// Launch creates run's Job and its clone Secret holding tok, and starts
// the Job unless the options say to leave it suspended. It is idempotent:
// when the Job already exists (another delivery or replica made it), Launch
// leaves it and its Secret alone and returns created=false. When any step
// after the Job's creation fails, it deletes the Job again so no half-made
// run is left behind, and returns the error.
//
// The Secret records when tok expires (a zero ExpiresAt as NeverExpires),
// so RenewToken renews the token by the time it has left, which for a
// token handed out more than once is less than the Secret's age suggests.
func (l *Launcher) Launch(ctx context.Context, run trigger.Run,
	tok trigger.Token) (name string, created bool, err error) {
	job, err := BuildJob(run, l.opts)
	if err != nil {
		return "", false, err
	}
	name = job.Name
	log := l.opts.Logger.With("run", name, "delivery", run.Event.Delivery,
		"repo", run.Event.Repo.FullName(), "job", run.Job.Name)

	if l.opts.Suspend {
		job.Annotations[AnnotationQueuedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	made, err := l.createJob(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		log.DebugContext(ctx, "run already launched")
		return name, false, l.checkExisting(ctx, name)
	}
	if err != nil {
		return name, false, fmt.Errorf("create job %s: %w", name, err)
	}

	secret := BuildSecret(run, tok, made, l.opts)
	if err := l.ensureSecret(ctx, secret, made.UID); err != nil {
		err = fmt.Errorf("create secret %s: %w", secret.Name, err)
		return name, false, l.abandon(ctx, made, err)
	}

	if !l.opts.Suspend {
		if err := l.unsuspend(ctx, name); err != nil {
			return name, false, l.abandon(ctx, made, fmt.Errorf("start job %s: %w", name, err))
		}
	}

	log.InfoContext(ctx, "launched run", "suspended", l.opts.Suspend,
		"sha", run.Event.SHA, "event", run.Event.Kind)

	return name, true, nil
}

// call returns a context for one call to the API server.
func (l *Launcher) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.opts.CallTimeout)
}

// createJob creates job, which is always suspended at this point.
func (l *Launcher) createJob(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	ctx, cancel := l.call(ctx)
	defer cancel()

	made, err := l.client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	if made.UID == "" {
		return nil, errNoUID
	}

	return made, nil
}

// checkExisting decides what an existing Job of the run's name means. One
// that is being deleted (a failed launch cleaning up, or a finished run
// whose TTL ran out) is no launched run, so it is reported as
// ErrJobDeleting; any other is the run, launched by someone else.
func (l *Launcher) checkExisting(ctx context.Context, name string) error {
	ctx, cancel := l.call(ctx)
	defer cancel()

	job, err := l.client.BatchV1().Jobs(l.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("job %s: %w", name, ErrJobDeleting)
	}
	if err != nil {
		// It existed a moment ago; trust that over a failed read.
		return nil
	}
	if job.DeletionTimestamp != nil {
		return fmt.Errorf("job %s: %w", name, ErrJobDeleting)
	}

	return nil
}

// ensureSecret creates secret. A Secret of the same name that the Job does
// not own is left over from an earlier Job of the same name (deleted, but
// not yet garbage-collected); the collector would delete it under the new
// Job, so it is replaced.
func (l *Launcher) ensureSecret(ctx context.Context, secret *corev1.Secret, owner types.UID) error {
	secrets := l.client.CoreV1().Secrets(secret.Namespace)
	create := func() error {
		ctx, cancel := l.call(ctx)
		defer cancel()
		_, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
		return err
	}

	err := create()
	if !apierrors.IsAlreadyExists(err) {
		return err
	}

	old, err := l.getSecret(ctx, secret)
	if err != nil {
		return fmt.Errorf("read existing secret: %w", err)
	}
	if old != nil {
		if ownedBy(old, owner) {
			return nil
		}
		if err := l.deleteSecret(ctx, old); err != nil {
			return fmt.Errorf("delete stale secret: %w", err)
		}
	}

	return create()
}

// getSecret returns the Secret of secret's name, or nil if there is none.
func (l *Launcher) getSecret(ctx context.Context, secret *corev1.Secret) (*corev1.Secret, error) {
	ctx, cancel := l.call(ctx)
	defer cancel()

	secrets := l.client.CoreV1().Secrets(secret.Namespace)
	old, err := secrets.Get(ctx, secret.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}

	return old, err
}

// deleteSecret deletes old, unless it has been replaced meanwhile.
func (l *Launcher) deleteSecret(ctx context.Context, old *corev1.Secret) error {
	ctx, cancel := l.call(ctx)
	defer cancel()

	err := l.client.CoreV1().Secrets(old.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &old.UID},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}

	return err
}

func ownedBy(obj metav1.Object, uid types.UID) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == uid {
			return true
		}
	}

	return false
}

// unsuspend starts the Job, retrying what the API server may answer
// differently a moment later.
func (l *Launcher) unsuspend(ctx context.Context, name string) error {
	patch := []byte(`{"spec":{"suspend":false}}`)
	jobs := l.client.BatchV1().Jobs(l.opts.Namespace)

	return retry.OnError(retry.DefaultBackoff, transient, func() error {
		ctx, cancel := l.call(ctx)
		defer cancel()
		_, err := jobs.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// transient reports whether an API error may go away on its own.
func transient(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)
}

// abandon deletes a Job whose launch failed with cause, and with it (in
// the foreground, so the Job is gone only once they are) its Secret and
// any pod. It uses its own deadline, as ctx may be what failed. The UID
// precondition keeps it from deleting a Job someone made anew meanwhile.
func (l *Launcher) abandon(ctx context.Context, job *batchv1.Job, cause error) error {
	ctx, cancel := l.call(context.WithoutCancel(ctx))
	defer cancel()

	l.release(ctx, job)
	err := l.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		err = fmt.Errorf("delete job %s after failed launch: %w", job.Name, err)
		return errors.Join(cause, err)
	}

	return cause
}

// release marks an abandoned Job as needing no final status and removes
// its Finalizer, so that deleting it does not wait for the watcher, which
// would report the run as cancelled over the launch failure its caller
// reports. The patch applies only to the Job launch created, while
// Finalizer is still its only finalizer. If it fails, the Job is deleted
// all the same and the watcher reports it as cancelled: a worse
// description, but a final status.
func (l *Launcher) release(ctx context.Context, job *batchv1.Job) {
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": job.UID},
		{"op": "test", "path": "/metadata/finalizers", "value": []string{Finalizer}},
		{"op": "remove", "path": "/metadata/finalizers"},
		{"op": "add", "path": "/metadata/annotations/" + jsonPointerEscape(AnnotationReported),
			"value": NotStarted},
	})
	if err == nil {
		_, err = l.client.BatchV1().Jobs(job.Namespace).Patch(ctx, job.Name,
			types.JSONPatchType, patch, metav1.PatchOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		l.opts.Logger.WarnContext(ctx, "could not release abandoned job",
			"run", job.Name, "error", err)
	}
}

// jsonPointerEscape escapes s as one reference token of a JSON pointer.
func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
