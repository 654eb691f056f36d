package localrun_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/localrun"
	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// testGrace keeps kills quick; nothing asserts on time.
const testGrace = 300 * time.Millisecond

func TestRunPassAndFail(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"tracked.txt": "x"})
	cfg := config(t, `
  - {name: ok, image: alpine, run: "echo hello; test -f tracked.txt"}
  - {name: bad, image: alpine, run: "echo before; exit 3; echo never"}
  - {name: after, image: alpine, run: "echo after"}
`)

	results, out := run(t, t.Context(), cfg, localrun.Options{Dir: dir})

	want := []struct {
		outcome localrun.Outcome
		code    int
	}{{localrun.Passed, 0}, {localrun.Failed, 3}, {localrun.Passed, 0}}
	for i, w := range want {
		if r := results[i]; r.Outcome != w.outcome || r.ExitCode != w.code {
			t.Errorf("job %s: %s, exit %d (%v); want %s, exit %d",
				r.Job, r.Outcome, r.ExitCode, r.Err, w.outcome, w.code)
		}
	}
	for _, line := range []string{"[ok]    hello\n", "[bad]   before\n", "[after] after\n",
		"yaci: image alpine ignored: jobs run on this machine\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "never") {
		t.Errorf("sh -e went on after a failing command:\n%s", out)
	}
	if localrun.AllPassed(results) {
		t.Error("AllPassed is true with a failed job")
	}
}

func TestRunEnvironment(t *testing.T) {
	const branch, message = "feature/env", "Add a thing\n\nWith a body."
	dir := gitRepo(t, branch, map[string]string{"a.txt": "a"})
	gitIn(t, dir, "remote", "add", "origin",
		"https://x-access-token:s3cret@github.com/acme/widget.git")
	gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", message)
	sha := gitIn(t, dir, "rev-parse", "HEAD")
	envFile := filepath.Join(t.TempDir(), "env")
	cfg := config(t, `
  - name: show-env
    image: alpine
    run: env > "$OUT"; pwd >> "$OUT.pwd"
    env: {OUT: `+envFile+`, MINE: "1.10"}
`)
	environ := append(os.Environ(), "CI=false", "YACI_TOKEN=leaked", "YACI=no",
		"GIT_DIR=/nowhere", "KEEP_ME=kept", "HOME=/home/caller")

	results, _ := run(t, t.Context(), cfg, localrun.Options{Dir: dir, Environ: environ})
	if results[0].Outcome != localrun.Passed {
		t.Fatalf("job %s: %v", results[0].Outcome, results[0].Err)
	}
	env := readEnv(t, envFile)

	for name, want := range map[string]string{
		"CI": "true", "YACI": "true", "YACI_REPO": "acme/widget", "YACI_SHA": sha,
		"YACI_REF": "refs/heads/" + branch, "YACI_BRANCH": branch, "YACI_EVENT": "push",
		"YACI_JOB": "show-env", "YACI_COMMIT_MESSAGE": message, "MINE": "1.10",
		"KEEP_ME": "kept",
	} {
		if got, ok := env[name]; !ok || got != want {
			t.Errorf("%s = %q (set: %v), want %q", name, got, ok, want)
		}
	}
	if !strings.HasPrefix(env["YACI_RUN"], "yaci-show-env-") {
		t.Errorf("YACI_RUN = %q, want a run name", env["YACI_RUN"])
	}
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !guid.MatchString(env["YACI_DELIVERY"]) {
		t.Errorf("YACI_DELIVERY = %q, want a GUID", env["YACI_DELIVERY"])
	}
	for _, name := range []string{"YACI_TOKEN", "GIT_DIR", "YACI_PR_NUMBER"} {
		if v, ok := env[name]; ok {
			t.Errorf("%s=%q reached the job", name, v)
		}
	}
	home := env["HOME"]
	if home == "/home/caller" || !filepath.IsAbs(home) {
		t.Errorf("HOME = %q, want a fresh folder", home)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("job's HOME %s is still there after the run (%v)", home, err)
	}
	for name, v := range env {
		if strings.Contains(v, "s3cret") {
			t.Errorf("%s carries the remote's credentials: %q", name, v)
		}
	}

	t.Run("no remote", func(t *testing.T) {
		dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
		run(t, t.Context(), cfg, localrun.Options{Dir: dir})
		if got := readEnv(t, envFile)["YACI_REPO"]; got != filepath.Base(dir) {
			t.Errorf("YACI_REPO = %q, want the directory's name %q", got, filepath.Base(dir))
		}
	})
}

