package localrun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// runJob runs one job in a checkout of its own and removes the checkout
// afterwards, whatever happened.
func (r *runner) runJob(ctx context.Context, job repoconfig.Job) Result {
	start := time.Now()
	out := newPrefixWriter(r.out, job.Name, r.width)
	defer out.Flush()

	res := r.runIn(ctx, job, out)
	res.Job, res.Duration = job.Name, time.Since(start)
	if res.Outcome == Passed {
		fmt.Fprintf(out, "yaci: passed in %s\n", roundDuration(res.Duration))
	} else {
		fmt.Fprintf(out, "yaci: %s in %s: %v\n", res.Outcome, roundDuration(res.Duration), res.Err)
	}

	return res
}

// runIn prepares the job's folders, runs its script and judges the
// outcome.
func (r *runner) runIn(ctx context.Context, job repoconfig.Job, out *prefixWriter) Result {
	tmp, err := os.MkdirTemp("", "yaci-run-"+job.Name+"-")
	if err != nil {
		return Result{Outcome: Error, ExitCode: -1, Err: fmt.Errorf("temp folder: %w", err)}
	}
	defer func() {
		if err := removeAll(tmp); err != nil {
			fmt.Fprintf(out, "yaci: cannot remove %s: %v\n", tmp, err)
		}
	}()

	home := filepath.Join(tmp, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return Result{Outcome: Error, ExitCode: -1, Err: fmt.Errorf("home folder: %w", err)}
	}
	dir, where := r.repo.dir, "in "+r.repo.dir
	if !r.opts.Dirty {
		checkout := filepath.Join(tmp, job.Name)
		if err := r.repo.addWorktree(ctx, checkout); err != nil {
			return r.failed(ctx, Error, fmt.Errorf("check out %s: %w", short(r.repo.sha), err))
		}
		defer func() {
			if err := r.repo.removeWorktree(checkout); err != nil {
				fmt.Fprintf(out, "yaci: cannot remove checkout %s: %v\n", checkout, err)
			}
		}()
		dir = filepath.Join(checkout, r.repo.prefix)
		where = "in a checkout of " + short(r.repo.sha)
	}

	timeout := cmp.Or(job.Timeout, r.opts.DefaultTimeout)
	fmt.Fprintf(out, "yaci: running %s, timeout %s\n", where, timeout)
	sh := script{
		run:     job.Run,
		dir:     dir,
		env:     jobEnv(r.base, clusterVars(r.repo, job, r.delivery), dir, home, r.repo.fullName()),
		timeout: timeout,
		grace:   r.opts.KillGrace,
		out:     out,
	}
	code, err := sh.exec(ctx)

	return judge(ctx, code, err, timeout)
}

// judge turns how the script ended into a Result.
func judge(ctx context.Context, code int, err error, timeout time.Duration) Result {
	switch {
	case errors.Is(err, errTimeout):
		return Result{Outcome: TimedOut, ExitCode: code,
			Err: fmt.Errorf("killed after its timeout of %s", timeout)}
	case err != nil && ctx.Err() != nil:
		return Result{Outcome: Canceled, ExitCode: code,
			Err: fmt.Errorf("killed: %w", context.Cause(ctx))}
	case errors.Is(err, errStart):
		return Result{Outcome: Error, ExitCode: code, Err: err}
	case err != nil:
		return Result{Outcome: Failed, ExitCode: code, Err: err}
	case code != 0:
		return Result{Outcome: Failed, ExitCode: code, Err: fmt.Errorf("exit status %d", code)}
	}

	return Result{Outcome: Passed}
}

// failed is the Result of a job that could not start: canceled if ctx
// ended, which is what made git fail, else outcome.
func (r *runner) failed(ctx context.Context, outcome Outcome, err error) Result {
	if ctx.Err() != nil {
		return Result{Outcome: Canceled, ExitCode: -1, Err: context.Cause(ctx)}
	}

	return Result{Outcome: outcome, ExitCode: -1, Err: err}
}
