package trigger

import (
	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// Plan returns the runs the config asks for on ev: one per job whose "on"
// list names the event's kind and, for a push, whose branch globs match
// the pushed branch. The rule is repoconfig's Job.Wants, kept there so
// that everything reading a config agrees on it. Runs keep the order of
// the file, so statuses appear in the order the user wrote the jobs, and
// every run is attempt 1.
//
// Plan looks only at the config: whether the event should start anything
// at all (a closed pull request, an untrusted fork) is the caller's call.
func Plan(ev Event, cfg *repoconfig.Config) []Run {
	if cfg == nil {
		return nil
	}

	var runs []Run
	for _, job := range cfg.Jobs {
		if job.Wants(ev.Kind, ev.Branch) {
			runs = append(runs, Run{Event: ev, Job: job, Attempt: 1, Parallel: cfg.Parallel})
		}
	}

	return runs
}