// TestRunEventDataIsData runs a job on a branch and a commit message
// that are shell code: they must reach the script as values only.
func TestRunEventDataIsData(t *testing.T) {
	const branch = "x$(touch${IFS}pwned-branch)`touch${IFS}pwned-tick`"
	const message = "$(touch pwned-message)"
	dir := gitRepo(t, branch, map[string]string{"a.txt": "a"})
	gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", message)
	listing := filepath.Join(t.TempDir(), "listing")
	cfg := config(t, `
  - name: echo
    image: alpine
    run: |
      echo "branch=$YACI_BRANCH"
      echo message=$YACI_COMMIT_MESSAGE
      ls -A . "$HOME" > "$LISTING"
    env: {LISTING: `+listing+`}
`)

	results, out := run(t, t.Context(), cfg, localrun.Options{Dir: dir})
	if results[0].Outcome != localrun.Passed {
		t.Fatalf("job %s: %v\n%s", results[0].Outcome, results[0].Err, out)
	}
	for _, want := range []string{"branch=" + branch + "\n", "message=" + message + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ls, err := os.ReadFile(listing)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	for _, where := range []string{string(ls), listDir(t, dir), listDir(t, wd)} {
		if strings.Contains(where, "pwned") {
			t.Fatalf("event data ran as code:\n%s", where)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"sleeps", `sleep 60 & echo $! > "$PIDFILE"; wait`},
		// The shell and its child ignore SIGTERM; SIGKILL follows.
		{"ignores SIGTERM", `trap '' TERM; sleep 60 & echo $! > "$PIDFILE"; wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
			pidFile := filepath.Join(t.TempDir(), "pid")
			cfg := config(t, `
  - name: slow
    image: alpine
    timeout: 1s
    env: {PIDFILE: `+pidFile+`}
    run: |
      `+tt.script+`
`)

			results, out := run(t, t.Context(), cfg,
				localrun.Options{Dir: dir, KillGrace: testGrace})

			r := results[0]
			if r.Outcome != localrun.TimedOut || !strings.Contains(r.Err.Error(), "timeout of 1s") {
				t.Errorf("job %s (%v), want timed out after 1s\n%s", r.Outcome, r.Err, out)
			}
			assertGone(t, pidFile)
			assertNoWorktrees(t, dir)
		})
	}
}

// TestRunStrayProcess checks that a job is over when its shell exits: a
// background process it left does not hold the run, and is killed.
func TestRunStrayProcess(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
	pidFile := filepath.Join(t.TempDir(), "pid")
	cfg := config(t, `
  - name: stray
    image: alpine
    run: 'sleep 60 & echo $! > "$PIDFILE"; echo done'
    env: {PIDFILE: `+pidFile+`}
`)

	results, out := run(t, t.Context(), cfg, localrun.Options{Dir: dir, KillGrace: testGrace})
	if results[0].Outcome != localrun.Passed || !strings.Contains(out, "[stray] done\n") {
		t.Errorf("job %s (%v):\n%s", results[0].Outcome, results[0].Err, out)
	}
	assertGone(t, pidFile)
}

func TestRunSelectJobs(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
	cfg := config(t, `
  - {name: a, image: alpine, run: echo a}
  - {name: b, image: alpine, run: echo b}
  - {name: c, image: alpine, run: echo c}
`)

	results, _ := run(t, t.Context(), cfg, localrun.Options{Dir: dir, Jobs: []string{"c", "a"}})
	if len(results) != 2 || results[0].Job != "a" || results[1].Job != "c" {
		t.Errorf("results = %+v, want a then c", results)
	}

	_, err := localrun.Run(t.Context(), cfg, localrun.Options{Dir: dir, Jobs: []string{"d"}})
	if !errors.Is(err, localrun.ErrUnknownJob) || !strings.Contains(err.Error(), "a, b, c") {
		t.Errorf("unknown job: err = %v, want ErrUnknownJob listing a, b, c", err)
	}
}

func TestRunDirty(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"v.txt": "committed\n"})
	writeFile(t, filepath.Join(dir, "v.txt"), "edited\n")
	cfg := config(t, `
  - {name: cat, image: alpine, run: cat v.txt; pwd}
`)

	_, out := run(t, t.Context(), cfg, localrun.Options{Dir: dir})
	if !strings.Contains(out, "[cat] committed\n") || !strings.Contains(out, "--dirty runs") {
		t.Errorf("clean run should see HEAD and say how to see the edit:\n%s", out)
	}

	_, out = run(t, t.Context(), cfg, localrun.Options{Dir: dir, Dirty: true})
	if !strings.Contains(out, "[cat] edited\n[cat] "+dir+"\n") {
		t.Errorf("dirty run should run in %s as it is:\n%s", dir, out)
	}

	t.Run("not a repository", func(t *testing.T) {
		plain := t.TempDir()
		writeFile(t, filepath.Join(plain, "v.txt"), "plain\n")
		_, err := localrun.Run(t.Context(), cfg, localrun.Options{Dir: plain})
		if !errors.Is(err, localrun.ErrNoCheckout) {
			t.Errorf("clean run outside git: err = %v, want ErrNoCheckout", err)
		}
		_, out := run(t, t.Context(), cfg, localrun.Options{Dir: plain, Dirty: true})
		if !strings.Contains(out, "[cat] plain\n") {
			t.Errorf("dirty run outside git:\n%s", out)
		}
	})

	t.Run("no commit yet", func(t *testing.T) {
		empty := t.TempDir()
		gitIn(t, empty, "init", "-q")
		_, err := localrun.Run(t.Context(), cfg, localrun.Options{Dir: empty})
		if !errors.Is(err, localrun.ErrNoCheckout) {
			t.Errorf("err = %v, want ErrNoCheckout", err)
		}
	})
}

// TestRunCleansUp checks that no checkout, HOME or worktree record is
// left behind, even by a failing job that made its folders read-only.
func TestRunCleansUp(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
	where := filepath.Join(t.TempDir(), "where")
	cfg := config(t, `
  - name: messy
    image: alpine
    run: |
      pwd > "$WHERE"; echo "$HOME" >> "$WHERE"
      mkdir -p ro/deep "$HOME/ro" && touch ro/deep/f && chmod 500 ro/deep ro "$HOME/ro"
      exit 1
    env: {WHERE: `+where+`}
`)

	results, _ := run(t, t.Context(), cfg, localrun.Options{Dir: dir})
	if results[0].Outcome != localrun.Failed {
		t.Fatalf("job %s (%v), want failed", results[0].Outcome, results[0].Err)
	}
	data, err := os.ReadFile(where)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(data)) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	assertNoWorktrees(t, dir)
}

// TestRunInterrupt cancels the run while its first job runs, as Ctrl-C
// does: that job is killed, the next never starts, and all results and
// cleanup still happen.
func TestRunInterrupt(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
	started := filepath.Join(t.TempDir(), "started")
	cfg := config(t, `
  - name: slow
    image: alpine
    run: touch "$STARTED"; sleep 60
    env: {STARTED: `+started+`}
  - {name: next, image: alpine, run: echo next}
`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(started); err == nil {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	results, out := run(t, ctx, cfg, localrun.Options{Dir: dir, KillGrace: testGrace})
	if results[0].Outcome != localrun.Canceled || results[1].Outcome != localrun.NotRun {
		t.Errorf("outcomes %s, %s; want canceled, not run\n%s",
			results[0].Outcome, results[1].Outcome, out)
	}
	assertNoWorktrees(t, dir)
}

// TestRunParallel runs two jobs that each wait for the other to start:
// they pass only if they run at the same time.
func TestRunParallel(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"a.txt": "a"})
	meet := t.TempDir()
	cfg := config(t, `
  - name: left
    image: alpine
    timeout: 1m
    run: touch "$MEET/left"; until [ -e "$MEET/right" ]; do sleep 0.05; done; echo met
    env: {MEET: `+meet+`}
  - name: right
    image: alpine
    timeout: 1m
    run: touch "$MEET/right"; until [ -e "$MEET/left" ]; do sleep 0.05; done; echo met
    env: {MEET: `+meet+`}
`)

	results, out := run(t, t.Context(), cfg, localrun.Options{Dir: dir, Parallel: 2})
	if !localrun.AllPassed(results) {
		t.Fatalf("results %+v\n%s", results, out)
	}
	for _, line := range []string{"[left]  met\n", "[right] met\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
}

// TestRunSubdirectory runs a .yaci.yml below the repository's root: the
// job runs in the same folder of its checkout.
func TestRunSubdirectory(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{"svc/api/a.txt": "a"})
	cfg := config(t, `
  - {name: where, image: alpine, run: ls}
`)

	sub := filepath.Join(dir, "svc", "api")
	results, out := run(t, t.Context(), cfg, localrun.Options{Dir: sub})
	if results[0].Outcome != localrun.Passed || !strings.Contains(out, "[where] a.txt\n") {
		t.Errorf("job %s (%v):\n%s", results[0].Outcome, results[0].Err, out)
	}
}

func TestWriteSummary(t *testing.T) {
	results := []localrun.Result{
		{Job: "vet", Outcome: localrun.Passed, Duration: 4230 * time.Millisecond},
		{Job: "lint", Outcome: localrun.Passed, Duration: 12345 * time.Microsecond},
		{Job: "unit-tests", Outcome: localrun.Failed, ExitCode: 1,
			Duration: 91*time.Second + 600*time.Millisecond, Err: errors.New("exit status 1")},
		{Job: "e2e", Outcome: localrun.NotRun, ExitCode: -1, Err: context.Canceled},
	}
	var b bytes.Buffer
	if err := localrun.WriteSummary(&b, results); err != nil {
		t.Fatal(err)
	}

	want := "" +
		"JOB         RESULT   DURATION\n" +
		"vet         passed   4.2s\n" +
		"lint        passed   12ms\n" +
		"unit-tests  failed   1m32s  exit status 1\n" +
		"e2e         not run  -      context canceled\n" +
		"4 jobs: 2 passed, 1 failed, 1 not run\n"
	if got := b.String(); got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
}

// run runs cfg with o, collecting the output, and checks that there is
// one result per job asked for.
func run(t *testing.T, ctx context.Context, cfg *repoconfig.Config,
	o localrun.Options) ([]localrun.Result, string) {
	t.Helper()
	var out syncBuffer
	o.Output = &out
	results, err := localrun.Run(ctx, cfg, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := len(o.Jobs)
	if want == 0 {
		want = len(cfg.Jobs)
	}
	if len(results) != want {
		t.Fatalf("%d results for %d jobs", len(results), want)
	}

	return results, out.String()
}

// config parses a jobs list with the real parser.
func config(t *testing.T, jobs string) *repoconfig.Config {
	t.Helper()
	cfg, err := repoconfig.Parse([]byte("jobs:" + jobs))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}

	return cfg
}

// gitRepo makes a repository on branch with one commit of files.
func gitRepo(t *testing.T, branch string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	gitIn(t, dir, "init", "-q", "--initial-branch="+branch)
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, data)
	}
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "commit", "-q", "-m", "first")

	return dir
}

// gitIn runs git in dir, with no user or system configuration.
func gitIn(t *testing.T, dir string, args ...string) string {
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

// assertNoWorktrees fails if the repository still lists a worktree
// besides its own.
func assertNoWorktrees(t *testing.T, dir string) {
	t.Helper()
	list := gitIn(t, dir, "worktree", "list", "--porcelain")
	if n := strings.Count(list, "worktree "); n != 1 {
		t.Errorf("%d worktrees left:\n%s", n, list)
	}
}

// assertGone fails if the process whose id is in pidFile is alive. The
// job has ended, so a live one escaped the kill.
func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the job wrote no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// A killed child of the job's shell stays a zombie until whoever
	// adopted it reaps it, and signal 0 still finds a zombie; zombies run
	// nothing, so they count as gone.
	if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
		t.Errorf("process %d outlived its job", pid)
	}
}

// zombie reports whether pid has exited and awaits its parent's wait.
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone since
	}
	// The state follows the command, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')

	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func readEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := make(map[string]string)
	var last string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name) {
			// A value with newlines continues on the next line.
			env[last] += "\n" + line
			continue
		}
		env[name], last = value, name
	}

	return env
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}

	return strings.Join(names, "\n")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects the output of parallel jobs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
