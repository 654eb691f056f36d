package watch

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
)

func TestTrimPod(t *testing.T) {
	pod := runPod(waiting(launch.RunContainer, "ImagePullBackOff", "Back-off pulling image"),
		unschedulable(0))
	pod.Labels = map[string]string{launch.LabelManagedBy: launch.ManagedBy}
	pod.Annotations = map[string]string{"note": "x"}
	pod.OwnerReferences = []metav1.OwnerReference{{Kind: "Job", Name: "yaci-test-1", Controller: ptr.To(true)}}
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
	cached := got.(*cachedPod)
	trimmed := cached.pod()
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
	if got := newCachedPod(running).pod().Status.ContainerStatuses; got != nil {
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
	if c := newCachedPod(scheduled).pod().Status.Conditions; len(c) != 1 || c[0].Type != corev1.DisruptionTarget {
		t.Errorf("conditions of a scheduled, disrupted pod = %+v, want the disruption only", c)
	}

	again, _ := trim(cached)
	if again != cached {
		t.Error("trimming a cached pod made a new object")
	}
	cp := cached.DeepCopyObject().(*cachedPod)
	if !reflect.DeepEqual(cp, cached) {
		t.Errorf("deep copy %+v differs from %+v", cp, cached)
	}
	cp.Containers[0].State.Waiting.Reason = "changed"
	cp.OwnerReferences[0].Name = "changed"
	if cached.Containers[0].State.Waiting.Reason == "changed" || cached.OwnerReferences[0].Name == "changed" {
		t.Error("the deep copy shares what it should own")
	}
	if keys := podJobKeysOf(cached); !reflect.DeepEqual(keys, []string{"/yaci-test-1"}) {
		t.Errorf("cached pod indexed under %v, want its Job", keys)
	}
}

func TestTrimPassesOthers(t *testing.T) {
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/x", Obj: runPod()}
	got, err := trim(tomb)
	if err != nil || !reflect.DeepEqual(got, tomb) {
		t.Errorf("trim(tombstone) = %v, %v; want it unchanged", got, err)
	}
}
