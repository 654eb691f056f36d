package launch_test

import (
	"bytes"
	"encoding/pem"
	"io"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// gitServer is a real git smart-HTTP server over TLS, serving one
// repository that needs the clone token as the password, as GitHub does
// for a private repository.
type gitServer struct {
	url     string // the repository's clone URL
	caFile  string // the server's certificate, for GIT_SSL_CAINFO
	bare    string // the repository's directory
	mainSHA string // the head of main
	prSHA   string // a commit only refs/pull/42/head reaches
	// movedSHA is an older head of pull request 43: refs/pull/43/head
	// reaches it but no ref points at it any more.
	movedSHA string
	denied   atomic.Int32
}

const cloneToken = "ghs_CloneTestToken0123456789abcdef"

// git runs git in dir with a configuration of its own, failing the test on
// error, and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	return strings.TrimSpace(string(out))
}

func newGitServer(t *testing.T) *gitServer {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	execPath := strings.TrimSpace(mustOutput(t, gitPath, "--exec-path"))
	backend := filepath.Join(execPath, "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend is not installed")
	}

	root := t.TempDir()
	gs := &gitServer{bare: filepath.Join(root, "example.git")}
	git(t, root, "init", "-q", "--bare", gs.bare)

	work := filepath.Join(root, "work")
	git(t, root, "init", "-q", "-b", "main", work)
	writeFile(t, filepath.Join(work, "README"), "on main\n")
	git(t, work, "add", "README")
	git(t, work, "commit", "-q", "-m", "first")
	gs.mainSHA = git(t, work, "rev-parse", "HEAD")
	git(t, work, "push", "-q", gs.bare, "main")
	writeFile(t, filepath.Join(work, "README"), "from the pull request\n")
	git(t, work, "commit", "-q", "-am", "change")
	gs.prSHA = git(t, work, "rev-parse", "HEAD")
	git(t, work, "push", "-q", gs.bare, "HEAD:refs/pull/42/head")
	writeFile(t, filepath.Join(work, "README"), "moved\n")
	git(t, work, "commit", "-q", "-am", "older head of 43")
	gs.movedSHA = git(t, work, "rev-parse", "HEAD")
	writeFile(t, filepath.Join(work, "README"), "newest\n")
	git(t, work, "commit", "-q", "-am", "newer head of 43")
	git(t, work, "push", "-q", gs.bare, "HEAD:refs/pull/43/head")

	cgiHandler := &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		// Refusals ("not our ref") are expected in some cases; the
		// client's log, which the tests read, says the same.
		Stderr: io.Discard,
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "x-access-token" || pass != cloneToken {
			gs.denied.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	gs.url = srv.URL + "/example.git"

	gs.caFile = filepath.Join(root, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	writeFile(t, gs.caFile, string(ca))

	return gs
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}

	return string(out)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cloneResult is what running a Job's clone container left behind.
type cloneResult struct {
	err       error
	output    string
	workspace string
	home      string
	cwd       string
}

// runClone runs the clone init container of run's Job on this machine:
// its exact command and environment, with the pod's paths moved into
// temporary directories and git told to trust the test server.
func runClone(t *testing.T, gs *gitServer, run trigger.Run, token string,
	extraEnv ...string,
) cloneResult {
	t.Helper()
	job := buildJob(t, run, testOptions)
	c := container(t, job, launch.CloneContainer)

	res := cloneResult{workspace: t.TempDir(), home: t.TempDir(), cwd: t.TempDir()}
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, token)

	moved := map[string]string{
		"YACI_WORKSPACE": res.workspace, "YACI_CLONE_TOKEN_FILE": tokenFile, "HOME": res.home,
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_SSL_CAINFO=" + gs.caFile,
	}
	for _, v := range c.Env {
		value := v.Value
		if m, ok := moved[v.Name]; ok {
			value = m
		}
		env = append(env, v.Name+"="+value)
	}
	env = append(env, extraEnv...)

	cmd := exec.CommandContext(t.Context(), c.Command[0], c.Command[1:]...)
	cmd.Dir = res.cwd
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	res.err = cmd.Run()
	res.output = out.String()

	return res
}

