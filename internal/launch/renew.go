package launch

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// AnnotationTokenRenewed holds when RenewToken last put a fresh token in
// a run's clone Secret, in RFC 3339; absent until the first renewal.
const AnnotationTokenRenewed = "yaci.dev/token-renewed-at"

// RenewToken gives the queued run called name a fresh clone token when
// the one in its Secret is older than maxAge, or when the Secret is
// missing. A run may wait in the queue longer than a GitHub App
// installation token lives (an hour), so the token minted at launch could
// expire before the clone step runs; the admitter calls this just before
// it starts the run. mint makes the new token from the run's identity, as
// read back from its Job.
func (l *Launcher) RenewToken(ctx context.Context, name string, maxAge time.Duration,
	mint func(context.Context, RunInfo) (string, error)) error {
	secrets := l.client.CoreV1().Secrets(l.opts.Namespace)
	call, cancel := l.call(ctx)
	old, err := secrets.Get(call, name+"-clone", metav1.GetOptions{})
	cancel()
	switch {
	case apierrors.IsNotFound(err):
		old = nil // an earlier renewal may have stopped half-way
	case err != nil:
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	case tokenAge(old) < maxAge:
		return nil
	}

	call, cancel = l.call(ctx)
	job, err := l.client.BatchV1().Jobs(l.opts.Namespace).Get(call, name, metav1.GetOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	}
	info, err := RunFromJob(job)
	if err != nil {
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	}
	token, err := mint(ctx, info)
	if err != nil {
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	}

	call, cancel = l.call(ctx)
	defer cancel()
	// The Secret is immutable, so the new token goes into a new Secret
	// of the same name and owner. The run is still suspended: no pod can
	// miss the Secret in between. The UID precondition turns a Secret
	// replaced meanwhile by another renewal into a conflict, which the
	// admitter retries, rather than a lost token.
	if old != nil {
		err := secrets.Delete(call, old.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &old.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("renew clone token of %s: delete old secret: %w", name, err)
		}
	}
	if _, err := secrets.Create(call, renewedSecret(job, token), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	}

	return nil
}

// tokenAge is how long ago the token in secret was minted.
func tokenAge(secret *corev1.Secret) time.Duration {
	since := secret.CreationTimestamp.Time
	if t, err := time.Parse(time.RFC3339, secret.Annotations[AnnotationTokenRenewed]); err == nil {
		since = t
	}

	return time.Since(since)
}

// renewedSecret is job's clone Secret holding token, owned by job like the
// one BuildSecret makes at launch.
func renewedSecret(job *batchv1.Job, token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      job.Name + "-clone",
			Namespace: job.Namespace,
			Labels:    job.Labels,
			Annotations: map[string]string{
				AnnotationTokenRenewed: time.Now().UTC().Format(time.RFC3339),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr.To(false), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Immutable: ptr.To(true),
		Type:      corev1.SecretTypeOpaque,
		Data:      map[string][]byte{SecretTokenKey: []byte(token)},
	}
}
