package logs

import (
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/yaci-ci/yaci/internal/launch"
)

// jobNameLabel is the label the Job controller puts on the pods of a Job.
const jobNameLabel = "batch.kubernetes.io/job-name"

// runFromJob describes a run from its Job and the Job's pods, which it
// orders oldest first. Pods the Job does not own (by UID) are left out,
// so that a Job deleted and made again under the same name never shows
// the old one's pods.
func runFromJob(job *batchv1.Job, pods []*corev1.Pod) (*Run, error) {
	info, err := launch.RunFromJob(job)
	if err != nil {
		return nil, err
	}

	run := &Run{
		Name:          job.Name,
		Namespace:     job.Namespace,
		JobUID:        string(job.UID),
		Repo:          info.Repo.FullName(),
		SHA:           info.SHA,
		Job:           info.Job,
		Event:         string(info.Event),
		Attempt:       info.Attempt,
		Delivery:      info.Delivery,
		Ref:           info.Ref,
		Branch:        info.Branch,
		PullRequest:   info.PullRequest,
		StatusContext: info.StatusContext,
		Pods:          []Pod{},
	}
	run.State, run.Reason, run.Finished = jobState(job, pods)
	if t := job.Status.StartTime; t != nil {
		run.Started = ptrTime(t.Time)
	}

	owned := slices.DeleteFunc(slices.Clone(pods), func(p *corev1.Pod) bool {
		return !ownedBy(p, job)
	})
	slices.SortStableFunc(owned, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, p := range owned {
		run.Pods = append(run.Pods, podFrom(p))
	}

	return run, nil
}

func ownedBy(pod *corev1.Pod, job *batchv1.Job) bool {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == "Job" && ref.UID == job.UID {
			return true
		}
	}

	return false
}

// jobState reads a run's state from its Job: the Job controller's final
// conditions first, then whether it waits for admission, then whether
// any pod got past Pending.
func jobState(job *batchv1.Job, pods []*corev1.Pod) (RunState, string, *time.Time) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			end := c.LastTransitionTime.Time
			if job.Status.CompletionTime != nil {
				end = job.Status.CompletionTime.Time
			}
			return StateSuccess, "", ptrTime(end)
		case batchv1.JobFailed:
			reason := c.Reason
			if c.Message != "" {
				reason += ": " + c.Message
			}
			return StateFailure, reason, ptrTime(c.LastTransitionTime.Time)
		}
	}

	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		return StateQueued, "", nil
	}
	// A pod that has ended belongs to a Job about to be marked so.
	for _, p := range pods {
		if ownedBy(p, job) && p.Status.Phase != corev1.PodPending {
			return StateRunning, "", nil
		}
	}

	return StatePending, "", nil
}

// podFrom describes a pod and its containers, init containers first, in
// the order of its spec.
func podFrom(p *corev1.Pod) Pod {
	pod := Pod{Name: p.Name, Phase: string(p.Status.Phase)}
	for _, c := range p.Spec.InitContainers {
		ctr := containerFrom(c.Name, p.Status.InitContainerStatuses)
		ctr.Init = true
		pod.Containers = append(pod.Containers, ctr)
	}
	for _, c := range p.Spec.Containers {
		pod.Containers = append(pod.Containers, containerFrom(c.Name, p.Status.ContainerStatuses))
	}

	return pod
}

func containerFrom(name string, statuses []corev1.ContainerStatus) Container {
	ctr := Container{Name: name, State: "waiting"}
	i := slices.IndexFunc(statuses, func(s corev1.ContainerStatus) bool { return s.Name == name })
	if i < 0 {
		return ctr
	}

	st := statuses[i].State
	switch {
	case st.Terminated != nil:
		ctr.State = "terminated"
		code := st.Terminated.ExitCode
		ctr.ExitCode = &code
		ctr.Reason = st.Terminated.Reason
	case st.Running != nil:
		ctr.State = "running"
	case st.Waiting != nil:
		ctr.Reason = st.Waiting.Reason
	}

	return ctr
}

func ptrTime(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

// podsSelector selects the pods of the Job called name.
func podsSelector(name string) string { return fmt.Sprintf("%s=%s", jobNameLabel, name) }