// onServer returns run with its clone URL pointing at the test server.
func onServer(run trigger.Run, gs *gitServer, sha string) trigger.Run {
	run.Event.Repo.CloneURL = gs.url
	run.Event.SHA = sha
	return run
}

func TestCloneScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs git against a local server")
	}
	gs := newGitServer(t)

	t.Run("push commit", func(t *testing.T) {
		res := runClone(t, gs, onServer(pushRun(), gs, gs.mainSHA), cloneToken)
		checkCheckout(t, res, gs.mainSHA, "on main\n")
	})

	t.Run("pull request head by id", func(t *testing.T) {
		res := runClone(t, gs, onServer(prRun(), gs, gs.prSHA), cloneToken)
		checkCheckout(t, res, gs.prSHA, "from the pull request\n")
		if strings.Contains(res.output, "by id failed") {
			t.Errorf("fell back to the ref though the server serves ids:\n%s", res.output)
		}
	})

	t.Run("moved pull request head by ref when the server refuses ids", func(t *testing.T) {
		// Over protocol v0 a server without allowReachableSHA1InWant
		// serves only the commits its refs point at, so the fetch by id
		// of a head that has since moved on fails.
		run := onServer(prRun(), gs, gs.movedSHA)
		run.Event.Ref = "refs/pull/43/head"
		res := runClone(t, gs, run, cloneToken, "GIT_CONFIG_PARAMETERS='protocol.version'='0'")
		checkCheckout(t, res, gs.movedSHA, "moved\n")
		if !strings.Contains(res.output, "by id failed") {
			t.Errorf("did not take the ref fallback:\n%s", res.output)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		before := gs.denied.Load()
		res := runClone(t, gs, onServer(pushRun(), gs, gs.mainSHA), "ghs_wrong")
		if res.err == nil {
			t.Fatalf("clone with a wrong token succeeded:\n%s", res.output)
		}
		if gs.denied.Load() == before {
			t.Error("server never refused a request")
		}
	})

	t.Run("hostile ref is data", func(t *testing.T) {
		run := onServer(pushRun(), gs, strings.Repeat("f", 40))
		run.Event.Ref = "refs/heads/$(touch pwned)`touch pwned2`"
		res := runClone(t, gs, run, cloneToken)
		if res.err == nil {
			t.Fatalf("clone of a missing commit succeeded:\n%s", res.output)
		}
		for _, dir := range []string{res.cwd, res.workspace, res.home} {
			for _, name := range []string{"pwned", "pwned2"} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("the ref ran a command: %s exists", filepath.Join(dir, name))
				}
			}
		}
	})
}

// checkCheckout checks that the clone succeeded, checked out sha with the
// expected README, set up the run container's git, and left the token in
// no file.
func checkCheckout(t *testing.T, res cloneResult, sha, readme string) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("clone failed: %v\n%s", res.err, res.output)
	}
	if head := git(t, res.workspace, "rev-parse", "HEAD"); head != sha {
		t.Errorf("HEAD = %s, want %s", head, sha)
	}
	got, err := os.ReadFile(filepath.Join(res.workspace, "README"))
	if err != nil || string(got) != readme {
		t.Errorf("README = %q, %v; want %q", got, err, readme)
	}
	if !strings.Contains(res.output, "yaci: checked out "+sha) {
		t.Errorf("log does not name the commit:\n%s", res.output)
	}
	if strings.Contains(res.output, cloneToken) {
		t.Error("the token appears in the clone log")
	}

	gitconfig, err := os.ReadFile(filepath.Join(res.home, ".gitconfig"))
	if err != nil || !strings.Contains(string(gitconfig), "directory = "+res.workspace) {
		t.Errorf("home .gitconfig = %q, %v; want safe.directory for the workspace", gitconfig, err)
	}

	for _, dir := range []string{res.workspace, res.home} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && bytes.Contains(b, []byte(cloneToken)) {
				t.Errorf("the token was written to %s", path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
