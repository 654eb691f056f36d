// Package localrun runs the jobs of a .yaci.yml on this machine, with no
// cluster and no GitHub, for "yaci run": the quickest way to see whether
// a push would pass.
//
// Each job gets what the cluster gives it, as far as a local process can
// have it: a checkout of the commit (a fresh "git worktree" of HEAD,
// removed afterwards), "sh -e -c" with the job's script, the same CI,
// HOME and YACI_* variables (as a push of the current branch), a fresh
// empty HOME, and its timeout, enforced by killing the job's whole
// process group. What a container would add is not there: the job's
// image is ignored (the job uses this machine's tools) and so are its
// resources.
//
// With Options.Dirty the jobs run in the directory itself, uncommitted
// changes and all, which is what someone iterating on a change wants; the
// jobs can then change the working tree, and parallel jobs share it.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// DefaultKillGrace is how long a job has to exit after SIGTERM, on
// timeout or interrupt, before its process group gets SIGKILL.
const DefaultKillGrace = 5 * time.Second

// Options say which jobs Run runs and how.
type Options struct {
	// Dir is the directory of the .yaci.yml. Each job runs in the same
	// place of its checkout: the root of the repository, usually.
	Dir string
	// Jobs names the jobs to run, in any order; empty means all of them.
	// Either way they run in the order of the file.
	Jobs []string
	// Dirty runs the jobs in Dir as it is instead of in a fresh checkout
	// of HEAD. Dir then need not be in a git repository at all.
	Dirty bool
	// Parallel is how many jobs run at once; zero means one at a time.
	Parallel int
	// DefaultTimeout applies to a job whose config sets none; zero means
	// the server's default, launch.DefaultTimeout.
	DefaultTimeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL; zero means
	// DefaultKillGrace.
	KillGrace time.Duration
	// Output receives the jobs' output, each line prefixed with the
	// job's name ("[test] ..."), and yaci's own notes. Nil discards it.
	Output io.Writer
	// Environ is the environment jobs start from, as "NAME=value"; nil
	// means this process's. See Run for what is kept of it.
	Environ []string
}

// Outcome is how one job ended.
type Outcome string

// The outcomes of a job.
const (
	// Passed means the script exited with status 0.
	Passed Outcome = "passed"
	// Failed means the script exited with another status or was killed
	// by a signal it did not get from yaci.
	Failed Outcome = "failed"
	// TimedOut means yaci killed the job at its timeout.
	TimedOut Outcome = "timed out"
	// Canceled means yaci killed the job because Run's context ended
	// (Ctrl-C).
	Canceled Outcome = "canceled"
	// NotRun means the job never started: Run's context ended first.
	NotRun Outcome = "not run"
	// Error means the job could not be started, its checkout failed for
	// instance; Result.Err says why.
	Error Outcome = "error"
)

// Result is what happened to one job.
type Result struct {
	Job     string
	Outcome Outcome
	// ExitCode is the script's exit status, or -1 when it did not exit
	// by itself (killed, or never started).
	ExitCode int
	Duration time.Duration
	// Err explains an outcome other than Passed.
	Err error
}

// Errors of Run, for a run that cannot start at all.
var (
	// ErrUnknownJob means Options.Jobs names a job the file lacks.
	ErrUnknownJob = errors.New("unknown job")
	// ErrNoCheckout means Dir has no commit to check out: it is not in
	// a git repository, or the repository has no commit yet.
	ErrNoCheckout = errors.New("no commit to check out")
)

