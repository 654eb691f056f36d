package watch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// t0 is when the runs of these tests start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

// runJob returns a started Job with a 20 minute deadline, changed by opts.
func runJob(opts ...func(*batchv1.Job)) *batchv1.Job {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "yaci-test-1", UID: "job-uid",
			Annotations: map[string]string{}},
		Spec:   batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](1200)},
		Status: batchv1.JobStatus{StartTime: ptr.To(at(0))},
	}
	for _, o := range opts {
		o(job)
	}

	return job
}

func cond(t batchv1.JobConditionType, reason string, after time.Duration) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{
			Type: t, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: at(after),
		})
	}
}

func completed(after time.Duration) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		cond(batchv1.JobComplete, "CompletionsReached", after)(j)
		j.Status.CompletionTime = ptr.To(at(after))
	}
}

func deleted(after time.Duration) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(at(after)) }
}

func annotated(k, v string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Annotations[k] = v }
}

// runPod returns a pod of runJob, changed by opts.
func runPod(opts ...func(*corev1.Pod)) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "yaci-test-1-abcde"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: launch.CloneContainer, Image: "alpine/git:2"}},
			Containers:     []corev1.Container{{Name: launch.RunContainer, Image: "golang:1.26"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(pod)
	}

	return pod
}

func exited(container string, code int32, reason string, after time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		st := corev1.ContainerStatus{Name: container, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{
				ExitCode: code, Reason: reason, FinishedAt: at(after),
			},
		}}
		if container == launch.CloneContainer {
			p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, st)
		} else {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, st)
		}
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
	}
}

// succeededPod marks a pod whose containers all passed.
func succeededPod(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }

func waiting(container, reason, message string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: container, Image: "golang:1.26",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: reason, Message: message,
			}},
		})
	}
}

func unschedulable(since time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason:             corev1.PodReasonUnschedulable,
			Message:            "0/1 nodes are available: 1 Insufficient cpu.",
			LastTransitionTime: at(since),
		})
	}
}

func podDeleted(after time.Duration, grace int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.DeletionTimestamp = ptr.To(at(after + time.Duration(grace)*time.Second))
		p.DeletionGracePeriodSeconds = ptr.To(grace)
	}
}

