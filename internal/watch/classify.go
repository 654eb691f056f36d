package watch

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// maxDescription is the longest status description GitHub accepts, in
// characters.
const maxDescription = 140

// shortSHA is how many hex digits of a commit a description shows, as
// GitHub's own pages do.
const shortSHA = 7

// pullErrors are the waiting reasons of a container whose image the
// kubelet cannot get. None of them clears up on its own often enough to
// keep a run waiting until its deadline: the user has to fix the image.
var pullErrors = map[string]bool{
	"ErrImagePull":      true,
	"ImagePullBackOff":  true,
	"InvalidImageName":  true,
	"ErrImageNeverPull": true,
}

// reasonConfigError is the waiting reason of a container whose
// configuration (a missing Secret or ConfigMap key) cannot be met.
const reasonConfigError = "CreateContainerConfigError"

// action is what the watcher does next about a run.
type action int

const (
	// wait: the run goes on; look again after decision.recheck if set.
	wait action = iota
	// end: the run cannot finish on its own; end it, and report the
	// error decision.desc once its Job is gone.
	end
	// report: the run is over; post decision.state and decision.desc.
	report
)

// decision is what decide concluded about a run.
type decision struct {
	act     action
	state   trigger.State
	desc    string
	recheck time.Duration
}

func (d decision) String() string {
	switch d.act {
	case end:
		return "end: " + d.desc
	case report:
		return string(d.state) + ": " + d.desc
	}
	if d.recheck > 0 {
		return "wait " + d.recheck.String()
	}

	return "wait"
}

// deadlineGuard is how close to its Job's deadline a pod may end and
// still report its run on its own word. The Job controller checks the
// deadline before it counts a pod that passed, and it looks at a pod up
// to a second after the pod ended; the pod's end time is in whole
// seconds of the node's clock. A pod that ends later than this before
// the deadline cannot be overtaken by it; one that ends nearer waits for
// the Job's own verdict, which may be "timed out".
const deadlineGuard = 5 * time.Second

// decide looks at a run's Job and pods at now and says what to do. A Job
// that finished before anyone deleted it reports how it finished; one
// deleted while it ran was cancelled, for the reason its annotations
// give; one whose pod ended reports how, without waiting for the Job to
// say so; one whose pod cannot start is ended.
func decide(job *batchv1.Job, pods []*corev1.Pod, now time.Time, stuckAfter time.Duration) decision {
	if c, ok := terminal(job); ok && !cancelledFirst(job, c) {
		return finished(job, c, pods)
	}
	if job.DeletionTimestamp != nil {
		return decision{act: report, state: trigger.StateError, desc: cancelReason(job)}
	}
	if d, ok := podEnded(job, pods); ok {
		return d
	}

	return stuck(pods, now, stuckAfter)
}

// podEnded reports a run whose pod ended, before the Job controller
// marks the Job: that takes it up to a second more, as it batches the
// pod updates it reads, which is most of the time from a run's end to
// its status. A run is one pod that is never retried (launch.BuildJob
// sets no parallelism and a backoff limit of 0), so its first pod to end
// decides the Job's outcome, with two exceptions, for which the watcher
// waits for the Job: a pod stopped by a deletion, which the Job's
// deletion or failure then explains, and a pod that ends within
// deadlineGuard of the Job's deadline.
func podEnded(job *batchv1.Job, pods []*corev1.Pod) (decision, bool) {
	for _, pod := range pods {
		phase := pod.Status.Phase
		if pod.DeletionTimestamp != nil || phase != corev1.PodSucceeded && phase != corev1.PodFailed {
			continue
		}
		end := podEnd(pod)
		if end.IsZero() || nearDeadline(job, end) {
			continue
		}
		took := ""
		if start := job.Status.StartTime; start != nil {
			took = " in " + shortDuration(max(end.Sub(start.Time), 0))
		}
		if phase == corev1.PodSucceeded {
			return decision{act: report, state: trigger.StateSuccess, desc: "passed" + took}, true
		}
		if d, ok := podFailure(pod, took); ok {
			return d, true
		}
	}

	return decision{}, false
}

