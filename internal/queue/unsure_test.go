package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
)

// errLost stands for a patch whose answer never came back.
var errLost = errors.New("connection reset by peer")

// TestLostAnswer has the API server lose the answer to the first
// admission patch, once after applying it and once without, and checks
// that the Admitter reads the Job back instead of guessing: an applied
// patch is not sent again and keeps its slot; one that was not applied
// is sent again.
func TestLostAnswer(t *testing.T) {
	tests := []struct {
		name        string
		applied     bool
		wantPatches int
	}{
		{"applied", true, 1},
		{"not applied", false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const ns = "ci"
			yaci := func(j *batchv1.Job) {
				j.Namespace = ns
				j.Labels[launch.LabelManagedBy] = launch.ManagedBy
				j.Labels[launch.LabelName] = launch.AppName
			}
			client := fake.NewClientset(
				job("first", "r", t0, yaci),
				job("second", "r", t0.Add(time.Second), yaci))

			var mu sync.Mutex
			patches := map[string]int{}
			gets := 0
			client.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				gets++
				return false, nil, nil
			})
			client.PrependReactor("patch", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				name := a.(k8stesting.PatchAction).GetName()
				patches[name]++
				if name != "first" || patches[name] > 1 {
					return false, nil, nil
				}
				if tt.applied {
					_, _, err := k8stesting.ObjectReaction(client.Tracker())(a)
					if err != nil {
						return true, nil, err
					}
				}
				return true, nil, errLost
			})

			observed := map[string]int{}
			a, err := New(client, Options{Namespace: ns, MaxRunning: 1,
				Logger: slog.New(slog.DiscardHandler),
				Observe: func(ad Admission) {
					mu.Lock()
					defer mu.Unlock()
					observed[ad.Job]++
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
			}()

			jobs := client.BatchV1().Jobs(ns)
			first := waitAdmitted(t, client, ns, "first")
			// The slot is taken: the second Job must wait for the first
			// to finish, however many passes run meanwhile.
			time.Sleep(200 * time.Millisecond)
			if !ptr.Deref(read(t, client, ns, "second").Spec.Suspend, false) {
				t.Fatal("second job admitted while the first runs")
			}

			first.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue},
			}
			if _, err := jobs.UpdateStatus(t.Context(), first, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitAdmitted(t, client, ns, "second")

			mu.Lock()
			defer mu.Unlock()
			if patches["first"] != tt.wantPatches {
				t.Errorf("first job patched %d times, want %d", patches["first"], tt.wantPatches)
			}
			if observed["first"] != 1 || observed["second"] != 1 {
				t.Errorf("observed admissions %v, want one of each job", observed)
			}
			if gets == 0 {
				t.Error("the Admitter never read the job whose answer was lost")
			}
		})
	}
}

// waitAdmitted waits until the Job name is unsuspended and returns it.
func waitAdmitted(t *testing.T, client *fake.Clientset, ns, name string) *batchv1.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j := read(t, client, ns, name)
		if !ptr.Deref(j.Spec.Suspend, true) {
			if j.Annotations[AnnotationAdmittedAt] == "" {
				t.Fatalf("job %s started without %s", name, AnnotationAdmittedAt)
			}
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never admitted", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// read returns the Job name from the fake's store, past its reactors, so
// that the test's own reads are not counted as the Admitter's.
func read(t *testing.T, client *fake.Clientset, ns, name string) *batchv1.Job {
	t.Helper()
	obj, err := client.Tracker().Get(batchv1.SchemeGroupVersion.WithResource("jobs"), ns, name)
	if err != nil {
		t.Fatalf("read job %s: %v", name, err)
	}

	return obj.(*batchv1.Job)
}
