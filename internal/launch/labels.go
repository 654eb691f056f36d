package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// Label keys yaci puts on every Job, its pod template and its clone Secret.
// Label values are sanitised (see labelValue); where the verbatim value
// matters, read the annotation of the same meaning instead.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"
	// LabelRepo holds "owner.name", sanitised into a label value.
	LabelRepo = "yaci.dev/repo"
	// LabelJob holds the job's name from .yaci.yml, sanitised.
	LabelJob = "yaci.dev/job"
	// LabelSHA holds the full 40-hex commit id.
	LabelSHA = "yaci.dev/sha"
	// LabelEvent holds "push" or "pull_request".
	LabelEvent = "yaci.dev/event"
	// LabelAttempt holds the run's attempt number in decimal.
	LabelAttempt = "yaci.dev/attempt"
	// LabelBranch holds the pushed branch, or a pull request's base
	// branch, sanitised. The watcher selects a branch's earlier pushes
	// with it to supersede them.
	LabelBranch = "yaci.dev/branch"
	// LabelPR holds the pull request number; absent for pushes.
	LabelPR = "yaci.dev/pr"
)

// Values of the two app.kubernetes.io labels that mark a yaci run.
const (
	ManagedBy = "yaci"
	AppName   = "yaci-run"
)

// Selector selects every Job and pod that yaci launched, in the syntax of
// metav1.ListOptions.LabelSelector. The watcher narrows its informers with it.
const Selector = LabelManagedBy + "=" + ManagedBy + "," + LabelName + "=" + AppName

// Annotation keys for what labels cannot hold verbatim. Together with the
// labels they let a restarted yaci rebuild a run's identity from the
// cluster alone (see RunFromJob).
const (
	// AnnotationRepo holds "owner/name".
	AnnotationRepo = "yaci.dev/repo"
	// AnnotationJob holds the job's name exactly as .yaci.yml spells it.
	AnnotationJob = "yaci.dev/job"
	// AnnotationDelivery holds the X-GitHub-Delivery GUID.
	AnnotationDelivery = "yaci.dev/delivery"
	AnnotationRef      = "yaci.dev/ref"
	AnnotationBranch   = "yaci.dev/branch"
	// AnnotationPR holds the pull request number; absent for pushes.
	AnnotationPR = "yaci.dev/pr"
	// AnnotationInstallation holds the GitHub App installation id; absent
	// when yaci uses a plain token.
	AnnotationInstallation = "yaci.dev/installation"
	// AnnotationStatusContext holds the commit status context the run
	// reports on (trigger.Run.StatusContext).
	AnnotationStatusContext = "yaci.dev/status-context"
	AnnotationCloneURL      = "yaci.dev/clone-url"
	// AnnotationReported says that the run needs no final status from
	// the watcher any more. Its value is the state the watcher reported,
	// or why none was (see NotStarted).
	AnnotationReported = "yaci.dev/reported"
	// AnnotationMaxParallel holds the repository config's limit on its
	// runs at once (trigger.Run.Parallel), for admission to honour; absent
	// when the config sets none.
	AnnotationMaxParallel = "yaci.dev/max-parallel"
	// AnnotationQueuedAt holds when Launch created a suspended Job, in
	// RFC 3339 with nanoseconds: the creationTimestamp counts whole
	// seconds, too coarse to keep the order of runs launched together.
	AnnotationQueuedAt = "yaci.dev/queued-at"
	// AnnotationHeadAt holds when the run's commit became the head of its
	// branch or pull request (trigger.Event.HeadAt), in RFC 3339; absent
	// when the event did not say.
	AnnotationHeadAt = "yaci.dev/head-at"
)

// Finalizer is on every run's Job from its creation, so that a Job
// deleted by anyone (its TTL, a person, a superseding push) stays until
// the watcher has reported its final status and removed the finalizer.
const Finalizer = "yaci.dev/report"

// NotStarted is the AnnotationReported value of a Job whose launch failed:
// whoever launched it reports that failure, so the watcher has nothing to.
const NotStarted = "not-started"

// ErrNotRun is returned by RunFromJob for a Job that yaci did not launch.
var ErrNotRun = errors.New("launch: job is not a yaci run")

// ErrBadRunMetadata is returned by RunFromJob when a yaci Job's labels or
// annotations are missing or malformed, for instance after a hand edit.
var ErrBadRunMetadata = errors.New("launch: bad run metadata")

// RunInfo is what a Job's labels and annotations say about the run it
// belongs to.
type RunInfo struct {
	// Name is the Job's name, which is also the run's name.
	Name     string
	Repo     trigger.Repo
	SHA      string
	Job      string
	Event    repoconfig.EventKind
	Attempt  int
	Delivery string
	Ref      string
	Branch   string
	// PullRequest is zero for pushes.
	PullRequest    int
	InstallationID int64
	StatusContext  string
	// HeadAt is zero when the Job does not record it.
	HeadAt time.Time
}

// labelsFor returns the labels of a run's Job, pod template and Secret.
func labelsFor(run trigger.Run) map[string]string {
	ev := run.Event
	l := map[string]string{
		LabelManagedBy: ManagedBy,
		LabelName:      AppName,
		LabelRepo:      RepoLabel(ev.Repo),
		LabelJob:       labelValue(run.Job.Name),
		LabelSHA:       ev.SHA,
		LabelEvent:     string(ev.Kind),
		LabelAttempt:   strconv.Itoa(run.Attempt),
	}
	if ev.Branch != "" {
		l[LabelBranch] = labelValue(ev.Branch)
	}
	if ev.PullRequest != nil {
		l[LabelPR] = strconv.Itoa(ev.PullRequest.Number)
	}

	return l
}

