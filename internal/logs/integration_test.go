package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/trigger"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// cluster is a namespace of the real control plane with yaci's parts
// around it: a launcher, an archive, and the Handler on an httptest
// server.
type cluster struct {
	fixture
	cs       kubernetes.Interface
	ns       string
	launcher *launch.Launcher
	archiver *Archiver
}

func newCluster(t *testing.T, maxLogBytes int64) *cluster {
	t.Helper()
	cfg, ns := testenv.Namespace(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	l, err := launch.New(cs, launch.Options{Namespace: ns, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}

	c := &cluster{cs: cs, ns: ns, launcher: l}
	c.store = newTestStore(t, maxLogBytes)
	c.signer = testSigner(t)
	c.archiver = NewArchiver(cs, c.store, ArchiverOptions{Logger: quiet})
	c.h = NewHandler(cs, ns, c.store, c.signer, testAPIToken, quiet)
	mux := http.NewServeMux()
	c.h.Mount(mux)
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)

	return c
}

// launchRun starts a run of a job with script and env through the real
// launcher, as the dispatcher would.
func (c *cluster) launchRun(t *testing.T, job, image, script string, env map[string]string) string {
	t.Helper()
	run := trigger.Run{
		Event: trigger.Event{
			Delivery: "d-" + job,
			Kind:     repoconfig.EventPush,
			Repo: trigger.Repo{
				Owner: "yaci-ci", Name: "example",
				CloneURL: "https://github.com/yaci-ci/example.git",
			},
			SHA:    testSHA,
			Ref:    "refs/heads/main",
			Branch: "main",
		},
		Job:     repoconfig.Job{Name: job, Image: image, Run: script},
		Attempt: 1,
	}
	for k, v := range env {
		run.Job.Env = append(run.Job.Env, repoconfig.EnvVar{Name: k, Value: v})
	}
	name, created, err := c.launcher.Launch(t.Context(), run, trigger.Token{Value: "clone-token"})
	if err != nil || !created {
		t.Fatalf("launch %s: created=%v, %v", job, created, err)
	}

	return name
}

// jobCheck says whether a Job and its pods are in the state waited for.
type jobCheck func(*batchv1.Job, []*corev1.Pod) bool

// waitJob waits until the Job called name satisfies done and returns it.
func (c *cluster) waitJob(t *testing.T, name string, done jobCheck) (*batchv1.Job, []*corev1.Pod) {
	t.Helper()
	var job *batchv1.Job
	var pods []*corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 300*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			var err error
			if job, err = c.cs.BatchV1().Jobs(c.ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				return false, err
			}
			list, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{
				LabelSelector: podsSelector(name),
			})
			if err != nil {
				return false, err
			}
			pods = podPointers(list.Items)
			return done(job, pods), nil
		})
	if err != nil {
		t.Fatalf("wait for job %s: %v", name, err)
	}

	return job, pods
}

func finished(job *batchv1.Job, _ []*corev1.Pod) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) &&
			c.Status == corev1.ConditionTrue {
			return true
		}
	}

	return false
}

// deleteJob deletes the Job in the foreground and waits until it and its
// pods are gone, as when its TTL runs out.
func (c *cluster) deleteJob(t *testing.T, name string) {
	t.Helper()
	err := c.cs.BatchV1().Jobs(c.ns).Delete(t.Context(), name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
	})
	if err != nil {
		t.Fatalf("delete job %s: %v", name, err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 300*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{
				LabelSelector: podsSelector(name),
			})
			if err != nil || len(pods.Items) > 0 {
				return false, nil
			}
			// The pods are gone; the Job stays until the watcher, having
			// reported, lets it go. Here the test plays the watcher.
			patch := []byte(`{"metadata":{"finalizers":null}}`)
			_, err = c.cs.BatchV1().Jobs(c.ns).Patch(ctx, name, types.MergePatchType, patch,
				metav1.PatchOptions{})
			return apierrors.IsNotFound(err), nil
		})
	if err != nil {
		t.Fatalf("job %s or its pods not gone: %v", name, err)
	}
}

