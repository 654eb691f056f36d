package launch_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// TestRunFromJobRoundTrip checks that what BuildJob writes, RunFromJob
// reads back, even for names that labels cannot hold verbatim.
func TestRunFromJobRoundTrip(t *testing.T) {
	odd := pushRun()
	odd.Event.Repo.Name = strings.Repeat("long.name_", 10)
	odd.Job.Name = "Build & Test (linux)"
	odd.Event.InstallationID = 0
	odd.Event.Branch = "feature/$(x)"
	odd.Event.HeadAt = time.Time{}

	for name, run := range map[string]trigger.Run{
		"push": pushRun(), "pull_request": prRun(), "odd names": odd,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := launch.RunFromJob(buildJob(t, run, testOptions))
			if err != nil {
				t.Fatalf("RunFromJob: %v", err)
			}
			ev := run.Event
			want := launch.RunInfo{
				Name: run.Name(),
				Repo: trigger.Repo{
					Owner: ev.Repo.Owner, Name: ev.Repo.Name, CloneURL: ev.Repo.CloneURL,
				},
				SHA:            ev.SHA,
				Job:            run.Job.Name,
				Event:          ev.Kind,
				Attempt:        run.Attempt,
				Delivery:       ev.Delivery,
				Ref:            ev.Ref,
				Branch:         ev.Branch,
				InstallationID: ev.InstallationID,
				StatusContext:  run.StatusContext(),
				HeadAt:         ev.HeadAt,
			}
			if ev.PullRequest != nil {
				want.PullRequest = ev.PullRequest.Number
			}
			if got != want {
				t.Errorf("RunFromJob =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

func TestRunFromJobErrors(t *testing.T) {
	bad, notRun := launch.ErrBadRunMetadata, launch.ErrNotRun
	tests := []struct {
		name   string
		change func(*batchv1.Job)
		want   error
	}{
		{"not yaci's", dropLabel(launch.LabelManagedBy), notRun},
		{"other manager", setLabel(launch.LabelManagedBy, "helm"), notRun},
		{"no repo", dropAnnotation(launch.AnnotationRepo), bad},
		{"repo without owner", setAnnotation(launch.AnnotationRepo, "/x"), bad},
		{"short sha", setLabel(launch.LabelSHA, "abc"), bad},
		{"no job", dropAnnotation(launch.AnnotationJob), bad},
		{"bad attempt", setLabel(launch.LabelAttempt, "0"), bad},
		{"bad event", setLabel(launch.LabelEvent, "issues"), bad},
		{"pr without number", dropAnnotation(launch.AnnotationPR), bad},
		{"no status context", dropAnnotation(launch.AnnotationStatusContext), bad},
		{"bad installation", setAnnotation(launch.AnnotationInstallation, "x"), bad},
		{"bad head time", setAnnotation(launch.AnnotationHeadAt, "yesterday"), bad},
		{"no metadata at all", func(j *batchv1.Job) {
			j.ObjectMeta = metav1.ObjectMeta{Name: j.Name}
		}, notRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := buildJob(t, prRun(), testOptions)
			job.Annotations[launch.AnnotationInstallation] = "7"
			tt.change(job)
			if _, err := launch.RunFromJob(job); !errors.Is(err, tt.want) {
				t.Errorf("RunFromJob = %v, want %v", err, tt.want)
			}
		})
	}
}

func setLabel(k, v string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Labels[k] = v }
}

func dropLabel(k string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { delete(j.Labels, k) }
}

func setAnnotation(k, v string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Annotations[k] = v }
}

func dropAnnotation(k string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { delete(j.Annotations, k) }
}

// TestSelector checks that the watcher's selector matches what BuildJob
// labels.
func TestSelector(t *testing.T) {
	sel, err := metav1.ParseToLabelSelector(launch.Selector)
	if err != nil {
		t.Fatal(err)
	}
	job := buildJob(t, pushRun(), testOptions)
	for k, v := range sel.MatchLabels {
		if job.Labels[k] != v || job.Spec.Template.Labels[k] != v {
			t.Errorf("selector wants %s=%s; job has %q, pod %q",
				k, v, job.Labels[k], job.Spec.Template.Labels[k])
		}
	}
	if len(sel.MatchLabels) != 2 {
		t.Errorf("selector %q has %d terms, want 2", launch.Selector, len(sel.MatchLabels))
	}
}
