package launch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

func TestRenewToken(t *testing.T) {
	client := newClient(t)
	o := testOptions
	o.Suspend = true
	l := newLauncher(t, client, o)
	run := pushRun()
	name, _, err := l.Launch(t.Context(), run,
		trigger.Token{Value: cloneToken, ExpiresAt: time.Now().Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}

	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var minted []launch.RunInfo
	mint := func(_ context.Context, info launch.RunInfo) (trigger.Token, error) {
		minted = append(minted, info)
		return trigger.Token{Value: "fresh-token-" + string(rune('0'+len(minted))), ExpiresAt: expires}, nil
	}
	secretToken := func() (string, map[string]string) {
		s, err := client.CoreV1().Secrets(o.Namespace).Get(t.Context(), name+"-clone", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[launch.SecretTokenKey]), s.Annotations
	}

	// The launch token has ten minutes left, less than the half hour
	// asked for: it is renewed.
	if err := l.RenewToken(t.Context(), name, 30*time.Minute, mint); err != nil {
		t.Fatal(err)
	}
	tok, annotations := secretToken()
	if tok != "fresh-token-1" || annotations[launch.AnnotationTokenRenewed] == "" ||
		annotations[launch.AnnotationTokenExpires] != expires.Format(time.RFC3339) {
		t.Fatalf("after renewal: token %q, annotations %v", tok, annotations)
	}
	if len(minted) != 1 || minted[0].Repo.FullName() != run.Event.Repo.FullName() ||
		minted[0].InstallationID != run.Event.InstallationID {
		t.Errorf("mint got %+v, want the run's repository and installation", minted)
	}

	// An hour left, more than the half hour asked for: left alone.
	if err := l.RenewToken(t.Context(), name, 30*time.Minute, mint); err != nil {
		t.Fatal(err)
	}
	if tok, _ := secretToken(); tok != "fresh-token-1" || len(minted) != 1 {
		t.Errorf("a fresh token was renewed again: %q after %d mints", tok, len(minted))
	}

	// A failure to mint leaves the Secret as it was and says why.
	failing := func(context.Context, launch.RunInfo) (trigger.Token, error) {
		return trigger.Token{}, errors.New("github is down")
	}
	err = l.RenewToken(t.Context(), name, 2*time.Hour, failing)
	if err == nil || !strings.Contains(err.Error(), "github is down") || !strings.Contains(err.Error(), name) {
		t.Errorf("RenewToken with a failing mint = %v", err)
	}
	if tok, _ := secretToken(); tok != "fresh-token-1" {
		t.Errorf("a failed renewal changed the token to %q", tok)
	}

	// A Secret lost half-way through an earlier renewal is made anew,
	// owned by the run's Job.
	if err := client.CoreV1().Secrets(o.Namespace).Delete(t.Context(), name+"-clone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.RenewToken(t.Context(), name, 30*time.Minute, mint); err != nil {
		t.Fatal(err)
	}
	s, err := client.CoreV1().Secrets(o.Namespace).Get(t.Context(), name+"-clone", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data[launch.SecretTokenKey]) != "fresh-token-2" || len(s.OwnerReferences) != 1 ||
		s.OwnerReferences[0].Name != name || s.Immutable == nil || !*s.Immutable {
		t.Errorf("recreated secret = %+v", s)
	}
}

// TestRenewTokenByTimeLeft checks when RenewToken renews a queued run's
// token, asked for half an hour: by the expiry its Secret records, and by
// the Secret's age only when it records none, as a Secret made by an
// older yaci does not.
func TestRenewTokenByTimeLeft(t *testing.T) {
	const minLeft = 30 * time.Minute
	now := time.Now()
	at := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	tests := []struct {
		name        string
		age         time.Duration // of the Secret
		annotations map[string]string
		renew       bool
	}{
		{name: "45 minutes left",
			annotations: map[string]string{launch.AnnotationTokenExpires: at(45 * time.Minute)}},
		{name: "25 minutes left", renew: true,
			annotations: map[string]string{launch.AnnotationTokenExpires: at(25 * time.Minute)}},
		{name: "expired", renew: true,
			annotations: map[string]string{launch.AnnotationTokenExpires: at(-time.Minute)}},
		// A reused token is older than the Secret it went into: the age
		// rule would keep it.
		{name: "new secret, token near its end", age: time.Minute, renew: true,
			annotations: map[string]string{launch.AnnotationTokenExpires: at(20 * time.Minute)}},
		{name: "old secret, token with time left", age: 40 * time.Minute,
			annotations: map[string]string{launch.AnnotationTokenExpires: at(50 * time.Minute)}},
		{name: "configured token", age: 5 * time.Hour,
			annotations: map[string]string{launch.AnnotationTokenExpires: launch.NeverExpires}},
		{name: "older yaci, young secret", age: 20 * time.Minute},
		{name: "older yaci, old secret", age: 40 * time.Minute, renew: true},
		{name: "older yaci, renewed lately", age: 2 * time.Hour,
			annotations: map[string]string{launch.AnnotationTokenRenewed: at(-10 * time.Minute)}},
		{name: "unreadable expiry, young secret", age: 10 * time.Minute,
			annotations: map[string]string{launch.AnnotationTokenExpires: "soon"}},
		{name: "unreadable expiry, old secret", age: 40 * time.Minute, renew: true,
			annotations: map[string]string{launch.AnnotationTokenExpires: "soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t)
			o := testOptions
			o.Suspend = true
			l := newLauncher(t, client, o)
			name, _, err := l.Launch(t.Context(), pushRun(), testToken)
			if err != nil {
				t.Fatal(err)
			}
			putSecret(t, client.CoreV1().Secrets(o.Namespace), name+"-clone", now.Add(-tt.age), tt.annotations)

			mints := 0
			mint := func(context.Context, launch.RunInfo) (trigger.Token, error) {
				mints++
				return trigger.Token{Value: "fresh", ExpiresAt: now.Add(time.Hour)}, nil
			}
			if err := l.RenewToken(t.Context(), name, minLeft, mint); err != nil {
				t.Fatal(err)
			}

			if renewed := mints > 0; renewed != tt.renew {
				t.Errorf("renewed = %v, want %v", renewed, tt.renew)
			}
		})
	}
}

// putSecret replaces the clone Secret called name with one created at
// created, with annotations; the fake API server keeps both as given.
func putSecret(t *testing.T, secrets typedcorev1.SecretInterface, name string, created time.Time,
	annotations map[string]string) {
	t.Helper()
	s, err := secrets.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := secrets.Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.ResourceVersion = ""
	s.CreationTimestamp = metav1.NewTime(created)
	s.Annotations = annotations
	if _, err := secrets.Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