func (c *cluster) apiRun(t *testing.T, name string) APIRun {
	t.Helper()
	resp := c.get(t, "/api/v1/runs/"+name+"?t="+c.signer.Token(name))
	if resp.status != http.StatusOK {
		t.Fatalf("api run %s: %d %s", name, resp.status, resp.body)
	}
	var run APIRun
	if err := json.Unmarshal([]byte(resp.body), &run); err != nil {
		t.Fatal(err)
	}

	return run
}

// TestArchiveOutlivesJob runs real Jobs to their end, archives them,
// deletes them with their pods, and reads their logs from the archive.
func TestArchiveOutlivesJob(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)

	tests := []struct {
		job, image string
		state      RunState
		exit       int32
		last       string
	}{
		{"passes", "golang:1.26", StateSuccess, 0, "kwok: exit status 0"},
		{"fails", testenv.FailImage, StateFailure, 1, "kwok: exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			t.Parallel()
			script := "echo building " + tt.job + "\necho '<b>not bold</b>'"
			name := c.launchRun(t, tt.job, tt.image, script, nil)
			job, pods := c.waitJob(t, name, finished)

			if err := c.archiver.Archive(t.Context(), job, pods); err != nil {
				t.Fatalf("Archive: %v", err)
			}
			c.deleteJob(t, name)
			// Archiving again, now that the pods are gone, keeps the logs.
			if err := c.archiver.Archive(t.Context(), job, pods); err != nil {
				t.Fatalf("Archive again: %v", err)
			}

			page := c.get(t, "/runs/"+name+"?t="+c.signer.Token(name))
			if page.status != http.StatusOK {
				t.Fatalf("page: %d %s", page.status, page.body)
			}
			for _, want := range []string{
				"+ echo building " + tt.job,
				"+ echo &#39;&lt;b&gt;not bold&lt;/b&gt;&#39;",
				tt.last,
				`id="L2"`,
				`id="clone-L1"`,
				`state-` + string(tt.state),
			} {
				if !strings.Contains(page.body, want) {
					t.Errorf("archived page lacks %q", want)
				}
			}
			if strings.Contains(page.body, "follow.js") {
				t.Error("the page of an ended run offers to follow it")
			}

			run := c.apiRun(t, name)
			if run.State != tt.state || !run.Archived || len(run.Pods) != 1 ||
				run.Pods[0].ExitCode == nil || *run.Pods[0].ExitCode != tt.exit {
				t.Fatalf("api run = %+v", run)
			}
			if run.Delivery != "d-"+tt.job || run.Started == nil || run.Finished == nil {
				t.Errorf("api run lacks identity or times: %+v", run)
			}
			raw := c.get(t, run.Pods[0].LogURL)
			if !strings.HasPrefix(raw.body, "+ echo building "+tt.job+"\n") ||
				!strings.HasSuffix(raw.body, tt.last+"\n") {
				t.Errorf("raw log = %q", raw.body)
			}
		})
	}
}

