package repoconfig

import "time"

// EventKind names the kind of GitHub event a job can run on. The values are
// the words a user writes under "on:" in .yaci.yml.
type EventKind string

const (
	// EventPush is a push to a branch of the repository.
	EventPush EventKind = "push"
	// EventPullRequest is a pull request opened, or updated with new
	// commits.
	EventPullRequest EventKind = "pull_request"
)

// Config is a parsed, validated .yaci.yml.
type Config struct {
	// Jobs keeps the order of the file, so statuses appear in the order
	// the user wrote them.
	Jobs []Job
	// Parallel, when not zero, is the most runs of this repository that
	// may run at once. It can lower the server's per-repository limit,
	// never raise it.
	Parallel int
}

// Job is one entry of the jobs list: one container image and one script,
// run as one Kubernetes Job per matching event.
type Job struct {
	Name  string
	Image string
	// Run is the script, handed to "sh -e -c" as a single argument.
	Run string
	// Env keeps the file's order; names are unique.
	Env []EnvVar
	// Timeout is zero when the file sets none; the server then applies
	// its default.
	Timeout time.Duration
	// On is never empty after parsing: a job without "on" runs on both
	// kinds of event.
	On []EventKind
	// Branches are path.Match globs for push events; empty means every
	// branch.
	Branches []string
	// Resources is empty when the file sets none.
	Resources Resources
}

// EnvVar is one environment variable a job sets for its script.
type EnvVar struct {
	Name  string
	Value string
}

// Resources are the CPU and memory a job asks for, in Kubernetes quantity
// syntax ("500m", "2Gi"). They become both request and limit.
type Resources struct {
	CPU    string
	Memory string
}
