package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/localrun"
	"github.com/yaci-ci/yaci/internal/repoconfig"
)

const runUsage = `usage: yaci run [flags] [DIR]

Runs the jobs of DIR/.yaci.yml (DIR defaults to .) on this machine, one
after another, each in a fresh git worktree of HEAD that is removed
afterwards, with "sh -e -c" and the environment the cluster gives a push
(CI=true, a fresh HOME, YACI_*). The image is ignored: jobs use this
machine's tools. Ctrl-C stops the jobs and still prints the summary.
Exit status: 0 every job passed, 1 a job did not or the file is
invalid, 2 usage.

flags:`

// runLocal is "yaci run": it runs a repository's jobs here, without a
// cluster or GitHub, streaming their output and ending with a summary.
func runLocal(args []string, stdout, stderr io.Writer) error {
	var o localrun.Options
	flags := flag.NewFlagSet("yaci run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, runUsage)
		flags.PrintDefaults()
	}
	flags.Func("job", "run only the job `NAME`; repeat for more", func(name string) error {
		o.Jobs = append(o.Jobs, name)
		return nil
	})
	flags.BoolVar(&o.Dirty, "dirty", false, "run in DIR as it is, uncommitted changes and "+
		"all, instead of a fresh checkout of HEAD; the jobs can change DIR")
	flags.IntVar(&o.Parallel, "parallel", 1, "run up to `N` jobs at once")
	flags.DurationVar(&o.DefaultTimeout, "timeout", launch.DefaultTimeout,
		"the timeout of a job whose config sets none")
	if err := flags.Parse(args); err != nil {
		return errUsage
	}
	if flags.NArg() > 1 || o.Parallel < 1 || o.DefaultTimeout <= 0 {
		fmt.Fprintln(stderr, "yaci run: one DIR at most, a positive -parallel and -timeout")
		flags.Usage()
		return errUsage
	}
	o.Dir = "."
	if flags.NArg() == 1 {
		o.Dir = flags.Arg(0)
	}

	cfg, err := loadConfig(filepath.Join(o.Dir, repoconfig.FileName), stderr)
	if err != nil {
		return err
	}

	// The first Ctrl-C cancels ctx; until stop, later ones are caught
	// too, so that a second one cannot cut the cleanup short.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	return runJobs(ctx, cfg, o, stdout, stderr)
}

// runJobs runs the jobs and writes the summary.
func runJobs(ctx context.Context, cfg *repoconfig.Config, o localrun.Options,
	stdout, stderr io.Writer) error {
	o.Output = stdout
	results, err := localrun.Run(ctx, cfg, o)
	if errors.Is(err, localrun.ErrUnknownJob) {
		fmt.Fprintf(stderr, "yaci run: %v\n", err)
		return errUsage
	}
	if err != nil {
		return err
	}

	fmt.Fprintln(stdout)
	if err := localrun.WriteSummary(stdout, results); err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case !localrun.AllPassed(results):
		return fmt.Errorf("%d of %s did not pass", notPassed(results), count(len(results), "job"))
	}

	return nil
}

// notPassed counts the jobs that did not pass.
func notPassed(results []localrun.Result) int {
	n := 0
	for _, r := range results {
		if r.Outcome != localrun.Passed {
			n++
		}
	}

	return n
}
