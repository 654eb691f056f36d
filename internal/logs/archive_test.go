package logs

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yaci-ci/yaci/internal/launch"
)

// logReads counts the pod log requests client has seen.
func logReads(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "get" && a.GetSubresource() == "log" {
			n++
		}
	}

	return n
}

func TestArchiveIsIdempotent(t *testing.T) {
	client := fake.NewClientset()
	store := newTestStore(t, 0)
	a := NewArchiver(client, store, ArchiverOptions{Logger: slog.New(slog.DiscardHandler)})
	job, pod := endedJob(t, testRunFor("unit"), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))

	if err := a.Archive(t.Context(), job, []*corev1.Pod{pod}); err != nil {
		t.Fatal(err)
	}
	if got := logReads(client); got != 2 {
		t.Errorf("first archive read %d logs, want 2 (clone and run)", got)
	}
	run, err := store.GetRun(t.Context(), job.Name)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != StateSuccess || run.Archived == nil || run.Delivery == "" ||
		run.Duration(time.Time{}) != 83*time.Second {
		t.Errorf("archived run = %+v", run)
	}
	// The fake API server answers every log request with "fake logs".
	if got := readLog(t, store, job.Name, pod.Name, "run"); got != "fake logs" {
		t.Errorf("archived log = %q", got)
	}

	if err := a.Archive(t.Context(), job, []*corev1.Pod{pod}); err != nil {
		t.Fatal(err)
	}
	if got := logReads(client); got != 2 {
		t.Errorf("archiving again read logs again (%d reads in all)", got)
	}

	// A new Job of the same name is a new run, archived anew.
	again := job.DeepCopy()
	again.UID = "another-uid"
	pod.OwnerReferences[0].UID = again.UID
	if err := a.Archive(t.Context(), again, []*corev1.Pod{pod}); err != nil {
		t.Fatal(err)
	}
	if got := logReads(client); got != 4 {
		t.Errorf("a new Job of the same name was not archived anew (%d reads in all)", got)
	}
}

func TestArchiveRefusesOtherJobs(t *testing.T) {
	a := NewArchiver(fake.NewClientset(), newTestStore(t, 0), ArchiverOptions{})
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "not-yaci", Namespace: "x"}}

	err := a.Archive(t.Context(), job, nil)
	if !errors.Is(err, launch.ErrNotRun) {
		t.Errorf("err = %v, want launch.ErrNotRun", err)
	}
}
