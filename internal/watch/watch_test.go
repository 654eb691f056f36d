package watch_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/trigger"
	"github.com/yaci-ci/yaci/internal/watch"
)

// TestOutcomes runs one job per way a run can end, each in a namespace of
// its own, and checks its final status: the state, what the description
// says, and that it was posted once.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name string
		job  job
		// act, when set, does to the running run what the case is about.
		act       func(e *env, run string)
		wantState trigger.State
		wantDesc  string // a regular expression
		// wantGone says the Job was deleted, by the test or the watcher.
		wantGone bool
	}{{
		name:      "passes",
		job:       job{name: "unit"},
		wantState: trigger.StateSuccess,
		wantDesc:  `^passed in \d+s$`,
	}, {
		name:      "command fails",
		job:       job{name: "unit", image: testenv.FailImage},
		wantState: trigger.StateFailure,
		wantDesc:  `^failed in \d+s \(exit code 1\)$`,
	}, {
		name:      "times out",
		job:       job{name: "unit", env: slow("60s"), timeout: "3s"},
		wantState: trigger.StateError,
		wantDesc:  `^timed out after 3s$`,
	}, {
		name:      "image cannot be pulled",
		job:       job{name: "unit", image: testenv.PullErrorImage},
		wantState: trigger.StateError,
		wantDesc:  `^image ` + regexp.QuoteMeta(testenv.PullErrorImage) + ` could not be pulled$`,
		wantGone:  true,
	}, {
		name:      "no node can take it",
		job:       job{name: "unit", cpu: "2000"},
		wantState: trigger.StateError,
		wantDesc:  `^no node could run it for 2s: 0/\d+ nodes are available: .*Insufficient cpu`,
		wantGone:  true,
	}, {
		name:      "clone fails",
		job:       job{name: "unit", cpu: "2000"},
		act:       failClone,
		wantState: trigger.StateError,
		wantDesc:  `^could not clone the commit$`,
	}, {
		name: "job deleted by hand",
		job:  job{name: "unit", env: slow("60s")},
		act: func(e *env, run string) {
			e.pod(run, running)
			err := e.cs.BatchV1().Jobs(e.ns).Delete(e.t.Context(), run, metav1.DeleteOptions{
				PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
			})
			if err != nil {
				e.t.Fatal(err)
			}
		},
		wantState: trigger.StateError,
		wantDesc:  `^cancelled: job was deleted$`,
		wantGone:  true,
	}, {
		name: "pod deleted by hand",
		job:  job{name: "unit", env: slow("60s")},
		act: func(e *env, run string) {
			pod := e.pod(run, running)
			err := e.cs.CoreV1().Pods(e.ns).Delete(e.t.Context(), pod.Name, metav1.DeleteOptions{})
			if err != nil {
				e.t.Fatal(err)
			}
		},
		wantState: trigger.StateError,
		wantDesc:  `^cancelled: its pod was deleted before it finished$`,
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stuckAfter := 2 * time.Second
			if tt.act != nil {
				// The case provokes its own end; the watcher must not
				// end the run first.
				stuckAfter = time.Hour
			}
			e := newEnv(t, func(o *watch.Options) { o.StuckAfter = stuckAfter })
			e.start()

			ev := e.push("main", sha(1), tt.job)
			run := runName(ev, tt.job.name)
			if tt.act != nil {
				tt.act(e, run)
			}

			got := e.reportedOnce(ev, tt.job.name, tt.wantState)
			if !regexp.MustCompile(tt.wantDesc).MatchString(got.Description) {
				t.Errorf("description %q does not match %s", got.Description, tt.wantDesc)
			}
			if tt.wantGone {
				e.gone(run)
				return
			}
			j, err := e.cs.BatchV1().Jobs(e.ns).Get(t.Context(), run, metav1.GetOptions{})
			switch {
			case err != nil:
				t.Errorf("job %s: %v; want it kept for its TTL", run, err)
			case j.Annotations[launch.AnnotationReported] != string(tt.wantState):
				t.Errorf("job %s annotated %q, want %q", run,
					j.Annotations[launch.AnnotationReported], tt.wantState)
			}
		})
	}
}

