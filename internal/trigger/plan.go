package trigger

import (
	"path"
	"slices"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// Plan returns the runs the config asks for on ev: one per job whose "on"
// list names the event's kind and, for a push, whose branch globs match
// the pushed branch. Runs keep the order of the file, so statuses appear
// in the order the user wrote the jobs, and every run is attempt 1.
//
// Plan looks only at the config: whether the event should start anything
// at all (a closed pull request, an untrusted fork) is the caller's call.
func Plan(ev Event, cfg *repoconfig.Config) []Run {
	if cfg == nil {
		return nil
	}

	var runs []Run
	for _, job := range cfg.Jobs {
		if wants(job, ev) {
			runs = append(runs, Run{Event: ev, Job: job, Attempt: 1})
		}
	}

	return runs
}

// wants reports whether job runs on ev.
//
// TODO: use repoconfig's own filter once the package has one — keeping
// the rule in one place stops `yaci validate` and the server disagreeing.
func wants(job repoconfig.Job, ev Event) bool {
	if !slices.Contains(job.On, ev.Kind) {
		return false
	}

	// Branch globs describe pushes only: a pull request is built whatever
	// branch it targets.
	if ev.Kind != repoconfig.EventPush || len(job.Branches) == 0 {
		return true
	}

	return slices.ContainsFunc(job.Branches, func(glob string) bool {
		// A malformed glob matches nothing; parsing rejects those, so
		// the error can only come from a config built in code.
		ok, err := path.Match(glob, ev.Branch)
		return err == nil && ok
	})
}