// RepoLabel returns the LabelRepo value of repo's runs.
func RepoLabel(repo trigger.Repo) string {
	return labelValue(repo.Owner + "." + repo.Name)
}

// BranchLabel returns the LabelBranch value of runs on branch.
func BranchLabel(branch string) string {
	return labelValue(branch)
}

// annotationsFor returns the annotations of a run's Job.
func annotationsFor(run trigger.Run) map[string]string {
	ev := run.Event
	a := map[string]string{
		AnnotationRepo:          ev.Repo.FullName(),
		AnnotationJob:           run.Job.Name,
		AnnotationDelivery:      ev.Delivery,
		AnnotationRef:           ev.Ref,
		AnnotationBranch:        ev.Branch,
		AnnotationStatusContext: run.StatusContext(),
		AnnotationCloneURL:      ev.Repo.CloneURL,
	}
	if ev.PullRequest != nil {
		a[AnnotationPR] = strconv.Itoa(ev.PullRequest.Number)
	}
	if ev.InstallationID != 0 {
		a[AnnotationInstallation] = strconv.FormatInt(ev.InstallationID, 10)
	}
	if run.Parallel > 0 {
		a[AnnotationMaxParallel] = strconv.Itoa(run.Parallel)
	}
	if !ev.HeadAt.IsZero() {
		a[AnnotationHeadAt] = ev.HeadAt.UTC().Format(time.RFC3339)
	}

	return a
}

// maxLabelValue is Kubernetes' limit on a label value's length.
const maxLabelValue = 63

// labelHashLen is how many hex digits of a hash end a value that had to be
// changed to become a label value, so that two names sanitised alike
// ("a_b!" and "a_b?") still select different Jobs.
const labelHashLen = 10

// labelValue turns s into a valid label value: at most 63 characters of
// [A-Za-z0-9._-], starting and ending with a letter or digit. A value that
// is already valid is returned as it is; any other gets a hash suffix of the
// original, so the mapping stays one-to-one in practice.
func labelValue(s string) string {
	clean := strings.Map(func(r rune) rune {
		if isAlnum(r) || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, s)
	clean = trimNonAlnum(clean)
	if clean == s && len(s) <= maxLabelValue {
		return s
	}

	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:labelHashLen]
	if len(clean) > maxLabelValue-labelHashLen-1 {
		clean = trimNonAlnum(clean[:maxLabelValue-labelHashLen-1])
	}
	if clean == "" {
		return suffix
	}

	return clean + "-" + suffix
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func trimNonAlnum(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return !isAlnum(r) })
}

// RunFromJob reads back what a Job's labels and annotations say about its
// run, so that a restarted yaci can rebuild its state from the cluster. It
// returns ErrNotRun for a Job yaci did not launch and ErrBadRunMetadata
// (wrapped, naming the key) when a yaci Job's metadata is unusable.
func RunFromJob(job *batchv1.Job) (RunInfo, error) {
	l, a := job.Labels, job.Annotations
	if l[LabelManagedBy] != ManagedBy || l[LabelName] != AppName {
		return RunInfo{}, fmt.Errorf("read run from job %s: %w", job.Name, ErrNotRun)
	}

	info := RunInfo{
		Name:          job.Name,
		SHA:           l[LabelSHA],
		Job:           a[AnnotationJob],
		Event:         repoconfig.EventKind(l[LabelEvent]),
		Delivery:      a[AnnotationDelivery],
		Ref:           a[AnnotationRef],
		Branch:        a[AnnotationBranch],
		StatusContext: a[AnnotationStatusContext],
	}
	bad := func(key, why string) (RunInfo, error) {
		return RunInfo{}, fmt.Errorf("read run from job %s: %s %s: %w",
			job.Name, key, why, ErrBadRunMetadata)
	}

	owner, name, ok := strings.Cut(a[AnnotationRepo], "/")
	if !ok || owner == "" || name == "" {
		return bad(AnnotationRepo, "is not owner/name")
	}
	info.Repo = trigger.Repo{Owner: owner, Name: name, CloneURL: a[AnnotationCloneURL]}

	if !IsCommitID(info.SHA) {
		return bad(LabelSHA, "is not a full commit id")
	}
	if info.Job == "" {
		return bad(AnnotationJob, "is empty")
	}
	if info.StatusContext == "" {
		return bad(AnnotationStatusContext, "is empty")
	}

	var err error
	if info.Attempt, err = strconv.Atoi(l[LabelAttempt]); err != nil || info.Attempt < 1 {
		return bad(LabelAttempt, "is not a positive number")
	}

	switch info.Event {
	case repoconfig.EventPush:
	case repoconfig.EventPullRequest:
		info.PullRequest, err = strconv.Atoi(a[AnnotationPR])
		if err != nil || info.PullRequest < 1 {
			return bad(AnnotationPR, "is not a pull request number")
		}
	default:
		return bad(LabelEvent, "is not push or pull_request")
	}

	if v, ok := a[AnnotationInstallation]; ok {
		if info.InstallationID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return bad(AnnotationInstallation, "is not a number")
		}
	}
	if v, ok := a[AnnotationHeadAt]; ok {
		if info.HeadAt, err = time.Parse(time.RFC3339, v); err != nil {
			return bad(AnnotationHeadAt, "is not an RFC 3339 time")
		}
	}

	return info, nil
}

// IsCommitID reports whether s is a full SHA-1 commit id in lower-case hex,
// the form GitHub sends and the only form yaci builds.
func IsCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}

	return true
}
