package queue

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
)

// class is what a Job is to admission.
type class int

const (
	// idle Jobs neither wait nor count: finished, being deleted, or
	// suspended again by hand after their admission.
	idle class = iota
	// queued Jobs wait to be admitted.
	queued
	// running Jobs hold one of the slots the limits count.
	running
)

// classify tells what job is to admission. A Job that carries
// AnnotationAdmittedAt was admitted once and is never admitted again,
// even if someone suspends it anew: whoever did so meant it to stop.
func classify(job *batchv1.Job) class {
	if job.DeletionTimestamp != nil || finished(job) {
		return idle
	}
	if !ptr.Deref(job.Spec.Suspend, false) {
		return running
	}
	if _, ok := job.Annotations[AnnotationAdmittedAt]; ok {
		return idle
	}

	return queued
}

// finished reports whether job has ended, successfully or not.
func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) &&
			c.Status == corev1.ConditionTrue {
			return true
		}
	}

	return false
}

// entry is a queued Job as the ordering sees it.
type entry struct {
	name string
	repo string
	// since is when the Job joined the queue (see queuedAt).
	since time.Time
	// rv is the resourceVersion the decision was made on; the patch that
	// admits the Job applies only to that version.
	rv string
}

// before reports whether e was queued before o: first come, first served,
// and by name between Jobs queued at the same moment, so that the order
// is total and the same in every process.
func (e entry) before(o entry) bool {
	if !e.since.Equal(o.since) {
		return e.since.Before(o.since)
	}

	return e.name < o.name
}

func compareEntries(a, b entry) int {
	switch {
	case a.before(b):
		return -1
	case b.before(a):
		return 1
	}

	return 0
}

// queuedAt returns when job joined the queue: AnnotationQueuedAt when it
// holds an RFC 3339 time, else the Job's creationTimestamp, which has a
// resolution of one second only.
func queuedAt(job *batchv1.Job) time.Time {
	if v, ok := job.Annotations[AnnotationQueuedAt]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}

	return job.CreationTimestamp.Time
}

// repoOf returns the repository a Job counts against.
func repoOf(job *batchv1.Job) string {
	return job.Labels[launch.LabelRepo]
}

// state is what admission knows at one moment: who waits, who runs, and
// which repository was served last.
type state struct {
	// queued holds each repository's queued Jobs, first come first.
	queued map[string][]entry
	// running counts each repository's running Jobs; total counts all.
	running map[string]int
	total   int
	// limit holds the per-repository limits that repositories lowered
	// for themselves (see AnnotationMaxParallel).
	limit map[string]int
	// last is the repository that was served last.
	last string
}

// limitOf returns repo's per-repository limit: maxPerRepo, or less if the
// repository asked for less.
func (s state) limitOf(repo string, maxPerRepo int) int {
	if l, ok := s.limit[repo]; ok && l < maxPerRepo {
		return l
	}

	return maxPerRepo
}

// admissions returns the Jobs to admit now, in the order to admit them.
// It goes round-robin over the repositories with queued Jobs, in the
// order of their names, starting with the first one after s.last and
// taking each repository's oldest Job in its turn. A repository at its
// own limit is passed over. It stops when maxRunning Jobs would run in
// all, or when a whole round admits nothing.
func admissions(s state, maxRunning, maxPerRepo int) []entry {
	repos := make([]string, 0, len(s.queued))
	for r, q := range s.queued {
		if len(q) > 0 {
			repos = append(repos, r)
		}
	}
	if len(repos) == 0 {
		return nil
	}
	slices.Sort(repos)
	start, found := slices.BinarySearch(repos, s.last)
	if found {
		start++
	}

	running := maps.Clone(s.running)
	if running == nil {
		running = make(map[string]int)
	}
	total := s.total
	taken := make(map[string]int, len(repos))
	var out []entry
	for progress := true; progress && total < maxRunning; {
		progress = false
		for i := range repos {
			r := repos[(start+i)%len(repos)]
			q := s.queued[r]
			if total >= maxRunning {
				break
			}
			if taken[r] >= len(q) || running[r] >= s.limitOf(r, maxPerRepo) {
				continue
			}
			out = append(out, q[taken[r]])
			taken[r]++
			running[r]++
			total++
			progress = true
		}
	}

	return out
}

// order returns every queued Job in the order admission would take them
// if no limit held them back: a Job's index is how many go before it.
func order(s state) []entry {
	return admissions(state{queued: s.queued, last: s.last}, math.MaxInt, math.MaxInt)
}

// pending is a Job this process admitted whose admission its informer
// may not show yet. Until it does, the Job counts as running.
type pending struct {
	uid string
	// at is the AnnotationAdmittedAt value the patch set.
	at string
	// sure is false when the patch's outcome is unknown (its answer was
	// lost); such a Job counts as running until a read settles it.
	sure bool
}

// newState builds the state from the informer's Jobs and this process's
// own admissions not yet seen there. It reads jobs and admitted and
// changes neither.
func newState(jobs []*batchv1.Job, admitted map[string]pending, last string) state {
	s := state{
		queued:  make(map[string][]entry),
		running: make(map[string]int),
		limit:   make(map[string]int),
		last:    last,
	}
	newest := make(map[string]*batchv1.Job)
	for _, job := range jobs {
		repo := repoOf(job)
		if job.DeletionTimestamp == nil {
			if n := newest[repo]; n == nil || entryOf(n).before(entryOf(job)) {
				newest[repo] = job
			}
		}

		c := classify(job)
		if p, ok := admitted[job.Name]; ok && c == queued && (!p.sure || p.uid == string(job.UID)) {
			c = running
		}
		switch c {
		case queued:
			s.queued[repo] = append(s.queued[repo], entryOf(job))
		case running:
			s.running[repo]++
			s.total++
		}
	}
	for _, q := range s.queued {
		slices.SortFunc(q, compareEntries)
	}
	for repo, job := range newest {
		if l, ok := maxParallel(job); ok {
			s.limit[repo] = l
		}
	}

	return s
}

func entryOf(job *batchv1.Job) entry {
	return entry{name: job.Name, repo: repoOf(job), since: queuedAt(job), rv: job.ResourceVersion}
}

// maxParallel returns the per-repository limit job asks for, if it asks
// for a usable one: a whole number of at least one.
func maxParallel(job *batchv1.Job) (int, bool) {
	v, ok := job.Annotations[AnnotationMaxParallel]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0, false
	}

	return n, true
}

// settled reports whether the informer's view of job makes p, a Job this
// process admitted, needless to remember: the Job is gone or replaced,
// its cached copy shows it unsuspended or no longer queued, or shows our
// admission and a suspension after it. job is nil when the informer has
// no Job of p's name.
func settled(p pending, job *batchv1.Job) bool {
	if !p.sure {
		return false
	}
	if job == nil || string(job.UID) != p.uid {
		return true
	}
	if job.Annotations[AnnotationAdmittedAt] == p.at {
		return true
	}

	return classify(job) != queued
}

// lastServed returns the repository of the most recently admitted Job
// among jobs, so that a restarted Admitter goes on with the round where
// the one before it stopped.
func lastServed(jobs []*batchv1.Job) string {
	var (
		last string
		at   time.Time
	)
	for _, job := range jobs {
		t, err := time.Parse(time.RFC3339Nano, job.Annotations[AnnotationAdmittedAt])
		if err == nil && t.After(at) {
			last, at = repoOf(job), t
		}
	}

	return last
}
