package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one running component with its log file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	log     *os.File
	// done is closed once the process has exited; waitErr is set before.
	done    chan struct{}
	waitErr error
}

func startProcess(name, bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: create log file: %w", name, err)
	}

	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so a terminal's Ctrl-C reaches only the
		// harness, which then stops components in order.
		Setpgid: true,
		// If the harness dies without stopping it, the kernel kills the
		// component instead of leaving it behind.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}

	p := &process{name: name, logPath: logPath, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()

	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end with SIGTERM and kills it when it has not
// ended within grace.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)

	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// failure describes why a component is not usable, naming it and the log
// to read, with the log's last lines so a CI transcript shows the cause.
func (p *process) failure(what string, cause error) error {
	msg := fmt.Sprintf("%s %s", p.name, what)
	if cause != nil {
		msg += ": " + cause.Error()
	}

	return fmt.Errorf("%s; read %s\n%s", msg, p.logPath, tail(p.logPath, 15))
}

// waitReady polls check until it succeeds, the process exits, ctx ends or
// timeout passes, whichever comes first.
func (p *process) waitReady(ctx context.Context, timeout time.Duration,
	check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var last error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}

		select {
		case <-p.done:
			return p.failure("exited during start", p.waitErr)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return p.failure(fmt.Sprintf("not ready after %s", timeout), last)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return "    " + string(bytes.Join(lines, []byte("\n    ")))
}
