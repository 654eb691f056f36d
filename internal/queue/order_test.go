package queue

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// queues builds per-repository queues from "repo:name" items, each queued
// a second after the one before it.
func queues(items ...string) map[string][]entry {
	q := make(map[string][]entry)
	for i, it := range items {
		repo, name, _ := strings.Cut(it, ":")
		since := t0.Add(time.Duration(i) * time.Second)
		q[repo] = append(q[repo], entry{name: name, repo: repo, since: since})
	}

	return q
}

func names(es []entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.name)
	}

	return out
}

func TestAdmissions(t *testing.T) {
	three := queues("a:a1", "a:a2", "a:a3", "b:b1", "c:c1", "c:c2")
	tests := []struct {
		name       string
		s          state
		maxRunning int
		maxPerRepo int
		want       []string
	}{
		{"nothing queued", state{}, 10, 10, nil},
		{"round-robin from the first repository", state{queued: three}, 10, 10,
			[]string{"a1", "b1", "c1", "a2", "c2", "a3"}},
		{"starts after the repository served last", state{queued: three, last: "a"}, 10, 10,
			[]string{"b1", "c1", "a1", "c2", "a2", "a3"}},
		{"last served wraps around", state{queued: three, last: "c"}, 10, 10,
			[]string{"a1", "b1", "c1", "a2", "c2", "a3"}},
		{"last served has nothing queued any more", state{queued: three, last: "bb"}, 10, 10,
			[]string{"c1", "a1", "b1", "c2", "a2", "a3"}},
		{"global limit counts running jobs", state{queued: three, total: 8}, 10, 10,
			[]string{"a1", "b1"}},
		{"global limit reached", state{queued: three, total: 10}, 10, 10, nil},
		{"per-repository limit passes a turn", state{
			queued: three, running: map[string]int{"a": 2}, total: 2,
		}, 10, 2, []string{"b1", "c1", "c2"}},
		{"repository lowers its own limit", state{
			queued: three, limit: map[string]int{"a": 1},
		}, 10, 5, []string{"a1", "b1", "c1", "c2"}},
		{"repository cannot raise its limit", state{
			queued: three, limit: map[string]int{"a": 9},
		}, 10, 1, []string{"a1", "b1", "c1"}},
		{"skewed backlog does not delay the small repository", state{
			queued: queues("a:a1", "a:a2", "a:a3", "a:a4", "b:b1"),
		}, 2, 10, []string{"a1", "b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(admissions(tt.s, tt.maxRunning, tt.maxPerRepo))
			if !slices.Equal(got, tt.want) {
				t.Errorf("admissions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOrderIgnoresLimits(t *testing.T) {
	s := state{
		queued:  queues("a:a1", "a:a2", "b:b1", "b:b2"),
		running: map[string]int{"a": 5, "b": 5},
		total:   10,
		limit:   map[string]int{"a": 1},
		last:    "a",
	}
	want := []string{"b1", "a1", "b2", "a2"}
	if got := names(order(s)); !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// job builds a yaci Job of repo named name, created at created.
func job(name, repo string, created time.Time, mods ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(created),
			Labels:            map[string]string{launch.LabelRepo: repo},
			Annotations:       map[string]string{},
		},
		Spec: batchv1.JobSpec{Suspend: ptr.To(true)},
	}
	for _, m := range mods {
		m(j)
	}

	return j
}

func unsuspended(j *batchv1.Job) { j.Spec.Suspend = ptr.To(false) }

func deleting(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }

func admittedAt(at string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Annotations[AnnotationAdmittedAt] = at }
}

func uid(u string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.UID = types.UID(u) }
}

func annotated(key, value string) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Annotations[key] = value }
}

