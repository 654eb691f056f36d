package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	// errTimeout is the cause of a job's context when its timeout ends
	// it.
	errTimeout = errors.New("timeout")
	// errStart wraps the errors of a script that could not start.
	errStart = errors.New("cannot start the script")
)

// script is one job's shell process.
type script struct {
	run     string
	dir     string
	env     []string
	timeout time.Duration
	grace   time.Duration
	out     io.Writer
}

// exec runs the script with "sh -e -c", as the cluster's run container
// does, in a process group of its own so that the whole group can be
// signalled: on timeout or when ctx ends it gets SIGTERM, then SIGKILL
// after the grace period. When the shell exits, whatever it left running
// in its group is killed, as a container's processes die with its main
// one. It returns the exit status, -1 if there was none, and an error
// when the script was killed or could not start; a context error is
// errTimeout or ctx's cause.
func (s script) exec(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, errTimeout)
	defer cancel()

	// A pipe of our own rather than exec's: Wait then returns when the
	// shell exits, even if a background process still holds the pipe.
	r, w, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("%w: output pipe: %w", errStart, err)
	}
	defer r.Close()
	cmd := exec.Command("sh", "-e", "-c", s.run)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return -1, fmt.Errorf("%w: %w", errStart, err)
	}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(s.out, r)
		close(copied)
	}()

	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	var killed atomic.Bool
	go s.killOnDone(ctx, pgid, exited, &killed)
	waitErr := cmd.Wait()
	close(exited)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.drain(r, copied)

	var cause error
	if killed.Load() {
		cause = context.Cause(ctx)
	}

	return exitStatus(waitErr, cause)
}

// killOnDone signals the process group when ctx ends before the shell
// exits: SIGTERM, then SIGKILL if the grace period passes. It sets
// killed before the first signal.
func (s script) killOnDone(ctx context.Context, pgid int, exited <-chan struct{},
	killed *atomic.Bool) {
	select {
	case <-exited:
		return
	case <-ctx.Done():
	}
	killed.Store(true)
	_ = syscall.Kill(-pgid, syscall.SIGTERM)

	grace := time.NewTimer(s.grace)
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// drain waits for the last output to be copied. A process that left the
// group (setsid) may hold the pipe open forever, so after the grace
// period the pipe is closed under it.
func (s script) drain(r *os.File, copied <-chan struct{}) {
	grace := time.NewTimer(s.grace)
	defer grace.Stop()
	select {
	case <-copied:
	case <-grace.C:
		r.Close()
		<-copied
	}
}

// exitStatus turns Wait's error into an exit status, and gives the
// reason the script did not exit by itself: killed, the cause yaci
// killed it for; otherwise the signal that did.
func exitStatus(waitErr, killed error) (int, error) {
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(waitErr, &exitErr):
		code = exitErr.ExitCode()
	case waitErr != nil:
		return -1, fmt.Errorf("wait for sh: %w", waitErr)
	}
	if killed != nil {
		return code, killed
	}
	if code == -1 {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return code, fmt.Errorf("killed by %s", ws.Signal())
		}
	}

	return code, nil
}