// gone waits until the Job named name is gone.
func (e *env) gone(name string) {
	e.t.Helper()
	e.eventually("job "+name+" gone", func() bool {
		_, err := e.cs.BatchV1().Jobs(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// failClone makes the run's pod fail in its clone container, as a
// kubelet reports a clone that failed. kwok ends every init container
// with success, so the test writes the pod's status itself; the run asks
// for more CPU than any node has, so that kwok never touches the pod.
func failClone(e *env, run string) {
	e.t.Helper()
	pod := e.pod(run, func(*corev1.Pod) bool { return true })
	pods := e.cs.CoreV1().Pods(e.ns)
	// The scheduler and testenv's log writer change the pod too.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(e.t.Context(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		pod.Status.Phase = corev1.PodFailed
		pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{
			Name: launch.CloneContainer, Image: launch.DefaultCloneImage,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 128, Reason: "Error", StartedAt: now, FinishedAt: now,
			}},
		}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: launch.RunContainer, Image: "busybox:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "PodInitializing",
			}},
		}}
		_, err = pods.UpdateStatus(e.t.Context(), pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatalf("fail the clone of %s: %v", run, err)
	}
}

// TestSupersedePush pushes twice to main while the first push's run is
// still going, and once to another branch: the first run ends as
// superseded, the second passes, the other branch's run goes on.
func TestSupersedePush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()

	first := e.push("main", sha(1), job{name: "test", env: slow("60s")})
	other := e.push("feature", sha(2), job{name: "test", env: slow("60s")})
	e.pod(runName(first, "test"), running)

	second := e.push("main", sha(3), job{name: "test"})

	got := e.reportedOnce(first, "test", trigger.StateError)
	if want := "superseded by " + sha(3)[:7]; got.Description != want {
		t.Errorf("superseded run says %q, want %q", got.Description, want)
	}
	e.reportedOnce(second, "test", trigger.StateSuccess)

	otherStatuses := e.gh.Statuses(owner, repoName, other.SHA)
	if s, ok := lastFinal(otherStatuses, statusContext(other, "test")); ok {
		t.Errorf("run on another branch ended: %+v", s)
	}
	j, err := e.cs.BatchV1().Jobs(e.ns).Get(t.Context(), runName(other, "test"), metav1.GetOptions{})
	if err != nil || j.DeletionTimestamp != nil {
		t.Errorf("run on another branch was touched: %v", err)
	}
}

// TestSupersedeLateDelivery delivers a push after a newer one to the same
// branch, as a slow delivery or a redelivery by hand would: the newer run
// goes on, and a push that is really newer still supersedes it.
func TestSupersedeLateDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	pushed := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

	newer := e.pushAt("main", sha(5), pushed.Add(time.Minute), job{name: "test", env: slow("60s")})
	e.pod(runName(newer, "test"), running)
	late := e.pushAt("main", sha(4), pushed, job{name: "test"})
	e.reportedOnce(late, "test", trigger.StateSuccess)

	j, err := e.cs.BatchV1().Jobs(e.ns).Get(t.Context(), runName(newer, "test"), metav1.GetOptions{})
	if err != nil || j.DeletionTimestamp != nil || j.Annotations[watch.AnnotationSupersededBy] != "" {
		t.Fatalf("the newer run was touched by a late delivery of an older push: %v", err)
	}
	if s, ok := lastFinal(e.gh.Statuses(owner, repoName, newer.SHA), statusContext(newer, "test")); ok {
		t.Fatalf("the newer run ended: %+v", s)
	}

	newest := e.pushAt("main", sha(6), pushed.Add(2*time.Minute), job{name: "test"})
	got := e.reportedOnce(newer, "test", trigger.StateError)
	if want := "superseded by " + sha(6)[:7]; got.Description != want {
		t.Errorf("superseded run says %q, want %q", got.Description, want)
	}
	e.reportedOnce(newest, "test", trigger.StateSuccess)
}