// podEnd returns when the last of pod's containers ended, or zero if
// none says it did.
func podEnd(pod *corev1.Pod) time.Time {
	var end time.Time
	all := [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses}
	for _, ss := range all {
		for _, s := range ss {
			if t := s.State.Terminated; t != nil && t.FinishedAt.After(end) {
				end = t.FinishedAt.Time
			}
		}
	}

	return end
}

// nearDeadline reports whether end is too near the deadline of job, or
// past it, for a pod that ended then to tell the run's outcome.
func nearDeadline(job *batchv1.Job, end time.Time) bool {
	start, limit := job.Status.StartTime, job.Spec.ActiveDeadlineSeconds
	if start == nil || limit == nil {
		return start == nil && limit != nil
	}
	deadline := start.Add(time.Duration(*limit) * time.Second)

	return !end.Add(deadlineGuard).Before(deadline)
}

// terminal returns the condition that says the Job is over, if any. The
// targets (SuccessCriteriaMet, FailureTarget) come a moment before
// Complete and Failed, once the outcome is decided but pods may still be
// stopping; acting on them reports sooner, and the outcome cannot change.
func terminal(job *batchv1.Job) (batchv1.JobCondition, bool) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet,
			batchv1.JobFailed, batchv1.JobFailureTarget:
			return c, true
		}
	}

	return batchv1.JobCondition{}, false
}

func succeeded(c batchv1.JobCondition) bool {
	return c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet
}

// cancelledFirst reports whether the Job was deleted before it ended: its
// end then comes from the deletion (pods stopped under it), not from the
// run. Kubernetes times have whole seconds; an end in the same second as
// the deletion counts as cancelled.
func cancelledFirst(job *batchv1.Job, c batchv1.JobCondition) bool {
	if job.DeletionTimestamp == nil {
		return false
	}

	return !c.LastTransitionTime.Time.Before(deletionRequested(&job.ObjectMeta))
}

// deletionRequested returns when the object's deletion was asked for: its
// deletion timestamp is that moment plus the grace period.
func deletionRequested(m metav1.Object) time.Time {
	t := m.GetDeletionTimestamp().Time
	if g := m.GetDeletionGracePeriodSeconds(); g != nil {
		t = t.Add(-time.Duration(*g) * time.Second)
	}

	return t
}

// finished describes a Job that ended on its own.
func finished(job *batchv1.Job, c batchv1.JobCondition, pods []*corev1.Pod) decision {
	took := runTime(job, c)
	if succeeded(c) {
		return decision{act: report, state: trigger.StateSuccess, desc: "passed" + took}
	}
	if c.Reason == batchv1.JobReasonDeadlineExceeded {
		return errorDecision("timed out after " + deadline(job))
	}

	return failed(c, pods, took)
}

// failed describes a Job that failed for another reason than its
// deadline, from what its pods say.
func failed(c batchv1.JobCondition, pods []*corev1.Pod, took string) decision {
	for _, pod := range pods {
		if d, ok := podFailure(pod, took); ok {
			return d
		}
	}
	if len(pods) == 0 {
		return errorDecision("cancelled: its pod was deleted before it finished")
	}

	return errorDecision(truncate("ended without a result: "+c.Reason, maxDescription))
}

// podFailure describes how pod failed, if it says.
func podFailure(pod *corev1.Pod, took string) (decision, bool) {
	if pod.Status.Reason == "Evicted" {
		return errorDecision(truncate("its pod was evicted: "+pod.Status.Message,
			maxDescription)), true
	}
	if c := podCondition(pod, corev1.DisruptionTarget); c != nil &&
		c.Status == corev1.ConditionTrue {
		return errorDecision(truncate("its pod was stopped: "+orElse(c.Message, c.Reason),
			maxDescription)), true
	}
	if t := terminated(pod.Status.InitContainerStatuses, launch.CloneContainer); t != nil &&
		t.ExitCode != 0 {
		return errorDecision("could not clone the commit"), true
	}

	t := terminated(pod.Status.ContainerStatuses, launch.RunContainer)
	if pod.DeletionTimestamp != nil &&
		(t == nil || !t.FinishedAt.Time.Before(deletionRequested(&pod.ObjectMeta))) {
		return errorDecision("cancelled: its pod was deleted before it finished"), true
	}
	if t == nil || t.ExitCode == 0 {
		return decision{}, false
	}

	why := " (exit code " + strconv.Itoa(int(t.ExitCode)) + ")"
	if t.Reason == "OOMKilled" {
		why = ": out of memory" + why
	}

	return decision{act: report, state: trigger.StateFailure, desc: "failed" + took + why}, true
}