// Run runs the jobs of cfg and returns one Result per selected job, in
// the order of the file. It returns an error only when it cannot start
// at all; a failed job is a Result. When ctx ends, running jobs are
// killed and the rest are not started; Run still returns every Result
// after its checkouts are removed.
//
// A job's environment is this machine's (Options.Environ) less the names
// yaci sets and git's repository variables, plus where the machine's
// caches are (so a fresh HOME does not mean rebuilding everything), plus
// the job's env, plus yaci's variables, as in the cluster.
func Run(ctx context.Context, cfg *repoconfig.Config, o Options) ([]Result, error) {
	o = o.withDefaults()
	jobs, err := selectJobs(cfg, o.Jobs)
	if err != nil {
		return nil, err
	}
	out := &syncWriter{w: o.Output}
	environ := o.Environ
	if environ == nil {
		environ = os.Environ()
	}

	repo, err := inspect(ctx, o.Dir, gitEnv(environ), o.Dirty)
	if err != nil {
		return nil, err
	}
	notes(out, repo, jobs, o)

	r := &runner{
		opts:     o,
		repo:     repo,
		base:     baseEnv(environ),
		delivery: newDelivery(),
		out:      out,
		width:    nameWidth(jobs),
	}

	return r.runAll(ctx, jobs), nil
}

// withDefaults fills in the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Dir == "" {
		o.Dir = "."
	}
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = launch.DefaultTimeout
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.Output == nil {
		o.Output = io.Discard
	}

	return o
}

// selectJobs returns the jobs of cfg that names asks for, in the file's
// order, or every job when names is empty.
func selectJobs(cfg *repoconfig.Config, names []string) ([]repoconfig.Job, error) {
	if len(names) == 0 {
		return cfg.Jobs, nil
	}

	all := make([]string, len(cfg.Jobs))
	for i, j := range cfg.Jobs {
		all[i] = j.Name
	}
	for _, n := range names {
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("%w %q: the jobs are %s", ErrUnknownJob, n,
				strings.Join(all, ", "))
		}
	}

	var jobs []repoconfig.Job
	for _, j := range cfg.Jobs {
		if slices.Contains(names, j.Name) {
			jobs = append(jobs, j)
		}
	}

	return jobs, nil
}

// notes tells the user, once, what a local run does differently from
// the cluster.
func notes(out io.Writer, repo repository, jobs []repoconfig.Job, o Options) {
	var images []string
	resources := false
	for _, j := range jobs {
		if !slices.Contains(images, j.Image) {
			images = append(images, j.Image)
		}
		resources = resources || j.Resources != (repoconfig.Resources{})
	}
	for _, img := range images {
		fmt.Fprintf(out, "yaci: image %s ignored: jobs run on this machine\n", img)
	}
	if resources {
		fmt.Fprintln(out, "yaci: resources ignored: jobs use what this machine has")
	}

	switch {
	case o.Dirty:
		fmt.Fprintf(out, "yaci: running in %s as it is (--dirty)\n", repo.dir)
	case repo.changed:
		fmt.Fprintf(out, "yaci: uncommitted changes are not in the jobs' checkout of %s; "+
			"--dirty runs them in place\n", short(repo.sha))
	}
}

// runner runs the jobs of one call to Run.
type runner struct {
	opts Options
	repo repository
	// base is the environment every job starts from (see baseEnv).
	base []string
	// delivery is the YACI_DELIVERY of every job of this run.
	delivery string
	out      *syncWriter
	// width is the longest job name's length, for aligned prefixes.
	width int
}

// runAll runs jobs, Parallel at a time, and returns their results in
// the order of jobs.
func (r *runner) runAll(ctx context.Context, jobs []repoconfig.Job) []Result {
	results := make([]Result, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.opts.Parallel, len(jobs)) {
		wg.Go(func() {
			for i := range next {
				results[i] = r.runJob(ctx, jobs[i])
			}
		})
	}

	for i, j := range jobs {
		if ctx.Err() != nil {
			results[i] = Result{Job: j.Name, Outcome: NotRun, ExitCode: -1,
				Err: context.Cause(ctx)}
			continue
		}
		select {
		case next <- i:
		case <-ctx.Done():
			results[i] = Result{Job: j.Name, Outcome: NotRun, ExitCode: -1,
				Err: context.Cause(ctx)}
		}
	}
	close(next)
	wg.Wait()

	return results
}

// nameWidth is the length of the longest job name, so that the output
// prefixes of parallel jobs line up.
func nameWidth(jobs []repoconfig.Job) int {
	w := 0
	for _, j := range jobs {
		w = max(w, len(j.Name))
	}

	return w
}

// short returns the abbreviated commit id users know from git log.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}

	return sha
}