// TestSupersedePullRequest moves a pull request's head while its run goes
// on, then closes it: the first run ends as superseded, the second as
// cancelled.
func TestSupersedePullRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()

	opened := e.pullRequest(7, "opened", sha(1), job{name: "test", env: slow("60s")})
	e.pod(runName(opened, "test"), running)
	synced := e.pullRequest(7, "synchronize", sha(2), job{name: "test", env: slow("60s")})

	got := e.reportedOnce(opened, "test", trigger.StateError)
	if want := "superseded by " + sha(2)[:7]; got.Description != want {
		t.Errorf("superseded run says %q, want %q", got.Description, want)
	}

	e.pod(runName(synced, "test"), running)
	e.pullRequest(7, "closed", sha(2))
	got = e.reportedOnce(synced, "test", trigger.StateError)
	if want := "cancelled: pull request closed"; got.Description != want {
		t.Errorf("run of the closed pull request says %q, want %q", got.Description, want)
	}
}

// TestArchive checks that logs are archived before the final status, with
// the run's pods; that a failing archive is tried again; and that a run
// whose archive keeps failing is still reported.
func TestArchive(t *testing.T) {
	t.Parallel()
	arch := &archiver{failures: map[string]int{"flaky": 2, "broken": -1},
		calls: map[string][]archiveCall{}}
	e := newEnv(t, func(o *watch.Options) { o.Archiver = arch })
	arch.gh = e.gh
	e.start()

	ev := e.push("main", sha(1), job{name: "flaky"}, job{name: "broken"})
	e.reportedOnce(ev, "flaky", trigger.StateSuccess)
	e.reportedOnce(ev, "broken", trigger.StateSuccess)

	for job, want := range map[string]int{"flaky": 3, "broken": 5} {
		calls := arch.callsOf(job)
		if len(calls) != want {
			t.Errorf("%s archived %d times, want %d", job, len(calls), want)
		}
		for _, c := range calls {
			if c.pods != 1 || c.finalBefore != 0 {
				t.Errorf("%s archived with %d pods after %d final statuses, want 1 pod, before",
					job, c.pods, c.finalBefore)
			}
		}
	}
}

// TestRestart stops the watcher while runs go on and starts another once
// they have ended: each run is reported once, by the second.
func TestRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.start()

	ev := e.push("main", sha(1), job{name: "a", env: slow("2s")},
		job{name: "b", image: testenv.FailImage, env: slow("2s")}, job{name: "c", env: slow("2s")})
	first.stop()

	for _, name := range []string{"a", "b", "c"} {
		e.jobEnded(runName(ev, name))
	}
	if n := len(finals(e.gh.Statuses(owner, repoName, ev.SHA), statusContext(ev, "a"))); n != 0 {
		t.Fatalf("%d final statuses while no watcher ran", n)
	}

	second := e.start()
	e.reportedOnce(ev, "a", trigger.StateSuccess)
	e.reportedOnce(ev, "b", trigger.StateFailure)
	e.reportedOnce(ev, "c", trigger.StateSuccess)
	second.stop()
}

