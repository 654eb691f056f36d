package watch

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxWaitingMessage bounds the waiting message kept of a container: it is
// quoted in a status description of 140 characters at most.
const maxWaitingMessage = 200

// trim is the pod informer's transform: it drops what the watcher never
// reads before a pod enters the cache, so that thousands of pods fit in
// little memory. (Jobs are trimmed by launch.TrimJob.) Objects of other
// types, and the tombstones of deleted pods, pass as they are. Trimming
// a trimmed pod changes nothing, as informers require.
func trim(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		return trimPod(pod), nil
	}

	return obj, nil
}

// trimPod returns the part of a pod the watcher reads while its run goes
// on, which is all the cache needs (it holds pods that are not running,
// and a run's pods are read whole when it is reported): who owns it,
// whether it is being deleted, what may keep it from starting (the
// conditions decide reads and the containers that wait, with their
// images) and how its containers ended. Everything else, labels and spec
// included, is left out.
func trimPod(pod *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:                       pod.Name,
			Namespace:                  pod.Namespace,
			UID:                        pod.UID,
			ResourceVersion:            pod.ResourceVersion,
			CreationTimestamp:          pod.CreationTimestamp,
			DeletionTimestamp:          pod.DeletionTimestamp,
			DeletionGracePeriodSeconds: pod.DeletionGracePeriodSeconds,
			OwnerReferences:            pod.OwnerReferences,
		},
		Status: corev1.PodStatus{
			Phase:                 pod.Status.Phase,
			Reason:                pod.Status.Reason,
			Message:               truncate(pod.Status.Message, maxWaitingMessage),
			Conditions:            trimConditions(pod.Status.Conditions),
			InitContainerStatuses: waitingOrEnded(pod.Status.InitContainerStatuses),
			ContainerStatuses:     waitingOrEnded(pod.Status.ContainerStatuses),
		},
	}
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
