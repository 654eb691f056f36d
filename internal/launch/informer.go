package launch

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// lastApplied is the annotation in which kubectl apply keeps a whole copy
// of the object; a Job someone applied by hand would carry its pod
// template twice.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// NewJobInformer returns an informer of the runs' Jobs in namespace,
// not yet running, whose cache holds each Job trimmed by TrimJob. The
// watcher and the admitter of one term of leadership share one, so that
// the leader holds each Job once: with thousands of runs, the Jobs are
// most of its memory.
func NewJobInformer(client kubernetes.Interface, namespace string) cache.SharedIndexInformer {
	// No resync: every change of a Job comes as an event, and what waits
	// on time alone (a stuck pod, a retry) is requeued with its delay.
	inf := batchinformers.NewFilteredJobInformer(client, namespace, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(lo *metav1.ListOptions) { lo.LabelSelector = Selector })
	// SetTransform fails only on an informer that already runs.
	_ = inf.SetTransform(TrimJob)

	return inf
}

// TrimJob is the Job informers' transform. It drops what neither the
// watcher nor the admitter reads before a Job enters a cache: managed
// fields, kubectl's copy of the object, and the pod template (the bulk of
// a run's Job: script, environment, volumes) with its selector. What
// stays is the Job's metadata (RunFromJob reads it back whole), status
// and the spec fields that say how it runs. Objects of other types, and
// the tombstones of deleted Jobs, pass as they are; trimming a trimmed
// Job changes nothing, as informers require. The informer owns the
// object at this point, so it is changed in place.
func TrimJob(obj any) (any, error) {
	if job, ok := obj.(*batchv1.Job); ok {
		job.ManagedFields = nil
		delete(job.Annotations, lastApplied)
		job.Spec.Template = corev1.PodTemplateSpec{}
		job.Spec.Selector = nil
	}

	return obj, nil
}
