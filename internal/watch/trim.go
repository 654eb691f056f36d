package watch

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// maxWaitingMessage bounds the waiting message kept of a container: it is
// quoted in a status description of 140 characters at most.
const maxWaitingMessage = 200

// trim is the pod informer's transform: it turns a pod into a cachedPod
// before it enters the cache, so that thousands of pods fit in little
// memory. (Jobs are trimmed by launch.TrimJob.) Objects of other types,
// and the tombstones of deleted pods, pass as they are; a cachedPod is
// already trimmed, as informers require.
func trim(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		return newCachedPod(pod), nil
	}

	return obj, nil
}

// cachedPod is what the pod cache keeps of a pod: what the watcher reads
// while the pod's run goes on (it caches pods that are not running, and
// reads a run's pods whole when it is reported). That is who owns the
// pod, whether it is being deleted, what may keep it from starting (the
// conditions decide reads and the containers that wait, with their
// images) and how its containers ended. It is a type of its own rather
// than a *corev1.Pod with the rest left empty because the empty fields
// of a Pod, its spec above all, take a kilobyte of every cached pod.
type cachedPod struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Phase      corev1.PodPhase
	Reason     string
	Message    string
	Conditions []corev1.PodCondition
	// InitContainers and Containers are the statuses of the containers
	// that wait or ended, trimmed.
	InitContainers []corev1.ContainerStatus
	Containers     []corev1.ContainerStatus
}

// newCachedPod returns the part of pod the watcher reads.
func newCachedPod(pod *corev1.Pod) *cachedPod {
	return &cachedPod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:                       pod.Name,
			Namespace:                  pod.Namespace,
			UID:                        pod.UID,
			ResourceVersion:            pod.ResourceVersion,
			DeletionTimestamp:          pod.DeletionTimestamp,
			DeletionGracePeriodSeconds: pod.DeletionGracePeriodSeconds,
			OwnerReferences:            pod.OwnerReferences,
		},
		Phase:          pod.Status.Phase,
		Reason:         pod.Status.Reason,
		Message:        truncate(pod.Status.Message, maxWaitingMessage),
		Conditions:     trimConditions(pod.Status.Conditions),
		InitContainers: waitingOrEnded(pod.Status.InitContainerStatuses),
		Containers:     waitingOrEnded(pod.Status.ContainerStatuses),
	}
}

// pod returns c as a pod with only the fields c keeps, which is what
// decide reads. The slices are shared with c; they must not be changed.
func (c *cachedPod) pod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   c.TypeMeta,
		ObjectMeta: c.ObjectMeta,
		Status: corev1.PodStatus{
			Phase:                 c.Phase,
			Reason:                c.Reason,
			Message:               c.Message,
			Conditions:            c.Conditions,
			InitContainerStatuses: c.InitContainers,
			ContainerStatuses:     c.Containers,
		},
	}
}

// DeepCopyObject makes cachedPod a runtime.Object, which an informer's
// cache holds.
func (c *cachedPod) DeepCopyObject() runtime.Object {
	out := *c
	c.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Conditions = slices.Clone(c.Conditions)
	out.InitContainers = copyStatuses(c.InitContainers)
	out.Containers = copyStatuses(c.Containers)

	return &out
}

func copyStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if ss == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i := range ss {
		ss[i].DeepCopyInto(&out[i])
	}

	return out
}

// trimConditions keeps the pod conditions decide reads: that the pod
// is not scheduled, and that it is disrupted. Every pod of a node has the
// other side of the first, so keeping only this side saves much.
func trimConditions(cs []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range cs {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse ||
			c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			c.LastProbeTime = metav1.Time{}
			c.Message = truncate(c.Message, maxWaitingMessage)
			out = append(out, c)
		}
	}

	return out
}

// waitingOrEnded returns the statuses of the containers that wait, each
// with its name, image and why it waits, and of those that ended, each
// with its name, exit code, reason and end time. A running container's
// status says nothing the watcher reads.
func waitingOrEnded(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, s := range ss {
		switch {
		case s.State.Waiting != nil:
			w := s.State.Waiting
			out = append(out, corev1.ContainerStatus{
				Name:  s.Name,
				Image: s.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason:  w.Reason,
					Message: truncate(w.Message, maxWaitingMessage),
				}},
			})
		case s.State.Terminated != nil:
			t := s.State.Terminated
			out = append(out, corev1.ContainerStatus{
				Name: s.Name,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode:   t.ExitCode,
					Reason:     t.Reason,
					FinishedAt: t.FinishedAt,
				}},
			})
		}
	}

	return out
}