func condition(c batchv1.JobConditionType, s corev1.ConditionStatus) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: s})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		job  *batchv1.Job
		want class
	}{
		{"suspended", job("j", "r", t0), queued},
		{"suspended with the Suspended condition", job("j", "r", t0,
			condition(batchv1.JobSuspended, corev1.ConditionTrue)), queued},
		{"unsuspended", job("j", "r", t0, unsuspended), running},
		{"complete", job("j", "r", t0, unsuspended,
			condition(batchv1.JobComplete, corev1.ConditionTrue)), idle},
		{"failed", job("j", "r", t0, unsuspended,
			condition(batchv1.JobFailed, corev1.ConditionTrue)), idle},
		{"failure target only", job("j", "r", t0, unsuspended,
			condition(batchv1.JobFailureTarget, corev1.ConditionTrue)), running},
		{"queued, being deleted", job("j", "r", t0, deleting), idle},
		{"running, being deleted", job("j", "r", t0, unsuspended, deleting), idle},
		{"admitted, then suspended by hand", job("j", "r", t0,
			admittedAt(t0.Format(time.RFC3339Nano))), idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.job); got != tt.want {
				t.Errorf("classify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewState(t *testing.T) {
	ns := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	jobs := []*batchv1.Job{
		// Same second: name decides, unless the queued-at annotation
		// says otherwise.
		job("a-zz", "a", t0),
		job("a-bb", "a", t0),
		job("a-aa", "a", t0, annotated(AnnotationQueuedAt, ns(900*time.Millisecond))),
		job("a-cc", "a", t0, annotated(AnnotationQueuedAt, "not a time")),
		job("a-old", "a", t0.Add(-time.Hour)),
		job("a-run", "a", t0, unsuspended),
		job("a-gone", "a", t0, deleting),
		job("b-1", "b", t0.Add(time.Second), annotated(AnnotationMaxParallel, "9")),
		job("b-2", "b", t0.Add(2*time.Second), annotated(AnnotationMaxParallel, " 2 ")),
		job("b-admitted", "b", t0),
		job("c-1", "c", t0, annotated(AnnotationMaxParallel, "0")),
	}
	admitted := map[string]pending{
		"b-admitted": {uid: "uid-b-admitted", at: ns(0), sure: true},
		// Another Job of that name, admitted earlier, is no reason to
		// count this one.
		"a-zz": {uid: "uid-older", at: ns(0), sure: true},
	}

	s := newState(jobs, admitted, "b")

	wantA := []string{"a-old", "a-bb", "a-cc", "a-zz", "a-aa"}
	if got, want := names(s.queued["a"]), wantA; !slices.Equal(got, want) {
		t.Errorf("queue of a = %v, want %v", got, want)
	}
	if got, want := names(s.queued["b"]), []string{"b-1", "b-2"}; !slices.Equal(got, want) {
		t.Errorf("queue of b = %v, want %v", got, want)
	}
	if s.running["a"] != 1 || s.running["b"] != 1 || s.total != 2 {
		t.Errorf("running = %v, total %d; want a:1 b:1, total 2", s.running, s.total)
	}
	if s.limit["b"] != 2 {
		t.Errorf("limit of b = %d, want 2 (its newest job's)", s.limit["b"])
	}
	if _, ok := s.limit["c"]; ok {
		t.Errorf("limit of c = %d, want none: 0 is no usable limit", s.limit["c"])
	}
	if s.last != "b" {
		t.Errorf("last = %q, want b", s.last)
	}
}

func TestMaxParallel(t *testing.T) {
	tests := []struct {
		value  string
		set    bool
		want   int
		wantOK bool
	}{
		{"", false, 0, false},
		{"3", true, 3, true},
		{"1", true, 1, true},
		{"0", true, 0, false},
		{"-2", true, 0, false},
		{"two", true, 0, false},
		{"", true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			j := job("j", "r", t0)
			if tt.set {
				j.Annotations[AnnotationMaxParallel] = tt.value
			}
			got, ok := maxParallel(j)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("maxParallel(%q) = %d, %v; want %d, %v",
					tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSettled(t *testing.T) {
	at := t0.Format(time.RFC3339Nano)
	mine := pending{uid: "uid-j", at: at, sure: true}
	tests := []struct {
		name string
		p    pending
		job  *batchv1.Job
		want bool
	}{
		{"cache not caught up", mine, job("j", "r", t0), false},
		{"cache shows the admission", mine, job("j", "r", t0, unsuspended, admittedAt(at)), true},
		{"gone", mine, nil, true},
		{"replaced by a new job", mine, job("j", "r", t0, uid("other")), true},
		{"being deleted", mine, job("j", "r", t0, deleting), true},
		{"suspended again after admission", mine, job("j", "r", t0, admittedAt(at)), true},
		{"unsure stays until read", pending{at: at}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settled(tt.p, tt.job); got != tt.want {
				t.Errorf("settled = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLastServed(t *testing.T) {
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	jobs := []*batchv1.Job{
		job("a1", "a", t0, unsuspended, admittedAt(at(time.Millisecond))),
		job("b1", "b", t0, unsuspended, admittedAt(at(2*time.Millisecond))),
		job("c1", "c", t0, unsuspended, admittedAt("garbage")),
		job("d1", "d", t0),
	}
	if got := lastServed(jobs); got != "b" {
		t.Errorf("lastServed = %q, want b", got)
	}
	if got := lastServed(nil); got != "" {
		t.Errorf("lastServed(nil) = %q, want empty", got)
	}
}

// TestTrimKeepsWhatAdmissionReads checks that the Jobs in the cache the
// admitter shares with the watcher still say all admission reads.
func TestTrimKeepsWhatAdmissionReads(t *testing.T) {
	j := job("j", "r", t0)
	j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "run"}}
	want := j.DeepCopy()

	got, err := launch.TrimJob(j)
	if err != nil {
		t.Fatal(err)
	}
	tj := got.(*batchv1.Job)
	if classify(tj) != classify(want) || classify(tj) != queued ||
		tj.Labels[launch.LabelRepo] != "r" || !reflect.DeepEqual(tj.Annotations, want.Annotations) {
		t.Error("trimming dropped what admission reads")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr bool
	}{
		{"defaults", Options{Namespace: "ci"}, false},
		{"no namespace", Options{}, true},
		{"negative limit", Options{Namespace: "ci", MaxRunning: -1}, true},
		{"negative per-repo limit", Options{Namespace: "ci", MaxPerRepo: -1}, true},
		{"negative timeout", Options{Namespace: "ci", CallTimeout: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestAhead checks the position any replica computes from a list of Jobs:
// round-robin after the repository served last, FIFO within one.
func TestAhead(t *testing.T) {
	jobs := []*batchv1.Job{
		job("a-run", "a", t0, unsuspended, admittedAt(t0.Format(time.RFC3339Nano))),
		job("a-1", "a", t0.Add(1*time.Second)),
		job("a-2", "a", t0.Add(2*time.Second)),
		job("b-1", "b", t0.Add(3*time.Second)),
		job("gone", "b", t0.Add(4*time.Second), deleting),
	}
	// a was served last, so b goes first, then a in arrival order.
	for name, want := range map[string]int{"b-1": 0, "a-1": 1, "a-2": 2} {
		if got, ok := Ahead(jobs, name); !ok || got != want {
			t.Errorf("Ahead(%s) = %d, %v; want %d, true", name, got, ok, want)
		}
	}
	for _, name := range []string{"a-run", "gone", "unknown"} {
		if _, ok := Ahead(jobs, name); ok {
			t.Errorf("Ahead(%s) is ok for a Job that is not queued", name)
		}
	}
}