func TestDecide(t *testing.T) {
	failedAt := cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, 65*time.Second)
	now := t0.Add(10 * time.Minute)

	tests := []struct {
		name string
		job  *batchv1.Job
		pods []*corev1.Pod
		want decision
	}{{
		name: "running",
		job:  runJob(),
		pods: []*corev1.Pod{runPod()},
		want: decision{act: wait},
	}, {
		name: "passed",
		job:  runJob(completed(3*time.Minute + 12*time.Second)),
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed in 3m12s"},
	}, {
		name: "success decided, pods still stopping",
		job:  runJob(cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached", 20*time.Minute)),
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed in 20m"},
	}, {
		name: "never started",
		job: runJob(completed(time.Minute), func(j *batchv1.Job) {
			j.Status.StartTime = nil
		}),
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed"},
	}, {
		name: "command failed",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 2, "Error", time.Minute))},
		want: decision{act: report, state: trigger.StateFailure,
			desc: "failed in 1m5s (exit code 2)"},
	}, {
		name: "out of memory",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 137, "OOMKilled", time.Minute))},
		want: decision{act: report, state: trigger.StateFailure,
			desc: "failed in 1m5s: out of memory (exit code 137)"},
	}, {
		name: "deadline",
		job: runJob(cond(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded,
			20*time.Minute)),
		pods: []*corev1.Pod{runPod()},
		want: errorDecision("timed out after 20m"),
	}, {
		name: "clone failed",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod(exited(launch.CloneContainer, 128, "Error", time.Second))},
		want: errorDecision("could not clone the commit"),
	}, {
		name: "evicted",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 137, "Error", time.Minute),
			func(p *corev1.Pod) {
				p.Status.Reason = "Evicted"
				p.Status.Message = "The node was low on resource: ephemeral-storage."
			})},
		want: errorDecision("its pod was evicted: The node was low on resource: ephemeral-storage."),
	}, {
		name: "pod deleted while it ran",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod(podDeleted(50*time.Second, 30),
			exited(launch.RunContainer, 143, "Error", time.Minute))},
		want: errorDecision("cancelled: its pod was deleted before it finished"),
	}, {
		name: "pod deleted after the command failed",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 1, "Error", time.Minute),
			podDeleted(64*time.Second, 30))},
		want: decision{act: report, state: trigger.StateFailure,
			desc: "failed in 1m5s (exit code 1)"},
	}, {
		name: "failed and no pod left",
		job:  runJob(failedAt),
		want: errorDecision("cancelled: its pod was deleted before it finished"),
	}, {
		name: "failed and the pod says nothing",
		job:  runJob(failedAt),
		pods: []*corev1.Pod{runPod()},
		want: errorDecision("ended without a result: BackoffLimitExceeded"),
	}, {
		name: "deleted while it ran",
		job:  runJob(deleted(time.Minute)),
		pods: []*corev1.Pod{runPod()},
		want: errorDecision("cancelled: job was deleted"),
	}, {
		name: "superseded",
		job: runJob(deleted(time.Minute),
			annotated(AnnotationSupersededBy, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")),
		want: errorDecision("superseded by a1b2c3d"),
	}, {
		name: "pull request closed",
		job:  runJob(deleted(time.Minute), annotated(AnnotationSupersededBy, SupersededByClose)),
		want: errorDecision("cancelled: pull request closed"),
	}, {
		name: "ended as stuck",
		job: runJob(deleted(time.Minute),
			annotated(AnnotationStuck, "image golang:nope could not be pulled")),
		want: errorDecision("image golang:nope could not be pulled"),
	}, {
		name: "failed because it was deleted",
		job: runJob(deleted(time.Minute), annotated(AnnotationSupersededBy, SupersededByClose),
			cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, time.Minute)),
		want: errorDecision("cancelled: pull request closed"),
	}, {
		name: "deleted by its TTL after it passed",
		job:  runJob(completed(time.Minute), deleted(time.Hour+time.Minute)),
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed in 1m"},
	}, {
		name: "image cannot be pulled",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(waiting(launch.RunContainer, "ImagePullBackOff",
			`Back-off pulling image "golang:nope"`))},
		want: decision{act: end, state: trigger.StateError,
			desc: "image golang:1.26 could not be pulled"},
	}, {
		name: "clone image cannot be pulled",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(func(p *corev1.Pod) {
			waiting(launch.RunContainer, "PodInitializing", "")(p)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{
				Name: launch.CloneContainer, Image: "alpine/git:2", State: corev1.ContainerState{
					Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"},
				},
			}}
		})},
		want: decision{act: end, state: trigger.StateError,
			desc: "image alpine/git:2 could not be pulled"},
	}, {
		name: "image nobody names cannot be pulled",
		job:  runJob(),
		pods: []*corev1.Pod{{Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "run", State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName"},
			}}},
		}}},
		want: decision{act: end, state: trigger.StateError,
			desc: "the image of container run could not be pulled"},
	}, {
		name: "configuration cannot be met",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(waiting(launch.RunContainer, reasonConfigError,
			`secret "x" not found`))},
		want: decision{act: end, state: trigger.StateError,
			desc: `container run could not be created: secret "x" not found`},
	}, {
		name: "waiting for a node",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(unschedulable(8 * time.Minute))},
		want: decision{act: wait, recheck: 3 * time.Minute},
	}, {
		name: "no node for too long",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(unschedulable(4 * time.Minute))},
		want: decision{act: end, state: trigger.StateError,
			desc: "no node could run it for 5m: 0/1 nodes are available: 1 Insufficient cpu."},
	}, {
		name: "pod passed, job not yet complete",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(exited(launch.CloneContainer, 0, "Completed", 2*time.Second),
			exited(launch.RunContainer, 0, "Completed", 3*time.Minute+12*time.Second),
			succeededPod)},
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed in 3m12s"},
	}, {
		name: "pod failed, job not yet failed",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 2, "Error", time.Minute))},
		want: decision{act: report, state: trigger.StateFailure,
			desc: "failed in 1m (exit code 2)"},
	}, {
		name: "clone failed, job not yet failed",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(exited(launch.CloneContainer, 128, "Error", time.Second))},
		want: errorDecision("could not clone the commit"),
	}, {
		name: "pod passed near the deadline waits for the job",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 0, "Completed",
			20*time.Minute-deadlineGuard), succeededPod)},
		want: decision{act: wait},
	}, {
		name: "pod passed just before the guard",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 0, "Completed",
			20*time.Minute-deadlineGuard-time.Second), succeededPod)},
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed in 19m54s"},
	}, {
		name: "pod ended, job start unknown",
		job:  runJob(func(j *batchv1.Job) { j.Status.StartTime = nil }),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 0, "Completed", time.Minute),
			succeededPod)},
		want: decision{act: wait},
	}, {
		name: "pod without a deadline passed",
		job: runJob(func(j *batchv1.Job) {
			j.Spec.ActiveDeadlineSeconds = nil
			j.Status.StartTime = nil
		}),
		pods: []*corev1.Pod{runPod(exited(launch.RunContainer, 0, "Completed", time.Minute),
			succeededPod)},
		want: decision{act: report, state: trigger.StateSuccess, desc: "passed"},
	}, {
		name: "pod stopped by a deletion waits for the job",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(podDeleted(50*time.Second, 30),
			exited(launch.RunContainer, 143, "Error", time.Minute))},
		want: decision{act: wait},
	}, {
		name: "pod failed without an end time waits for the job",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.Reason = "Evicted"
		})},
		want: decision{act: wait},
	}, {
		name: "pod being deleted is not stuck",
		job:  runJob(),
		pods: []*corev1.Pod{runPod(unschedulable(0), podDeleted(time.Minute, 0))},
		want: decision{act: wait},
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.job, tt.pods, now, DefaultStuckAfter)
			if got != tt.want {
				t.Errorf("decide() = %+v, want %+v", got, tt.want)
			}
			if n := utf8.RuneCountInString(got.desc); n > maxDescription {
				t.Errorf("description has %d characters, GitHub takes %d", n, maxDescription)
			}

			// The watcher decides with cached, trimmed pods while a run
			// goes on, and reads them whole once it has ended.
			pods := tt.pods
			if _, ended := terminal(tt.job); !ended && tt.job.DeletionTimestamp == nil {
				pods = make([]*corev1.Pod, len(tt.pods))
				for i, p := range tt.pods {
					pods[i] = newCachedPod(p.DeepCopy()).pod()
				}
			}
			job, _ := launch.TrimJob(tt.job.DeepCopy())
			if got := decide(job.(*batchv1.Job), pods, now, DefaultStuckAfter); got != tt.want {
				t.Errorf("decide() on the objects as cached = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{400 * time.Millisecond, "0s"},
		{1500 * time.Millisecond, "2s"},
		{45 * time.Second, "45s"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{20 * time.Minute, "20m"},
		{time.Hour, "1h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
	}
	for _, tt := range tests {
		if got := shortDuration(tt.in); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDescriptionsFit(t *testing.T) {
	long := strings.Repeat("ü", 300)
	job := runJob(deleted(time.Minute), annotated(AnnotationStuck, long))
	pods := []*corev1.Pod{runPod(waiting(launch.RunContainer, reasonConfigError, long))}

	for _, d := range []decision{
		decide(job, nil, t0, DefaultStuckAfter),
		decide(runJob(), pods, t0, DefaultStuckAfter),
		decide(runJob(), []*corev1.Pod{runPod(unschedulable(0), func(p *corev1.Pod) {
			p.Status.Conditions[0].Message = long
		})}, t0.Add(time.Hour), DefaultStuckAfter),
	} {
		if n := utf8.RuneCountInString(d.desc); n > maxDescription || !strings.HasSuffix(d.desc, "…") {
			t.Errorf("description of %d characters %q, want %d ending in …", n, d.desc, maxDescription)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	valid := Options{Namespace: "yaci-runs", Statuses: nopStatuses{}}
	tests := []struct {
		name   string
		change func(*Options)
		ok     bool
	}{
		{"defaults", func(*Options) {}, true},
		{"no namespace", func(o *Options) { o.Namespace = "" }, false},
		{"bad namespace", func(o *Options) { o.Namespace = "Runs_1" }, false},
		{"no status writer", func(o *Options) { o.Statuses = nil }, false},
		{"negative workers", func(o *Options) { o.Workers = -1 }, false},
		{"negative timeout", func(o *Options) { o.StatusTimeout = -time.Second }, false},
		{"base above max", func(o *Options) { o.RequeueBase = time.Hour }, false},
		{"base and max", func(o *Options) {
			o.RequeueBase, o.RequeueMax = time.Millisecond, time.Second
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			err := o.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadOptions) {
				t.Errorf("Validate() = %v, does not wrap ErrBadOptions", err)
			}
		})
	}
}

type nopStatuses struct{}

func (nopStatuses) SetStatus(context.Context, int64, string, string, string, trigger.Status) error {
	return nil
}
