// Command yaci-cluster runs the local Kubernetes control plane that yaci's
// integration tests use (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok fake nodes, all built from Go modules), for
// people who want to try yaci against a cluster and for the test suite.
//
//	yaci-cluster build            build and cache the binaries
//	yaci-cluster up [flags]       start, print KUBECONFIG, stop on Ctrl-C
//	yaci-cluster exec -- CMD ...  start, run CMD against it, stop
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/yaci-ci/yaci/internal/testenv"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var exit exitCode
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		fmt.Fprintln(os.Stderr, "yaci-cluster:", err)
		os.Exit(1)
	}
}

// exitCode passes the exit status of the command run by "exec" through.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `usage:
  yaci-cluster build                 build and cache the control plane binaries
  yaci-cluster up [-dir D] [-port N] [-nodes N]
                                     start a control plane, print its KUBECONFIG,
                                     stop it on Ctrl-C or SIGTERM
  yaci-cluster exec [-nodes N] -- CMD [ARGS...]
                                     start a control plane, run CMD with KUBECONFIG
                                     set, stop it, exit with CMD's status`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitCode(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("yaci-cluster "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "folder for certificates, data and logs (default: a new temporary folder)")
	port := fs.Int("port", 0, "kube-apiserver port on 127.0.0.1 (default: a free port)")
	nodes := fs.Int("nodes", 1, "number of kwok nodes")
	if err := fs.Parse(args[1:]); err != nil {
		return exitCode(2)
	}

	opts := testenv.Options{Dir: *dir, APIPort: *port, Nodes: *nodes, Progress: stderr}
	switch args[0] {
	case "build":
		dir, err := testenv.EnsureBinaries(ctx, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, dir)
		return nil
	case "up":
		return up(ctx, opts, stdout)
	case "exec":
		if fs.NArg() == 0 {
			return fmt.Errorf("exec needs a command after --\n%s", usage)
		}
		return execCmd(ctx, opts, fs.Args(), stderr)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s\n", args[0], usage)
		return exitCode(2)
	}
}

func start(ctx context.Context, o testenv.Options) (*testenv.Cluster, error) {
	bin, err := testenv.EnsureBinaries(ctx, o.Progress)
	if err != nil {
		return nil, err
	}
	o.BinDir = bin
	begin := time.Now()
	c, err := testenv.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Progress, "yaci-cluster: control plane ready in %.1fs; logs in %s\n",
		time.Since(begin).Seconds(), c.LogDir)

	return c, nil
}

func up(ctx context.Context, o testenv.Options, stdout io.Writer) error {
	c, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer stopAndCheck(c, o.Progress)

	fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", c.Kubeconfig)
	fmt.Fprintf(o.Progress, "yaci-cluster: running; Ctrl-C stops it\n")
	<-ctx.Done()

	return nil
}

func execCmd(ctx context.Context, o testenv.Options, argv []string, stderr io.Writer) error {
	c, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer stopAndCheck(c, stderr)

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+c.Kubeconfig,
		testenv.EnvKubeconfig+"="+c.Kubeconfig,
		testenv.EnvLogDir+"="+c.LogDir,
	)
	// SIGTERM lets "go test" print what it has before the cluster goes.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()

	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "yaci-cluster: %s failed (%v); control plane logs in %s\n",
			filepath.Base(argv[0]), err, c.LogDir)
		return exitCode(max(ee.ExitCode(), 1))
	case err != nil:
		return err
	}

	return nil
}

// stopAndCheck stops the control plane and makes sure none of its
// processes outlived the stop: a leftover apiserver would hold ports and
// memory on a developer's machine long after the tests.
func stopAndCheck(c *testenv.Cluster, stderr io.Writer) {
	pids := c.PIDs()
	c.Stop()
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			fmt.Fprintf(stderr, "yaci-cluster: %s (pid %d) is still running after stop\n", name, pid)
			os.Exit(1)
		}
	}
	fmt.Fprintf(stderr, "yaci-cluster: stopped %d components; logs kept in %s\n", len(pids), c.LogDir)
}
