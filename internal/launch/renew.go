package launch

import (
	"context"
	"fmt"
	"math"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/trigger"
)

// AnnotationTokenRenewed holds when RenewToken last put a fresh token in
// a run's clone Secret, in RFC 3339; absent until the first renewal.
const AnnotationTokenRenewed = "yaci.dev/token-renewed-at"

// AnnotationTokenExpires holds when the token in a clone Secret expires,
// in RFC 3339, or NeverExpires for a configured token, which does not.
// A Secret without it was made by a yaci that did not record expiries.
const AnnotationTokenExpires = "yaci.dev/token-expires-at"

// NeverExpires is the AnnotationTokenExpires of a token that does not
// expire on its own.
const NeverExpires = "never"

// appTokenLife is how long GitHub App installation tokens live. A Secret
// that does not say when its token expires is taken to hold one minted
// when the Secret was made or last renewed.
const appTokenLife = time.Hour

// RenewToken gives the queued run called name a fresh clone token when
// the one in its Secret has less than minLeft to live, or when the Secret
// is missing. A run may wait in the queue longer than a GitHub App
// installation token lives (an hour), and a token may have been handed to
// other runs before, so the token its Secret got at launch could expire
// before the clone step runs; the admitter calls this just before it
// starts the run. mint makes the new token from the run's identity, as
// read back from its Job, and should return one with minLeft to live
// where it can.
func (l *Launcher) RenewToken(ctx context.Context, name string, minLeft time.Duration,
	mint func(context.Context, RunInfo) (trigger.Token, error)) error {
	secrets := l.client.CoreV1().Secrets(l.opts.Namespace)
	call, cancel := l.call(ctx)
	old, err := secrets.Get(call, name+"-clone", metav1.GetOptions{})
	cancel()
	switch {
	case apierrors.IsNotFound(err):
		old = nil // an earlier renewal may have stopped half-way
	case err != nil:
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	case tokenLeft(old, time.Now()) >= minLeft:
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
	tok, err := mint(ctx, info)
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
	if _, err := secrets.Create(call, renewedSecret(job, tok), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("renew clone token of %s: %w", name, err)
	}

	return nil
}

// tokenLeft is how long the token in secret has to live at now. Without
// a readable AnnotationTokenExpires it goes by the Secret's age, as
// yaci did before it recorded expiries.
func tokenLeft(secret *corev1.Secret, now time.Time) time.Duration {
	v, ok := secret.Annotations[AnnotationTokenExpires]
	if ok && v == NeverExpires {
		return time.Duration(math.MaxInt64)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.Sub(now)
	}

	since := secret.CreationTimestamp.Time
	if t, err := time.Parse(time.RFC3339, secret.Annotations[AnnotationTokenRenewed]); err == nil {
		since = t
	}

	return appTokenLife - now.Sub(since)
}

// tokenAnnotations are the annotations that say when tok expires.
func tokenAnnotations(tok trigger.Token) map[string]string {
	expires := NeverExpires
	if !tok.ExpiresAt.IsZero() {
		// Fractions of a second are cut off: the recorded expiry is a
		// little early, never late.
		expires = tok.ExpiresAt.UTC().Format(time.RFC3339)
	}

	return map[string]string{AnnotationTokenExpires: expires}
}

// renewedSecret is job's clone Secret holding tok, owned by job like the
// one BuildSecret makes at launch.
func renewedSecret(job *batchv1.Job, tok trigger.Token) *corev1.Secret {
	annotations := tokenAnnotations(tok)
	annotations[AnnotationTokenRenewed] = time.Now().UTC().Format(time.RFC3339)

	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        job.Name + "-clone",
			Namespace:   job.Namespace,
			Labels:      job.Labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr.To(false), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Immutable: ptr.To(true),
		Type:      corev1.SecretTypeOpaque,
		Data:      map[string][]byte{SecretTokenKey: []byte(tok.Value)},
	}
}
