package launch_test

import (
	"encoding/json"
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/yaci-ci/yaci/internal/launch"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func TestTrimJob(t *testing.T) {
	run := pushRun()
	job, err := launch.BuildJob(run, launch.Options{Namespace: "runs"})
	if err != nil {
		t.Fatal(err)
	}
	job.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}
	job.Annotations[lastApplied] = `{"kind":"Job"}`
	before := jsonSize(t, job)
	want := job.DeepCopy()

	got, err := launch.TrimJob(job)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := got.(*batchv1.Job)
	if trimmed.ManagedFields != nil || trimmed.Annotations[lastApplied] != "" {
		t.Error("managed fields or kubectl's last applied copy kept")
	}
	if !reflect.DeepEqual(trimmed.Spec.Template, corev1.PodTemplateSpec{}) ||
		trimmed.Spec.Selector != nil {
		t.Error("pod template or selector kept")
	}
	delete(want.Annotations, lastApplied)
	if !reflect.DeepEqual(trimmed.Labels, want.Labels) ||
		!reflect.DeepEqual(trimmed.Annotations, want.Annotations) ||
		!reflect.DeepEqual(trimmed.Finalizers, want.Finalizers) ||
		!reflect.DeepEqual(trimmed.Spec.ActiveDeadlineSeconds, want.Spec.ActiveDeadlineSeconds) ||
		!reflect.DeepEqual(trimmed.Spec.Suspend, want.Spec.Suspend) {
		t.Error("trimming changed what the watcher or the admitter reads")
	}
	back, err := launch.RunFromJob(trimmed)
	if err != nil {
		t.Fatalf("RunFromJob on the trimmed job: %v", err)
	}
	if back.SHA != run.Event.SHA || back.StatusContext == "" {
		t.Errorf("RunFromJob on the trimmed job = %+v", back)
	}
	t.Logf("job: %d bytes of JSON, %d trimmed", before, jsonSize(t, trimmed))

	again, _ := launch.TrimJob(trimmed.DeepCopy())
	if !reflect.DeepEqual(again, trimmed) {
		t.Error("trimming twice differs from trimming once")
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "runs/x", Obj: want}
	if got, _ := launch.TrimJob(tomb); !reflect.DeepEqual(got, tomb) {
		t.Error("a tombstone was changed")
	}
}

// TestJobInformer checks that the informer holds the runs' Jobs only, and
// trimmed.
func TestJobInformer(t *testing.T) {
	ours, err := launch.BuildJob(pushRun(), launch.Options{Namespace: "runs"})
	if err != nil {
		t.Fatal(err)
	}
	other := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "runs"}}
	cs := fake.NewClientset(ours, other)

	inf := launch.NewJobInformer(cs, "runs")
	go inf.RunWithContext(t.Context())
	if !cache.WaitForCacheSync(t.Context().Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	keys := inf.GetStore().ListKeys()
	if len(keys) != 1 || keys[0] != "runs/"+ours.Name {
		t.Fatalf("cached %v, want only runs/%s", keys, ours.Name)
	}
	obj, _, _ := inf.GetStore().GetByKey(keys[0])
	if len(obj.(*batchv1.Job).Spec.Template.Spec.Containers) != 0 {
		t.Error("cached job keeps its pod template")
	}
}

func jsonSize(t *testing.T, obj any) int {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}

	return len(b)
}
