package logs

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const (
	testNamespace = "yaci-runs"
	testAPIToken  = "api-token-for-tests"
)

// testRunFor returns a push run of job on the test commit.
func testRunFor(job string) trigger.Run {
	return trigger.Run{
		Event: trigger.Event{
			Delivery: "5c1e9a52-8f0b-11ef-9d3a-0a58a9feac02",
			Kind:     repoconfig.EventPush,
			Repo: trigger.Repo{
				Owner: "yaci-ci", Name: "example",
				CloneURL: "https://github.com/yaci-ci/example.git",
			},
			SHA:    testSHA,
			Ref:    "refs/heads/main",
			Branch: "main",
		},
		Job: repoconfig.Job{
			Name: job, Image: "golang:1.26", Run: "go test ./...",
			On: []repoconfig.EventKind{repoconfig.EventPush},
		},
		Attempt: 1,
	}
}

// endedJob returns the Job of run as the API server shows it once the
// Job controller has marked it complete, and its one pod.
func endedJob(t *testing.T, run trigger.Run, start time.Time) (*batchv1.Job, *corev1.Pod) {
	t.Helper()
	job, err := launch.BuildJob(run, launch.Options{Namespace: testNamespace})
	if err != nil {
		t.Fatal(err)
	}
	job.UID = types.UID("uid-" + job.Name)
	job.Spec.Suspend = nil
	job.Status.StartTime = &metav1.Time{Time: start}
	job.Status.CompletionTime = &metav1.Time{Time: start.Add(83 * time.Second)}
	job.Status.Conditions = []batchv1.JobCondition{{
		Type: batchv1.JobComplete, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.Time{Time: start.Add(83 * time.Second)},
	}}

	zero := int32(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: job.Name + "-x7k2p", Namespace: testNamespace,
			Labels:            map[string]string{jobNameLabel: job.Name},
			OwnerReferences:   []metav1.OwnerReference{{Kind: "Job", Name: job.Name, UID: job.UID}},
			CreationTimestamp: metav1.Time{Time: start},
		},
		Spec: job.Spec.Template.Spec,
		Status: corev1.PodStatus{
			Phase: corev1.PodSucceeded,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "clone", State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: zero, Reason: "Completed"},
			}}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "run", State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: zero, Reason: "Completed"},
			}}},
		},
	}

	return job, pod
}

// fixture is a Handler over a fake cluster and a real directory store.
type fixture struct {
	h      *Handler
	srv    *httptest.Server
	store  *DirStore
	client *fake.Clientset
	signer *Signer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{client: fake.NewClientset(), store: newTestStore(t, 0), signer: testSigner(t)}
	f.h = NewHandler(f.client, testNamespace, f.store, f.signer, testAPIToken,
		slog.New(slog.DiscardHandler))
	f.h.now = func() time.Time { return time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC) }
	mux := http.NewServeMux()
	f.h.Mount(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)

	return f
}

// archive stores an ended run whose logs are given, as the Archiver would.
func (f *fixture) archive(t *testing.T, job string, logs map[string]string) *Run {
	t.Helper()
	return archiveTo(t, f.store, job, logs)
}

// createRunning creates, in the fake cluster, the Job of a run of job that
// started at start and its pod, which is running.
func (f *fixture) createRunning(t *testing.T, job string, start time.Time) *batchv1.Job {
	t.Helper()
	j, pod := endedJob(t, testRunFor(job), start)
	j.Status.Conditions, j.Status.CompletionTime = nil, nil
	pod.Status.Phase = corev1.PodRunning
	pod.Labels = j.Spec.Template.Labels
	pod.Labels[jobNameLabel] = j.Name
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pod.Status.ContainerStatuses[0].State = running

	ctx, opts := t.Context(), metav1.CreateOptions{}
	if _, err := f.client.BatchV1().Jobs(testNamespace).Create(ctx, j, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.CoreV1().Pods(testNamespace).Create(ctx, pod, opts); err != nil {
		t.Fatal(err)
	}

	return j
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) get(t *testing.T, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	return response{resp.StatusCode, resp.Header, string(body)}
}

const colourLog = "+ go test ./...\n\x1b[1;32mok\x1b[0m  \texample/parser\t0.012s\n" +
	"\x1b[31m--- FAIL: <TestX>\x1b[0m & friends\nkwok: exit status 0\n"

func TestPageGolden(t *testing.T) {
	f := newFixture(t)
	run := f.archive(t, "unit", map[string]string{"clone": "kwok: clone\n", "run": colourLog})

	resp := f.get(t, "/runs/"+run.Name+"?t="+f.signer.Token(run.Name))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	for header, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if csp := resp.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if strings.Contains(resp.body, "http://") || strings.Contains(resp.body, "https://") {
		t.Error("the page refers to an external address")
	}

	golden(t, "page.golden.html", resp.body)
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; run with -update and check the diff\ngot:\n%s",
			name, got)
	}
}

