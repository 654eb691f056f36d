package watch

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

func TestTrimJob(t *testing.T) {
	run := trigger.Run{
		Event: trigger.Event{
			Kind: repoconfig.EventPush, SHA: "0d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
			Repo:   trigger.Repo{Owner: "octo", Name: "app", CloneURL: "https://github.com/octo/app.git"},
			Ref:    "refs/heads/main",
			Branch: "main", Message: "Make the parser stricter",
		},
		Job: repoconfig.Job{Name: "test", Image: "golang:1.26", Run: "go vet ./...\ngo test ./...",
			Env: []repoconfig.EnvVar{{Name: "GOFLAGS", Value: "-mod=readonly"}}},
		Attempt: 1,
	}
	job, err := launch.BuildJob(run, launch.Options{Namespace: "runs"})
	if err != nil {
		t.Fatal(err)
	}
	job.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}
	job.Annotations[lastApplied] = `{"kind":"Job"}`
	before := size(t, job)
	want := job.DeepCopy()

	got, err := trim(job)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := got.(*batchv1.Job)
	if trimmed.ManagedFields != nil || trimmed.Annotations[lastApplied] != "" {
		t.Error("managed fields or kubectl's last applied copy kept")
	}
	if !reflect.DeepEqual(trimmed.Spec.Template, corev1.PodTemplateSpec{}) {
		t.Error("pod template kept")
	}
	delete(want.Annotations, lastApplied)
	if !reflect.DeepEqual(trimmed.Labels, want.Labels) ||
		!reflect.DeepEqual(trimmed.Annotations, want.Annotations) ||
		!reflect.DeepEqual(trimmed.Finalizers, want.Finalizers) ||
		!reflect.DeepEqual(trimmed.Spec.ActiveDeadlineSeconds, want.Spec.ActiveDeadlineSeconds) {
		t.Error("trimming changed what the watcher reads")
	}
	if _, err := launch.RunFromJob(trimmed); err != nil {
		t.Errorf("RunFromJob on the trimmed job: %v", err)
	}
	t.Logf("job: %d bytes of JSON, %d trimmed", before, size(t, trimmed))

	again, _ := trim(trimmed.DeepCopy())
	if !reflect.DeepEqual(again, trimmed) {
		t.Error("trimming twice differs from trimming once")
	}
}

func TestTrimPod(t *testing.T) {
	pod := runPod(waiting(launch.RunContainer, "ImagePullBackOff", "Back-off pulling image"),
		unschedulable(0))
	pod.Labels = map[string]string{launch.LabelManagedBy: launch.ManagedBy}
	pod.Annotations = map[string]string{"note": "x"}
	pod.OwnerReferences = []metav1.OwnerReference{{Kind: "Job", Name: "yaci-test-1"}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GOFLAGS", Value: "-mod=readonly"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "workspace"}}
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{
		Name: launch.CloneContainer, ImageID: "sha256:0123", ContainerID: "containerd://abc",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", Message: "cloned", ContainerID: "containerd://abc",
			StartedAt: at(time.Second), FinishedAt: at(3 * time.Second),
		}},
	}}
	pod.Status.ContainerStatuses[0].ImageID = "sha256:4567"
	pod.Status.Conditions = append(pod.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse})

	got, err := trim(pod)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := got.(*corev1.Pod)
	if trimmed.Labels != nil || trimmed.Annotations != nil ||
		!reflect.DeepEqual(trimmed.Spec, corev1.PodSpec{}) {
		t.Errorf("trimmed pod keeps what the watcher does not read: %+v", trimmed)
	}
	wantInit := []corev1.ContainerStatus{{Name: launch.CloneContainer,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", FinishedAt: at(3 * time.Second),
		}}}}
	if got := trimmed.Status.InitContainerStatuses; !reflect.DeepEqual(got, wantInit) {
		t.Errorf("init container statuses = %+v, want %+v: how the clone ended", got, wantInit)
	}
	running := runPod(func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: launch.RunContainer,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(0)}}}}
	})
	if got := trimPod(running).Status.ContainerStatuses; got != nil {
		t.Errorf("running container statuses = %+v, want none: they say nothing decide reads", got)
	}
	want := []corev1.ContainerStatus{{Name: launch.RunContainer, Image: "golang:1.26",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ImagePullBackOff", Message: "Back-off pulling image",
		}}}}
	if got := trimmed.Status.ContainerStatuses; !reflect.DeepEqual(got, want) {
		t.Errorf("container statuses = %+v, want %+v", got, want)
	}
	conds := trimmed.Status.Conditions
	if len(conds) != 1 || conds[0].Type != corev1.PodScheduled {
		t.Errorf("conditions = %+v, want the unscheduled one only", trimmed.Status.Conditions)
	}
	if !reflect.DeepEqual(trimmed.OwnerReferences, pod.OwnerReferences) {
		t.Error("trimming lost the owner")
	}

	scheduled := runPod(func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "EvictionByEvictionAPI"},
		}
	})
	if c := trimPod(scheduled).Status.Conditions; len(c) != 1 || c[0].Type != corev1.DisruptionTarget {
		t.Errorf("conditions of a scheduled, disrupted pod = %+v, want the disruption only", c)
	}

	again, _ := trim(trimmed)
	if !reflect.DeepEqual(again, trimmed) {
		t.Error("trimming twice differs from trimming once")
	}
}

func TestTrimPassesOthers(t *testing.T) {
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/x", Obj: runPod()}
	got, err := trim(tomb)
	if err != nil || !reflect.DeepEqual(got, tomb) {
		t.Errorf("trim(tombstone) = %v, %v; want it unchanged", got, err)
	}
}

func size(t *testing.T, obj any) int {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}

	return len(b)
}