// stuck decides about a running Job from its pods: one that waits for an
// image that cannot be pulled, or for a configuration that cannot be
// met, ends now; one no node can take ends once it has waited
// stuckAfter, and until then the watcher looks again when that time is up.
func stuck(pods []*corev1.Pod, now time.Time, stuckAfter time.Duration) decision {
	next := decision{act: wait}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed ||
			pod.Status.Phase == corev1.PodSucceeded {
			continue
		}
		if desc, ok := cannotStart(pod); ok {
			return decision{act: end, state: trigger.StateError, desc: desc}
		}

		c := podCondition(pod, corev1.PodScheduled)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
			continue
		}
		waited := now.Sub(c.LastTransitionTime.Time)
		if waited >= stuckAfter {
			desc := "no node could run it for " + shortDuration(stuckAfter) + ": " + c.Message
			return decision{act: end, state: trigger.StateError,
				desc: truncate(desc, maxDescription)}
		}
		if left := stuckAfter - waited; next.recheck == 0 || left < next.recheck {
			next.recheck = left
		}
	}

	return next
}

// cannotStart returns why a container of pod can never start, if one
// waits for something that will not come.
func cannotStart(pod *corev1.Pod) (string, bool) {
	statuses := append(append([]corev1.ContainerStatus(nil),
		pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, s := range statuses {
		w := s.State.Waiting
		switch {
		case w == nil:
		case pullErrors[w.Reason]:
			// A waiting container's status names the image as its
			// spec does; the trimmed pod keeps only the status.
			if s.Image == "" {
				return "the image of container " + s.Name + " could not be pulled", true
			}
			return truncate(fmt.Sprintf("image %s could not be pulled", s.Image),
				maxDescription), true
		case w.Reason == reasonConfigError:
			return truncate(fmt.Sprintf("container %s could not be created: %s",
				s.Name, w.Message), maxDescription), true
		}
	}

	return "", false
}

// cancelReason says why a Job was deleted before it ended, from the
// annotations of whoever deleted it.
func cancelReason(job *batchv1.Job) string {
	a := job.Annotations
	switch by := a[AnnotationSupersededBy]; {
	case by == SupersededByClose:
		return "cancelled: pull request closed"
	case by != "":
		return "superseded by " + by[:min(len(by), shortSHA)]
	case a[AnnotationStuck] != "":
		return truncate(a[AnnotationStuck], maxDescription)
	}

	return "cancelled: job was deleted"
}

func errorDecision(desc string) decision {
	return decision{act: report, state: trigger.StateError, desc: desc}
}

// runTime returns " in 3m12s", the time from the Job's start to its end
// at c, or "" when the Job never started.
func runTime(job *batchv1.Job, c batchv1.JobCondition) string {
	start := job.Status.StartTime
	if start == nil {
		return ""
	}
	stop := c.LastTransitionTime.Time
	if job.Status.CompletionTime != nil {
		stop = job.Status.CompletionTime.Time
	}

	return " in " + shortDuration(max(stop.Sub(start.Time), 0))
}

// deadline returns the Job's active deadline, as a short duration.
func deadline(job *batchv1.Job) string {
	if job.Spec.ActiveDeadlineSeconds == nil {
		return "its deadline"
	}

	return shortDuration(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second)
}

// shortDuration formats d in whole seconds without zero tails: "20m",
// "3m12s", "1h", "1h0m5s".
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}

	return s
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}

	return nil
}

// terminated returns the terminated state of the named container, if it
// has one.
func terminated(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStateTerminated {
	for _, s := range statuses {
		if s.Name == name {
			return s.State.Terminated
		}
	}

	return nil
}

func orElse(s, def string) string {
	if s != "" {
		return s
	}

	return def
}

// truncate shortens s to at most n characters, marking a cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}

	return string([]rune(s)[:n-1]) + "…"
}