func TestAccessRules(t *testing.T) {
	f := newFixture(t)
	run := f.archive(t, "unit", map[string]string{"run": "secret output\n"})
	token := f.signer.Token(run.Name)
	other := f.signer.Token("yaci-unit-ffffffffffffffff")
	bearer := []string{"Authorization", "Bearer " + testAPIToken}

	tests := []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{"page with token", "/runs/" + run.Name + "?t=" + token, nil, 200},
		{"page without token", "/runs/" + run.Name, nil, 404},
		{"page with wrong token", "/runs/" + run.Name + "?t=" + other, nil, 404},
		{"page with bearer", "/runs/" + run.Name, bearer, 200},
		{"page with wrong bearer", "/runs/" + run.Name, []string{"Authorization", "Bearer nope"}, 404},
		{"unknown run with its token", "/runs/yaci-unit-ffffffffffffffff?t=" + other, nil, 404},
		{"bad name", "/runs/..%2Fetc?t=" + token, nil, 404},
		{"malformed query", "/runs/" + run.Name + "?t=%zz", nil, 400},
		{"raw log", "/runs/" + run.Name + "/log?t=" + token, nil, 200},
		{"raw log without token", "/runs/" + run.Name + "/log", nil, 404},
		{"raw log of a container without log",
			"/runs/" + run.Name + "/log?container=clone&t=" + token, nil, 404},
		{"raw log bad container", "/runs/" + run.Name + "/log?container=../x&t=" + token, nil, 400},
		{"stream without token", "/runs/" + run.Name + "/stream", nil, 404},
		{"stream bad from", "/runs/" + run.Name + "/stream?from=-1&t=" + token, nil, 400},
		{"api run with token", "/api/v1/runs/" + run.Name + "?t=" + token, nil, 200},
		{"api run with bearer", "/api/v1/runs/" + run.Name, bearer, 200},
		{"api run without", "/api/v1/runs/" + run.Name, nil, 404},
		{"api list with bearer", "/api/v1/runs?repo=yaci-ci/example&sha=" + testSHA, bearer, 200},
		{"api list with run token", "/api/v1/runs?repo=yaci-ci/example&t=" + token, nil, 401},
		{"api list bad repo", "/api/v1/runs?repo=../etc", bearer, 400},
		{"api list no repo", "/api/v1/runs", bearer, 400},
		{"api list bad sha", "/api/v1/runs?repo=yaci-ci/example&sha=abc", bearer, 400},
		{"asset", "/runs/yaci.css", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.get(t, tt.path, tt.header...)
			if resp.status != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.want, resp.body)
			}
			if tt.want != 200 && strings.Contains(resp.body, "secret output") {
				t.Error("a refused request got the log")
			}
			if strings.HasPrefix(tt.path, "/api/") {
				if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("API answered with Content-Type %q", ct)
				}
			}
		})
	}

	resp, err := f.srv.Client().Post(f.srv.URL+"/runs/"+run.Name+"?t="+token, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST answered %d, want 405", resp.StatusCode)
	}
}

// brokenStore fails every call with an error that names a path, which
// must not reach the client.
type brokenStore struct{ Store }

var errDisk = errors.New("open /var/lib/yaci/runs/x/run.json: input/output error")

func (brokenStore) GetRun(context.Context, string) (*Run, error) { return nil, errDisk }

