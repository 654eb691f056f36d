package watch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/trigger"
	"github.com/yaci-ci/yaci/internal/watch"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	owner    = "octo"
	repoName = "app"
	ghToken  = "ghp_WatchTestToken0123456789abcdef"
	runsURL  = "https://ci.example/"
	// waitFor bounds every wait of these tests; none should come near it.
	waitFor = time.Minute
)

// env is one test's world: a namespace of the real control plane, a fake
// GitHub, and the Dispatcher that starts runs through launch.Launcher as
// yaci does. Watchers come and go with start.
type env struct {
	t          testing.TB
	cfg        *rest.Config
	ns         string
	cs         kubernetes.Interface
	gh         *githubtest.Server
	dispatcher *trigger.Dispatcher
	opts       watch.Options
}

// newEnv makes an env whose watchers use the options set by mods.
func newEnv(t testing.TB, mods ...func(*watch.Options)) *env {
	t.Helper()
	cfg, ns := testenv.Namespace(t)
	e := &env{t: t, cfg: cfg, ns: ns, cs: kubernetes.NewForConfigOrDie(cfg)}
	e.gh = githubtest.NewServer(t)
	e.gh.SetToken(ghToken)

	gc := e.github(nil, nil)
	l, err := launch.New(e.cs, launch.Options{Namespace: ns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.dispatcher = &trigger.Dispatcher{
		Configs:  configs{gc},
		Statuses: statuses{gc},
		Tokens:   tokens{gc},
		Launcher: launcher{l},
		RunURL:   trigger.PublicRunURL(runsURL),
		Logger:   func(context.Context) *slog.Logger { return testLogger(t) },
	}
	e.opts = watch.Options{
		Namespace:   ns,
		Statuses:    statuses{gc},
		RunURL:      trigger.PublicRunURL(runsURL),
		Logger:      testLogger(t),
		Permanent:   github.IsPermanent,
		RetryAfter:  github.RetryAfter,
		RequeueBase: 50 * time.Millisecond,
		RequeueMax:  time.Second,
	}
	for _, m := range mods {
		m(&e.opts)
	}

	return e
}

// github returns a client of the fake whose requests fail once dead is
// set, if dead is not nil. It retries little and fast: the watcher's own
// requeueing is under test.
func (e *env) github(dead *atomic.Bool, diesAfter func(*http.Request) bool) *github.Client {
	e.t.Helper()
	var transport http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if dead != nil {
		transport = crashable{next: transport, dead: dead, diesAfter: diesAfter}
	}
	c, err := github.New(github.Options{
		BaseURL:   e.gh.URL,
		Token:     github.Secret(ghToken),
		Transport: transport,
		Retry:     github.RetryPolicy{MaxAttempts: 2, InitialInterval: 10 * time.Millisecond},
		Logger:    testLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}

	return c
}

// watcher is a running Watcher and the way to stop it.
type watcher struct {
	*watch.Watcher
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	// dead, when set, makes every call the watcher makes fail, as if its
	// process had died; see crash.
	dead *atomic.Bool
}

// start runs a new Watcher with the env's options until the test ends or
// stop or crash is called, and makes it the dispatcher's Superseder. It
// waits until the watcher's caches are synced.
func (e *env) start() *watcher {
	e.t.Helper()
	return e.startDying(nil)
}

// startDying is start with a watcher that dies, as crash says, right
// after GitHub has accepted a request for which diesAfter holds.
func (e *env) startDying(diesAfter func(*http.Request) bool) *watcher {
	e.t.Helper()
	dead := new(atomic.Bool)
	cfg := rest.CopyConfig(e.cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return crashable{next: rt, dead: dead} })
	o := e.opts
	o.Statuses = statuses{e.github(dead, diesAfter)}

	w, err := watch.New(kubernetes.NewForConfigOrDie(cfg), o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	running := &watcher{Watcher: w, t: e.t, cancel: cancel, done: make(chan error, 1), dead: dead}
	go func() { running.done <- w.Run(ctx) }()
	e.t.Cleanup(running.stop)
	e.dispatcher.Superseder = w

	e.eventually("watcher synced", w.HasSynced)

	return running
}

// stop stops the watcher as yaci does on SIGTERM and waits for Run to
// return.
func (w *watcher) stop() {
	w.cancel()
	if err := <-w.done; err != nil {
		w.t.Errorf("Run returned %v", err)
	}
	w.done <- nil // so that a second stop returns too
}

// crash stops the watcher as if its process died: from this moment every
// call it makes fails, and a call under way is lost even if the server
// handled it.
func (w *watcher) crash() {
	w.dead.Store(true)
	w.stop()
}

// crashable is a transport that stops working for good once dead is set,
// and sets it itself after a request for which diesAfter holds has
// succeeded.
type crashable struct {
	next      http.RoundTripper
	dead      *atomic.Bool
	diesAfter func(*http.Request) bool
}

var errDead = errors.New("the process is dead")

func (c crashable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.dead.Load() {
		return nil, errDead
	}
	resp, err := c.next.RoundTrip(r)
	if err == nil && resp.StatusCode < 300 && c.diesAfter != nil && c.diesAfter(r) {
		c.dead.Store(true)
	}
	if c.dead.Load() {
		if err == nil {
			resp.Body.Close()
		}
		return nil, errDead
	}

	return resp, err
}

// job is one job of a test's .yaci.yml.
type job struct {
	name    string
	image   string
	env     map[string]string
	timeout string
	cpu     string
}

// config returns the .yaci.yml text running jobs.
func config(jobs ...job) string {
	var b strings.Builder
	b.WriteString("jobs:\n")
	for _, j := range jobs {
		fmt.Fprintf(&b, "  - name: %s\n    image: %s\n    run: echo %s\n",
			j.name, orDefault(j.image, "busybox:1"), j.name)
		if len(j.env) > 0 {
			b.WriteString("    env:\n")
			for k, v := range j.env {
				fmt.Fprintf(&b, "      %s: %q\n", k, v)
			}
		}
		if j.timeout != "" {
			fmt.Fprintf(&b, "    timeout: %s\n", j.timeout)
		}
		if j.cpu != "" {
			fmt.Fprintf(&b, "    resources: {cpu: %q}\n", j.cpu)
		}
	}

	return b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}

	return s
}

// slow keeps a job's pod running for d.
func slow(d string) map[string]string { return map[string]string{testenv.RunForEnv: d} }

// sha returns a commit id made of n.
func sha(n int) string { return fmt.Sprintf("%040x", n) }

var deliveries atomic.Int64

func delivery() string { return fmt.Sprintf("d-%d", deliveries.Add(1)) }

// push delivers a push of commit to branch, whose .yaci.yml runs jobs. It
// says nothing of when the push happened, so it supersedes every other
// commit's unfinished run on branch.
func (e *env) push(branch, commit string, jobs ...job) trigger.Event {
	e.t.Helper()
	return e.pushAt(branch, commit, time.Time{}, jobs...)
}

// pushAt is push with the time GitHub gives for it (repository.pushed_at).
func (e *env) pushAt(branch, commit string, at time.Time, jobs ...job) trigger.Event {
	e.t.Helper()
	ev := trigger.Event{
		Delivery: delivery(),
		Kind:     repoconfig.EventPush,
		Repo: trigger.Repo{Owner: owner, Name: repoName,
			CloneURL: "https://github.com/octo/app.git"},
		SHA:    commit,
		Ref:    "refs/heads/" + branch,
		Branch: branch,
		HeadAt: at,
		Sender: "octocat",
	}
	e.handle(ev, jobs)

	return ev
}

// pullRequest delivers action on pull request number into main, with head
// commit, whose .yaci.yml runs jobs.
func (e *env) pullRequest(number int, action, commit string, jobs ...job) trigger.Event {
	e.t.Helper()
	repo := trigger.Repo{Owner: owner, Name: repoName, CloneURL: "https://github.com/octo/app.git"}
	ev := trigger.Event{
		Delivery: delivery(),
		Kind:     repoconfig.EventPullRequest,
		Action:   action,
		Repo:     repo,
		SHA:      commit,
		Ref:      fmt.Sprintf("refs/pull/%d/head", number),
		Branch:   "main",
		Sender:   "octocat",
		PullRequest: &trigger.PullRequest{
			Number: number, Title: "Change", HeadRepo: repo, HeadRef: "topic",
			BaseRef: "main", Author: "octocat", AuthorAssociation: "MEMBER",
		},
	}
	e.handle(ev, jobs)

	return ev
}

func (e *env) handle(ev trigger.Event, jobs []job) {
	e.t.Helper()
	if len(jobs) > 0 {
		e.gh.SetFile(owner, repoName, ev.SHA, repoconfig.FileName, []byte(config(jobs...)))
	}
	if err := e.dispatcher.Handle(e.t.Context(), ev); err != nil {
		e.t.Fatalf("handle %s %s of %s: %v", ev.Kind, ev.Action, ev.SHA, err)
	}
}

// runName returns the name of the run of job on ev.
func runName(ev trigger.Event, job string) string {
	return trigger.Run{Event: ev, Job: repoconfig.Job{Name: job}, Attempt: 1}.Name()
}

// statusContext returns the context of job's statuses on ev.
func statusContext(ev trigger.Event, job string) string {
	return trigger.Run{Event: ev, Job: repoconfig.Job{Name: job}}.StatusContext()
}

// final waits for the final status of job on ev and returns it.
func (e *env) final(ev trigger.Event, job string) githubtest.RecordedStatus {
	e.t.Helper()
	var got githubtest.RecordedStatus
	e.eventually("final status of "+job+" on "+ev.SHA[:7], func() bool {
		s, ok := lastFinal(e.gh.Statuses(owner, repoName, ev.SHA), statusContext(ev, job))
		got = s
		return ok
	})

	return got
}

// lastFinal returns the last status on context that is not pending.
func lastFinal(all []githubtest.RecordedStatus, context string) (githubtest.RecordedStatus, bool) {
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Context == context && all[i].State != string(trigger.StatePending) {
			return all[i], true
		}
	}

	return githubtest.RecordedStatus{}, false
}

// finals returns the statuses on context that are not pending.
func finals(all []githubtest.RecordedStatus, context string) []githubtest.RecordedStatus {
	var out []githubtest.RecordedStatus
	for _, s := range all {
		if s.Context == context && s.State != string(trigger.StatePending) {
			out = append(out, s)
		}
	}

	return out
}

// reportedOnce waits until the run of job on ev is recorded as reported
// with state (its Job released or gone), then checks that exactly one
// final status was posted for it, with that state, linking to the run.
func (e *env) reportedOnce(ev trigger.Event, job string, state trigger.State) githubtest.RecordedStatus {
	e.t.Helper()
	got := e.final(ev, job)
	e.released(runName(ev, job))

	ctx := statusContext(ev, job)
	all := finals(e.gh.Statuses(owner, repoName, ev.SHA), ctx)
	if len(all) != 1 {
		e.t.Errorf("%s on %s: %d final statuses, want 1: %+v", ctx, ev.SHA[:7], len(all), all)
	}
	if got.State != string(state) {
		e.t.Errorf("%s on %s: state %s (%q), want %s", ctx, ev.SHA[:7], got.State,
			got.Description, state)
	}
	if want := runsURL + "runs/" + runName(ev, job); got.TargetURL != want {
		e.t.Errorf("%s: target url %q, want %q", ctx, got.TargetURL, want)
	}

	return got
}

// released waits until the Job named name no longer has the watcher's
// finalizer and says it was reported, or is gone.
func (e *env) released(name string) {
	e.t.Helper()
	e.eventually("job "+name+" released", func() bool {
		j, err := e.cs.BatchV1().Jobs(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true
		}
		return err == nil && j.Annotations[launch.AnnotationReported] != "" &&
			!hasFinalizer(j)
	})
}

func hasFinalizer(j *batchv1.Job) bool {
	for _, f := range j.Finalizers {
		if f == launch.Finalizer {
			return true
		}
	}

	return false
}

// pod waits until the run's Job has a pod for which ok holds, and
// returns it.
func (e *env) pod(run string, ok func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	var found *corev1.Pod
	e.eventually("pod of "+run, func() bool {
		pods, err := e.cs.CoreV1().Pods(e.ns).List(e.t.Context(), metav1.ListOptions{
			LabelSelector: batchv1.JobNameLabel + "=" + run,
		})
		if err != nil {
			return false
		}
		for i := range pods.Items {
			if ok(&pods.Items[i]) {
				found = &pods.Items[i]
				return true
			}
		}
		return false
	})

	return found
}

func running(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

// eventually waits for cond, checking it every 20ms, and fails the test
// if it does not hold within waitFor.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogger logs to the test at Debug when YACI_TEST_LOG is set, and
// nowhere otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("YACI_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}

	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The adapters below connect the GitHub client and the launcher to the
// Dispatcher and the Watcher, as yaci's wiring does.

type configs struct{ c *github.Client }

func (a configs) ReadFile(ctx context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	b, err := a.c.ReadFile(ctx, inst, owner, repo, path, ref)
	if errors.Is(err, github.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", trigger.ErrConfigNotFound, err)
	}

	return b, err
}

type statuses struct{ c *github.Client }

func (a statuses) SetStatus(ctx context.Context, inst int64, owner, repo, sha string, s trigger.Status) error {
	return a.c.SetStatus(ctx, inst, owner, repo, sha, github.Status{
		State: string(s.State), Context: s.Context, Description: s.Description,
		TargetURL: s.TargetURL,
	})
}

type tokens struct{ c *github.Client }

func (a tokens) CloneToken(ctx context.Context, inst int64, owner, repo string) (trigger.Token, error) {
	tok, err := a.c.CloneToken(ctx, inst, owner, repo)
	return trigger.Token{Value: tok.Value.Reveal(), ExpiresAt: tok.ExpiresAt}, err
}

type launcher struct{ l *launch.Launcher }

func (a launcher) Launch(ctx context.Context, run trigger.Run, tok trigger.Token) (trigger.Launched, error) {
	name, created, err := a.l.Launch(ctx, run, tok)
	return trigger.Launched{Name: name, Created: created}, err
}

// archiver records what it is asked to archive, and fails as told.
type archiver struct {
	gh *githubtest.Server
	// failures says how often Archive fails for a job, by job name;
	// negative means always.
	failures map[string]int

	mu    sync.Mutex
	calls map[string][]archiveCall
}

type archiveCall struct {
	pods int
	// finalBefore is how many final statuses the run had already.
	finalBefore int
}

func (a *archiver) Archive(_ context.Context, job *batchv1.Job, pods []*corev1.Pod) error {
	info, err := launch.RunFromJob(job)
	if err != nil {
		return err
	}
	all := a.gh.Statuses(info.Repo.Owner, info.Repo.Name, info.SHA)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[info.Job] = append(a.calls[info.Job], archiveCall{
		pods: len(pods), finalBefore: len(finals(all, info.StatusContext)),
	})
	if n := a.failures[info.Job]; n < 0 || len(a.calls[info.Job]) <= n {
		return fmt.Errorf("archive store unavailable (call %d)", len(a.calls[info.Job]))
	}

	return nil
}

func (a *archiver) callsOf(job string) []archiveCall {
	a.mu.Lock()
	defer a.mu.Unlock()

	return append([]archiveCall(nil), a.calls[job]...)
}