// TestArchiveWithoutPods archives a run whose pods were deleted before
// the archiver got to them: the run is archived with notes, not an error.
func TestArchiveWithoutPods(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	name := c.launchRun(t, "gone", "golang:1.26", "echo hi", nil)
	job, pods := c.waitJob(t, name, finished)
	for _, p := range pods {
		err := c.cs.CoreV1().Pods(c.ns).Delete(t.Context(), p.Name, metav1.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := wait.PollUntilContextTimeout(t.Context(), 300*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			_, err := c.cs.CoreV1().Pods(c.ns).Get(ctx, pods[0].Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	if err != nil {
		t.Fatal(err)
	}

	if err := c.archiver.Archive(t.Context(), job, pods); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	run := c.apiRun(t, name)
	for _, ctr := range run.Pods[0].Containers {
		if ctr.LogURL != "" || !strings.Contains(ctr.Note, "no longer exists") {
			t.Errorf("container %s: log %q, note %q", ctr.Name, ctr.LogURL, ctr.Note)
		}
	}
	page := c.get(t, "/runs/"+name+"?t="+c.signer.Token(name))
	if !strings.Contains(page.body, "log unavailable: the pod no longer exists") {
		t.Errorf("page does not say why the log is missing:\n%s", page.body)
	}
}

// TestLiveRun reads a running run's page and follows its stream until the
// run ends.
func TestLiveRun(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	name := c.launchRun(t, "slow", "golang:1.26", "echo live one\necho live two",
		map[string]string{testenv.RunForEnv: "20s"})
	running := func(_ *batchv1.Job, pods []*corev1.Pod) bool {
		return len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning
	}
	c.waitJob(t, name, running)
	token := c.signer.Token(name)

	page := c.get(t, "/runs/"+name+"?t="+token)
	for _, want := range []string{"state-running", "+ echo live one", `id="follow"`,
		`data-stream="` + name + `/stream?container=run`, "follow.js"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("live page lacks %q", want)
		}
	}
	if run := c.apiRun(t, name); run.State != StateRunning || run.Archived {
		t.Errorf("api run while running = %s, archived %v", run.State, run.Archived)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.srv.URL+"/runs/"+name+"/stream?container=run&from=1&t="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	events := readEvents(t, resp.Body)
	var lines []streamLine
	sawWhileRunning := false
	for ev := range events {
		if ev.name == "end" {
			if !strings.Contains(ev.data, `"success"`) {
				t.Errorf("end event %q, want the run's success", ev.data)
			}
			break
		}
		var l streamLine
		if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
			t.Fatalf("event %q: %v", ev.data, err)
		}
		if strconv.Itoa(l.N) != ev.id {
			t.Errorf("event id %s for line %d", ev.id, l.N)
		}
		lines = append(lines, l)
		if len(lines) == 1 {
			pod := c.podPhase(t, name)
			sawWhileRunning = pod == corev1.PodRunning
		}
	}
	if !sawWhileRunning {
		t.Error("the first streamed line did not arrive while the pod ran")
	}
	if len(lines) == 0 || lines[0].N != 2 || lines[0].Segments[0][1] != "+ echo live two" {
		t.Fatalf("streamed lines from 2 = %+v", lines)
	}
	if last := lines[len(lines)-1]; last.Segments[0][1] != "kwok: exit status 0" {
		t.Errorf("last streamed line = %+v", last)
	}
}

func (c *cluster) podPhase(t *testing.T, name string) corev1.PodPhase {
	t.Helper()
	pods, err := c.cs.CoreV1().Pods(c.ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: podsSelector(name),
	})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of %s: %v", name, err)
	}

	return pods.Items[0].Status.Phase
}

type sseEvent struct{ id, name, data string }

// readEvents parses server-sent events from r until it ends.
func readEvents(t *testing.T, r io.Reader) <-chan sseEvent {
	t.Helper()
	out := make(chan sseEvent)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()

	return out
}

// TestBigLogTruncated archives a log longer than the store's bound.
func TestBigLogTruncated(t *testing.T) {
	t.Parallel()
	const bound = 64 << 10
	c := newCluster(t, bound)
	name := c.launchRun(t, "big", "golang:1.26", "echo big",
		map[string]string{testenv.LogLinesEnv: "20000"})
	job, _ := c.waitJob(t, name, finished)
	// Without pods from the caller, the archiver finds them itself.
	if err := c.archiver.Archive(t.Context(), job, nil); err != nil {
		t.Fatal(err)
	}
	c.deleteJob(t, name)

	run := c.apiRun(t, name)
	if len(run.Pods) != 1 {
		t.Fatalf("archived pods = %+v", run.Pods)
	}
	ctr := run.Pods[0].Containers[1]
	if !ctr.Truncated || ctr.Bytes != bound {
		t.Errorf("run container: truncated %v, %d bytes; want cut at %d",
			ctr.Truncated, ctr.Bytes, bound)
	}
	raw := c.get(t, run.Pods[0].LogURL)
	if !strings.HasPrefix(raw.body, "+ echo big\nline 1 of 20000\n") ||
		!strings.HasSuffix(raw.body, TruncationMarker(bound)) {
		t.Errorf("raw log starts %.40q and ends %q", raw.body, raw.body[max(0, len(raw.body)-80):])
	}
	page := c.get(t, "/runs/"+name+"?t="+c.signer.Token(name))
	if !strings.Contains(page.body, "log truncated by yaci after 64 KiB") {
		t.Error("the page does not show where the log was cut")
	}
}