func TestErrorsDoNotLeak(t *testing.T) {
	f := newFixture(t)
	f.h.store = brokenStore{f.store}
	name := "yaci-unit-0123456789abcdef"

	for _, path := range []string{"/runs/" + name, "/api/v1/runs/" + name} {
		resp := f.get(t, path+"?t="+f.signer.Token(name))
		if resp.status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", path, resp.status)
		}
		if strings.Contains(resp.body, "/var/lib") || strings.Contains(resp.body, "input/output") {
			t.Errorf("%s: the answer leaks the error: %s", path, resp.body)
		}
	}
}

func TestAPIRun(t *testing.T) {
	f := newFixture(t)
	run := f.archive(t, "unit", map[string]string{"clone": "kwok: clone\n", "run": colourLog})
	token := f.signer.Token(run.Name)

	resp := f.get(t, "/api/v1/runs/"+run.Name+"?t="+token)
	var got APIRun
	if err := json.Unmarshal([]byte(resp.body), &got); err != nil {
		t.Fatalf("decode %s: %v", resp.body, err)
	}
	if got.Repo != "yaci-ci/example" || got.SHA != testSHA || got.Job != "unit" ||
		got.Event != "push" || got.State != StateSuccess || !got.Archived ||
		got.DurationSeconds != 83 || got.Token != token {
		t.Errorf("run = %+v", got)
	}
	if len(got.Pods) != 1 || got.Pods[0].ExitCode == nil || *got.Pods[0].ExitCode != 0 {
		t.Fatalf("pods = %+v", got.Pods)
	}

	raw := f.get(t, got.Pods[0].LogURL)
	if raw.status != 200 || raw.body != colourLog {
		t.Errorf("log_url %s: %d %q", got.Pods[0].LogURL, raw.status, raw.body)
	}
	page := f.get(t, got.URL)
	if page.status != 200 || !strings.Contains(page.body, `id="L4"`) {
		t.Errorf("url %s: %d", got.URL, page.status)
	}
}

func TestAPIListMergesClusterAndArchive(t *testing.T) {
	f := newFixture(t)
	archived := f.archive(t, "unit", map[string]string{"run": "ok\n"})

	// A run still going, in the cluster only.
	f.createRunning(t, "lint", time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC))
	// The archived run's Job still exists too; it must be listed once.
	oldJob, _ := endedJob(t, testRunFor("unit"), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if _, err := f.client.BatchV1().Jobs(testNamespace).Create(t.Context(), oldJob,
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	resp := f.get(t, "/api/v1/runs?repo=yaci-ci/example&sha="+testSHA,
		"Authorization", "Bearer "+testAPIToken)
	var list APIRunList
	if err := json.Unmarshal([]byte(resp.body), &list); err != nil {
		t.Fatalf("decode %s: %v", resp.body, err)
	}
	var got []string
	for _, r := range list.Runs {
		got = append(got, r.Job+":"+string(r.State)+":"+boolWord(r.Archived, "archived", "live"))
		if r.Token != f.signer.Token(r.Name) {
			t.Errorf("run %s listed without its token", r.Name)
		}
	}
	want := []string{"lint:running:live", "unit:success:archived"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %v, want %v (archived %s)", got, want, archived.Name)
	}
}

func boolWord(b bool, yes, no string) string {
	if b {
		return yes
	}

	return no
}

func TestStreamArchived(t *testing.T) {
	f := newFixture(t)
	run := f.archive(t, "unit", map[string]string{"run": "one\n\x1b[33mtwo\nthree\n"})

	resp := f.get(t, "/runs/"+run.Name+"/stream?container=run&from=1&t="+f.signer.Token(run.Name))
	if ct := resp.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := "retry: 3000\n\n" +
		"id: 2\ndata: {\"n\":2,\"s\":[[\"ansi-yellow\",\"two\"]]}\n\n" +
		"id: 3\ndata: {\"n\":3,\"s\":[[\"ansi-yellow\",\"three\"]]}\n\n" +
		"event: end\ndata: {\"state\":\"success\"}\n\n"
	if resp.body != want {
		t.Errorf("stream:\n%s\nwant:\n%s", resp.body, want)
	}

	// A reconnecting EventSource says where it was.
	resp = f.get(t, "/runs/"+run.Name+"/stream?t="+f.signer.Token(run.Name), "Last-Event-ID", "3")
	if strings.Contains(resp.body, "id: ") || !strings.Contains(resp.body, "event: end") {
		t.Errorf("stream after the last line:\n%s", resp.body)
	}
}
