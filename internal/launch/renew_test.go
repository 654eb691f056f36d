package launch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yaci-ci/yaci/internal/launch"
)

func TestRenewToken(t *testing.T) {
	client := newClient(t)
	o := testOptions
	o.Suspend = true
	l := newLauncher(t, client, o)
	run := pushRun()
	name, _, err := l.Launch(t.Context(), run, cloneToken)
	if err != nil {
		t.Fatal(err)
	}

	var minted []launch.RunInfo
	mint := func(_ context.Context, info launch.RunInfo) (string, error) {
		minted = append(minted, info)
		return "fresh-token-" + string(rune('0'+len(minted))), nil
	}
	secretToken := func() (string, string) {
		s, err := client.CoreV1().Secrets(o.Namespace).Get(t.Context(), name+"-clone", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[launch.SecretTokenKey]), s.Annotations[launch.AnnotationTokenRenewed]
	}

	// The fake API server sets no creation time, so the launch token
	// counts as old: it is renewed.
	if err := l.RenewToken(t.Context(), name, time.Hour, mint); err != nil {
		t.Fatal(err)
	}
	tok, renewed := secretToken()
	if tok != "fresh-token-1" || renewed == "" {
		t.Fatalf("after renewal: token %q, renewed-at %q", tok, renewed)
	}
	if len(minted) != 1 || minted[0].Repo.FullName() != run.Event.Repo.FullName() ||
		minted[0].InstallationID != run.Event.InstallationID {
		t.Errorf("mint got %+v, want the run's repository and installation", minted)
	}

	// Renewed a moment ago: younger than an hour, so left alone.
	if err := l.RenewToken(t.Context(), name, time.Hour, mint); err != nil {
		t.Fatal(err)
	}
	if tok, _ := secretToken(); tok != "fresh-token-1" || len(minted) != 1 {
		t.Errorf("a fresh token was renewed again: %q after %d mints", tok, len(minted))
	}

	// A failure to mint leaves the Secret as it was and says why.
	failing := func(context.Context, launch.RunInfo) (string, error) {
		return "", errors.New("github is down")
	}
	err = l.RenewToken(t.Context(), name, 0, failing)
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
	if err := l.RenewToken(t.Context(), name, time.Hour, mint); err != nil {
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
