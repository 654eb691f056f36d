package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunCommand runs "yaci run" through the real command dispatch on a
// real git repository.
func TestRunCommand(t *testing.T) {
	dir := jobRepo(t, `jobs:
  - {name: ok, image: golang:1.26, run: echo fine}
  - {name: bad, image: golang:1.26, run: echo broken; exit 4}
`)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{
			name: "all jobs", args: []string{dir}, code: 1,
			stdout: []string{
				"yaci: image golang:1.26 ignored: jobs run on this machine\n",
				"[ok]  fine\n", "[bad] broken\n", "JOB  RESULT  DURATION\n",
				"\nbad  failed  ", "exit status 4\n", "2 jobs: 1 passed, 1 failed\n",
			},
			stderr: []string{"yaci run: 1 of 2 jobs did not pass\n"},
		},
		{
			name: "one job", args: []string{"-job", "ok", dir}, code: 0,
			stdout: []string{"[ok] fine\n", "1 job: 1 passed\n"},
		},
		{
			name: "unknown job", args: []string{"-job", "nope", dir}, code: 2,
			stderr: []string{`yaci run: unknown job "nope": the jobs are ok, bad` + "\n"},
		},
		{
			name: "two dirs", args: []string{dir, dir}, code: 2,
			stderr: []string{"usage: yaci run [flags] [DIR]"},
		},
		{
			name: "no parallelism", args: []string{"-parallel", "0", dir}, code: 2,
			stderr: []string{"usage: yaci run"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"run"}, tt.args...), &stdout, &stderr)

			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
					code, tt.code, &stdout, &stderr)
			}
			assertContains(t, "stdout", stdout.String(), tt.stdout)
			assertContains(t, "stderr", stderr.String(), tt.stderr)
		})
	}
}

// TestRunCommandRefuses checks the errors that stop "yaci run" before
// any job: an invalid file (every problem listed, as validate does) and
// a directory that is not a repository.
func TestRunCommandRefuses(t *testing.T) {
	invalid := jobRepo(t, "jobs:\n  - {name: Bad, image: alpine}\n")
	plain := t.TempDir()
	writeFile(t, filepath.Join(plain, ".yaci.yml"), "jobs:\n  - {name: a, image: b, run: c}\n")

	tests := []struct {
		name   string
		dir    string
		stderr []string
	}{
		{"invalid file", invalid, []string{
			filepath.Join(invalid, ".yaci.yml") + ":2:5: job is missing run\n",
			filepath.Join(invalid, ".yaci.yml") + `:2:12: name "Bad" is not a DNS label`,
			"yaci run: " + filepath.Join(invalid, ".yaci.yml") + ": 2 problems\n",
		}},
		{"no file", t.TempDir(), []string{".yaci.yml: file does not exist\n"}},
		{"not a repository", plain, []string{"is not in a git repository (--dirty runs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run([]string{"run", tt.dir}, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			assertContains(t, "stderr", stderr.String(), tt.stderr)
		})
	}
}

// TestRunBinaryInterrupt runs the yaci binary as a user would and sends
// it SIGINT, as Ctrl-C does, while a job runs: the job's processes are
// stopped, the summary is printed, and no checkout is left.
func TestRunBinaryInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the yaci binary")
	}
	tmp := t.TempDir()
	started, pidFile := filepath.Join(tmp, "started"), filepath.Join(tmp, "pid")
	dir := jobRepo(t, `jobs:
  - name: slow
    image: alpine
    run: sleep 300 & echo $! > "$PIDFILE"; touch "$STARTED"; wait
    env: {STARTED: `+started+`, PIDFILE: `+pidFile+`}
  - {name: later, image: alpine, run: echo later}
`)
	bin := filepath.Join(tmp, "yaci")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build yaci: %v\n%s", err, out)
	}

	var stdout, stderr syncBuffer
	cmd := exec.Command(bin, "run", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, started)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}

	err := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("yaci exited with %v, want status 1", err)
	}
	assertContains(t, "stdout", stdout.String(), []string{
		"\nslow   canceled  ", "\nlater  not run   -", "2 jobs: 1 canceled, 1 not run\n",
	})
	assertContains(t, "stderr", stderr.String(), []string{"yaci run: interrupted\n"})
	if list := gitOut(t, dir, "worktree", "list"); strings.Count(list, "\n") != 0 {
		t.Errorf("worktrees left:\n%s", list)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if err := syscall.Kill(pid, 0); err == nil && !exited(pid) {
		t.Errorf("the job's process %d outlived the interrupt", pid)
	}
}

// jobRepo makes a git repository whose one commit holds config as its
// .yaci.yml.
func jobRepo(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	gitOut(t, dir, "init", "-q", "--initial-branch=main")
	writeFile(t, filepath.Join(dir, ".yaci.yml"), config)
	gitOut(t, dir, "add", ".")
	gitOut(t, dir, "commit", "-q", "-m", "add jobs")

	return dir
}

// gitOut runs git in dir with no user or system configuration.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}

	return strings.TrimSpace(string(out))
}

// waitForFile waits, a minute at most, until path exists.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exited reports whether pid is gone or a zombie, which runs nothing.
func exited(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')

	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func assertContains(t *testing.T, what, got string, wants []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}
