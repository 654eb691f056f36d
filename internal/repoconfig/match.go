package repoconfig

import (
	"path"
	"slices"
)

// Wants reports whether the job runs for an event of the given kind on
// the given branch. The branch is the short name ("main", not
// "refs/heads/main"). Branch patterns filter pushes only: a pull request
// runs every job whose on list names pull_request, whatever its base
// branch.
func (j Job) Wants(kind EventKind, branch string) bool {
	if !slices.Contains(j.On, kind) {
		return false
	}
	if kind != EventPush || len(j.Branches) == 0 {
		return true
	}
	for _, pattern := range j.Branches {
		// Parse and Validate reject malformed patterns, so an error here
		// can only come from a hand-built Job; it matches nothing.
		if ok, err := path.Match(pattern, branch); err == nil && ok {
			return true
		}
	}

	return false
}

// JobsFor returns the jobs that run for an event of the given kind on the
// given branch, in the order of the file.
func (c *Config) JobsFor(kind EventKind, branch string) []Job {
	var jobs []Job
	for _, j := range c.Jobs {
		if j.Wants(kind, branch) {
			jobs = append(jobs, j)
		}
	}

	return jobs
}
