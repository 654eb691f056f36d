package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrNotFound is returned (wrapped) by a Store for a run or log it does not
// hold.
var ErrNotFound = errors.New("logs: not found")

// ErrInvalidName is returned (wrapped) for a run, pod or container name
// that is not a Kubernetes name. Names are checked before they reach a
// path, so no name can point outside a store's folder.
var ErrInvalidName = errors.New("logs: invalid name")

// Store keeps the archived logs and metadata of runs: DirStore in a local
// folder, S3Store in a bucket that several replicas share. Both keep the
// same content under the same names. Every method validates the names it
// gets and returns ErrInvalidName for a bad one.
type Store interface {
	// PutLog stores the log of one container of one pod of a run, read
	// from r, replacing any earlier copy only once the new one is
	// complete. A log longer than the store's bound is cut there and
	// ends with a marker line (see TruncationMarker).
	PutLog(ctx context.Context, run, pod, container string, r io.Reader) (LogInfo, error)
	// GetLog returns the log stored by PutLog, uncompressed.
	GetLog(ctx context.Context, run, pod, container string) (io.ReadCloser, error)
	// StatLog describes a stored log without reading it.
	StatLog(ctx context.Context, run, pod, container string) (LogInfo, error)

	// PutRun stores a run's metadata, replacing any earlier copy at once,
	// and indexes the run by repository and commit for ListRuns.
	PutRun(ctx context.Context, run *Run) error
	// GetRun returns the stored metadata of the run called name.
	GetRun(ctx context.Context, name string) (*Run, error)
	// ListRuns returns the stored runs of repo ("owner/name") at commit
	// sha, or at every commit when sha is empty, from the index.
	ListRuns(ctx context.Context, repo, sha string) ([]*Run, error)
}

// LogInfo describes a stored log.
type LogInfo struct {
	// Bytes is the length of the log as stored, uncompressed, without
	// the truncation marker.
	Bytes int64 `json:"bytes"`
	// Truncated is true when the log was longer than the store's bound.
	Truncated bool `json:"truncated,omitempty"`
}

// Run is what yaci knows about a run: its identity, read from its Job's
// labels and annotations, its outcome, and its pods. Archived, it is the
// metadata file of the run; live, it is made from the cluster.
type Run struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// JobUID tells one Job from a later one of the same name.
	JobUID        string `json:"job_uid,omitempty"`
	Repo          string `json:"repo"`
	SHA           string `json:"sha"`
	Job           string `json:"job"`
	Event         string `json:"event"`
	Attempt       int    `json:"attempt"`
	Delivery      string `json:"delivery,omitempty"`
	Ref           string `json:"ref,omitempty"`
	Branch        string `json:"branch,omitempty"`
	PullRequest   int    `json:"pull_request,omitempty"`
	StatusContext string `json:"status_context,omitempty"`

	State RunState `json:"state"`
	// Reason says why the Job failed, in the Job controller's words.
	Reason   string     `json:"reason,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	Pods     []Pod      `json:"pods"`
	// Archived is when the archive was written; nil for a live run.
	Archived *time.Time `json:"archived,omitempty"`
}

// Duration returns how long the run ran, or has run so far at now, or
// zero when it has not started.
func (r *Run) Duration(now time.Time) time.Duration {
	switch {
	case r.Started == nil:
		return 0
	case r.Finished != nil:
		return r.Finished.Sub(*r.Started)
	default:
		return now.Sub(*r.Started)
	}
}

// RunState is the state of a run as its page shows it.
type RunState string

// The states of a run. Success and failure are final; the Job has ended.
const (
	StateQueued  RunState = "queued"
	StatePending RunState = "pending"
	StateRunning RunState = "running"
	StateSuccess RunState = "success"
	StateFailure RunState = "failure"
)

// Final reports whether s is the state of an ended run.
func (s RunState) Final() bool { return s == StateSuccess || s == StateFailure }

// Pod is one pod of a run's Job. A Job whose pod was evicted or deleted
// may have several.
type Pod struct {
	Name       string      `json:"name"`
	Phase      string      `json:"phase"`
	Containers []Container `json:"containers"`
}

// Container is one container of a run's pod and what became of its log.
type Container struct {
	Name string `json:"name"`
	// Init is true for the clone step, which runs before the script.
	Init bool `json:"init,omitempty"`
	// State is "waiting", "running" or "terminated".
	State    string `json:"state"`
	ExitCode *int32 `json:"exit_code,omitempty"`
	// Reason is the kubelet's word for the state: "Completed", "Error",
	// "OOMKilled", "ImagePullBackOff", ...
	Reason string `json:"reason,omitempty"`
	// Log describes the archived log; nil when none was archived.
	Log *LogInfo `json:"log,omitempty"`
	// Note says why there is no log, or what is odd about it.
	Note string `json:"note,omitempty"`
}

// Started reports whether the container ever ran, so that it has a log.
func (c Container) Started() bool { return c.State == "running" || c.State == "terminated" }

// checkName returns ErrInvalidName unless name is a DNS label, the form of
// run and container names.
func checkName(kind, name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("%s name %q: %s: %w", kind, name, errs[0], ErrInvalidName)
	}

	return nil
}

// checkLogNames validates the three names that locate a log. Pod names may
// be DNS subdomains, whose dots never form "." or ".." segments.
func checkLogNames(run, pod, container string) error {
	if err := checkName("run", run); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Subdomain(pod); len(errs) > 0 {
		return fmt.Errorf("pod name %q: %s: %w", pod, errs[0], ErrInvalidName)
	}

	return checkName("container", container)
}