// jobEnded waits until the Job controller has ended the Job named name.
func (e *env) jobEnded(name string) {
	e.t.Helper()
	e.eventually("job "+name+" ended", func() bool {
		j, err := e.cs.BatchV1().Jobs(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) &&
				c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
}

// TestGitHubDown makes GitHub refuse statuses while runs end: every final
// status still arrives, once, when GitHub is back.
func TestGitHubDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()

	ev := e.push("main", sha(1), job{name: "a", env: slow("2s")},
		job{name: "b", image: testenv.FailImage, env: slow("2s")})
	const outage = 30
	e.gh.Fail(outage, githubtest.Failure{
		Endpoint: githubtest.EndpointCreateCommitStatus, Status: http.StatusBadGateway,
	})

	e.reportedOnce(ev, "a", trigger.StateSuccess)
	e.reportedOnce(ev, "b", trigger.StateFailure)
	got := e.gh.Responses(githubtest.EndpointCreateCommitStatus, http.StatusBadGateway)
	if got != outage {
		t.Errorf("GitHub refused %d posts, want all %d of the outage", got, outage)
	}
}

// TestKillAtRandomPoints starts and stops watchers at random moments while
// runs end: 20 trials, each launching runs and then stopping its watcher
// after a random delay, half of them gracefully and half as a crash. At
// the end one more watcher reports whatever is left. No commit may be left
// pending, and a run may have a second final status only after a crash,
// and only the same status again (the window described in the package
// documentation).
func TestKillAtRandomPoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *watch.Options) { o.Workers = 2 })
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))

	type runOf struct {
		ev    trigger.Event
		job   string
		state trigger.State
		// crashed says a crash came after the run was launched.
		crashed bool
	}
	var runs []*runOf
	for trial := range 20 {
		w := e.start()
		commit := sha(100 + trial)
		ev := e.push("trial-"+commit[34:], commit, job{name: "ok"},
			job{name: "bad", image: testenv.FailImage})
		runs = append(runs, &runOf{ev: ev, job: "ok", state: trigger.StateSuccess},
			&runOf{ev: ev, job: "bad", state: trigger.StateFailure})

		time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second))))
		if trial%2 == 1 {
			w.crash()
			for _, r := range runs {
				r.crashed = true
			}
		} else {
			w.stop()
		}
	}
	e.start()

	dupes := 0
	for _, r := range runs {
		got := e.final(r.ev, r.job)
		e.released(runName(r.ev, r.job))
		all := finals(e.gh.Statuses(owner, repoName, r.ev.SHA), statusContext(r.ev, r.job))
		if got.State != string(r.state) {
			t.Errorf("%s on %s ended %s (%q), want %s", r.job, r.ev.SHA[:7], got.State,
				got.Description, r.state)
		}
		if len(all) > 1 {
			dupes += len(all) - 1
			if !r.crashed {
				t.Errorf("%s on %s: %d final statuses and no crash: %+v",
					r.job, r.ev.SHA[:7], len(all), all)
			}
			for _, s := range all[1:] {
				if s.State != all[0].State || s.Description != all[0].Description ||
					s.TargetURL != all[0].TargetURL {
					t.Errorf("%s on %s: a second final status differs: %+v", r.job,
						r.ev.SHA[:7], all)
				}
			}
		}
		s := lastOn(e.gh.Statuses(owner, repoName, r.ev.SHA), statusContext(r.ev, r.job))
		if s.State == string(trigger.StatePending) {
			t.Errorf("%s on %s left pending", r.job, r.ev.SHA[:7])
		}
	}
	t.Logf("%d runs, %d repeated final statuses after 10 crashes", len(runs), dupes)
}

// TestCrashAfterPost crashes the watcher in the window the package
// documentation describes, right after GitHub accepted a final status and
// before the Job recorded it: the next watcher posts the same status once
// more, and nothing else.
func TestCrashAfterPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startDying(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/statuses/")
	})

	ev := e.push("main", sha(1), job{name: "test"})
	first := e.final(ev, "test")
	w.crash()
	if j, err := e.cs.BatchV1().Jobs(e.ns).Get(t.Context(), runName(ev, "test"),
		metav1.GetOptions{}); err != nil || !hasFinalizer(j) {
		t.Fatalf("job after the crash: %v; want it still held", err)
	}

	e.start()
	e.released(runName(ev, "test"))
	all := finals(e.gh.Statuses(owner, repoName, ev.SHA), statusContext(ev, "test"))
	if len(all) != 2 {
		t.Fatalf("%d final statuses, want the first and its one repeat: %+v", len(all), all)
	}
	second := all[1]
	if second.State != first.State || second.Description != first.Description ||
		second.TargetURL != first.TargetURL || first.State != string(trigger.StateSuccess) {
		t.Errorf("repeat %+v differs from %+v", second, first)
	}
}

// TestRunStopsPromptly checks that Run returns soon after its context
// ends and that a second Run is refused.
func TestRunStopsPromptly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start()
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}

	done := make(chan struct{})
	go func() { w.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context ended")
	}
	if w.HasSynced() {
		t.Error("HasSynced after Run returned")
	}
}

// lastOn returns the last status posted on context.
func lastOn(all []githubtest.RecordedStatus, context string) githubtest.RecordedStatus {
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Context == context {
			return all[i]
		}
	}

	return githubtest.RecordedStatus{}
}
