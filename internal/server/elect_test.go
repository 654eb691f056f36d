package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/testenv"
)

// replica is one yaci server whose connections can all be cut at once,
// which is how a crashed process looks to the API server and to GitHub.
type replica struct {
	url  string
	dead atomic.Bool
}

var errCut = errors.New("replica crashed (test)")

type cuttable struct {
	next http.RoundTripper
	dead *atomic.Bool
}

func (c cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.dead.Load() {
		return nil, errCut
	}
	return c.next.RoundTrip(r)
}

func startReplica(t *testing.T, cfg *rest.Config, ns, identity string, gh *githubtest.Server) *replica {
	t.Helper()
	r := &replica{}
	kcfg := rest.CopyConfig(cfg)
	kcfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return cuttable{rt, &r.dead} })
	kube := kubernetes.NewForConfigOrDie(kcfg)
	client, err := github.New(github.Options{
		BaseURL:   gh.URL,
		Token:     github.Secret(apiToken),
		Transport: cuttable{http.DefaultTransport, &r.dead},
		Retry:     fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		WebhookSecret: []byte(secret), GitHub: client, Kube: kube,
		Launch:    launch.Options{Namespace: ns},
		PublicURL: publicBase, Signer: testSigner(t), Store: testStore(t),
		LeaderElection: LeaderElection{
			Lease: "yaci", Identity: identity,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second,
			RetryPeriod: 500 * time.Millisecond,
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx)
	}()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
	})
	r.url = hs.URL

	return r
}

func leaseHolder(t *testing.T, kube kubernetes.Interface, ns string) string {
	lease, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), "yaci", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// TestLeaderCrashHandsOver runs two replicas, crashes the leader while its
// runs are still going, and checks that the other takes over within the
// lease and reports every run exactly once.
func TestLeaderCrashHandsOver(t *testing.T) {
	cfg, ns := testenv.Namespace(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	gh := githubtest.NewServer(t)
	gh.SetToken(apiToken)

	a := startReplica(t, cfg, ns, "replica-a", gh)
	waitFor(t, "replica-a to lead", func() bool { return leaseHolder(t, kube, ns) == "replica-a" })
	b := startReplica(t, cfg, ns, "replica-b", gh)

	head := sha(t, "head")
	gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(
		"jobs:\n  - name: one\n    image: golang:1.26\n    run: echo one\n    env: {KWOK_RUN_FOR: 4s}\n"+
			"  - name: two\n    image: golang:1.26\n    run: echo two\n    env: {KWOK_RUN_FOR: 4s}\n"))
	e := &env{gh: gh, kube: kube, ns: ns, url: b.url}
	e.deliver(t, "push", "ha-1", pushPayload("main", head))
	waitFor(t, "both runs admitted", func() bool {
		jobs := e.jobs(t)
		running := 0
		for _, j := range jobs {
			if j.Spec.Suspend != nil && !*j.Spec.Suspend {
				running++
			}
		}
		return running == 2
	})

	crashed := time.Now()
	a.dead.Store(true)
	waitFor(t, "replica-b to lead", func() bool { return leaseHolder(t, kube, ns) == "replica-b" })
	t.Logf("replica-b leads %s after the crash", time.Since(crashed).Round(100*time.Millisecond))

	for _, ctx := range []string{"yaci/push/one", "yaci/push/two"} {
		waitFor(t, ctx+" to succeed", func() bool {
			return gh.StatusCount(owner, repoName, head, ctx, "success") >= 1
		})
	}
	// Give a late duplicate the chance to show before counting.
	time.Sleep(time.Second)
	for _, ctx := range []string{"yaci/push/one", "yaci/push/two"} {
		if n := gh.StatusCount(owner, repoName, head, ctx, "success"); n != 1 {
			t.Errorf("%s: %d success statuses, want exactly 1", ctx, n)
		}
	}
}
