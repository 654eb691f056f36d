package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { Main(m) }

// podsOf selects the pods of the Job called job.
func podsOf(job string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job}
}

// TestJobOutcomes runs Jobs through the real Job controller and kwok and
// checks that the image decides the outcome and each pod has its own log.
func TestJobOutcomes(t *testing.T) {
	cfg, ns := Namespace(t)
	cs := kubernetes.NewForConfigOrDie(cfg)

	tests := []struct {
		name, image string
		want        batchv1.JobConditionType
		wantLog     string
	}{
		{"succeeds", "busybox:1", batchv1.JobComplete, "kwok: exit status 0"},
		{"fails", FailImage, batchv1.JobFailed, "kwok: exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			script := "echo step one\necho " + tt.name
			job := createJob(ctx, t, cs, ns, tt.name, tt.image, script)
			got := waitJobFinished(ctx, t, cs, ns, job.Name)
			if got != tt.want {
				t.Fatalf("job %s ended %s, want %s", job.Name, got, tt.want)
			}

			log := podLog(ctx, t, cs, ns, job.Name, "run")
			for _, want := range []string{"+ echo step one", "+ echo " + tt.name, tt.wantLog} {
				if !strings.Contains(log, want) {
					t.Errorf("log of job %s lacks %q:\n%s", job.Name, want, log)
				}
			}
			if clone := podLog(ctx, t, cs, ns, job.Name, "clone"); !strings.Contains(clone, "kwok: clone") {
				t.Errorf("init container log = %q, want the fake clone line", clone)
			}
		})
	}
}

func createJob(ctx context.Context, t *testing.T, cs kubernetes.Interface,
	ns, name, image, script string) *batchv1.Job {
	t.Helper()
	zero := int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:  corev1.RestartPolicyNever,
				InitContainers: []corev1.Container{{Name: "clone", Image: "git:1", Command: []string{"true"}}},
				Containers: []corev1.Container{{
					Name: "run", Image: image, Command: []string{"sh", "-e", "-c", script},
				}},
			}},
		},
	}
	job, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}

	return job
}

// waitJobFinished watches the Job until the Job controller marks it
// Complete or Failed; the test itself never writes a status.
func waitJobFinished(ctx context.Context, t *testing.T, cs kubernetes.Interface,
	ns, name string) batchv1.JobConditionType {
	t.Helper()
	w, err := cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatalf("watch job %s: %v", name, err)
	}
	defer w.Stop()

	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			t.Fatalf("watch job %s: %v", name, ev.Object)
		}
		job, ok := ev.Object.(*batchv1.Job)
		if !ok {
			continue
		}
		for _, c := range job.Status.Conditions {
			done := c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed
			if done && c.Status == corev1.ConditionTrue {
				return c.Type
			}
		}
	}
	t.Fatalf("job %s did not finish: %v", name, ctx.Err())

	return ""
}

func podLog(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, job, container string) string {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, podsOf(job))
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of job %s: %v (%d found)", job, err, len(pods.Items))
	}
	rc, err := cs.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: container}).Stream(ctx)
	if err != nil {
		t.Fatalf("logs of %s/%s: %v", pods.Items[0].Name, container, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read logs: %v", err)
	}

	return string(data)
}

// TestStopLeavesNothing starts a second control plane and checks that
// Stop ends every component process.
func TestStopLeavesNothing(t *testing.T) {
	Config(t) // the binaries exist and integration tests are wanted
	bin, err := EnsureBinaries(t.Context(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(t.Context(), Options{BinDir: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pids := c.PIDs()
	if len(pids) != len(Components) {
		t.Errorf("running components %v, want %v", pids, Components)
	}

	c.Stop()
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	if _, err := os.Stat(filepath.Join(c.LogDir, "kube-apiserver.log")); err != nil {
		t.Errorf("component logs not kept: %v", err)
	}
}

// fakeBinDir makes a folder of stand-in binaries: each named component
// runs script, the others sleep, so start-up failures can be provoked.
func fakeBinDir(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range Components {
		body, ok := scripts[c]
		if !ok {
			body = "exec sleep 60"
		}
		err := os.WriteFile(filepath.Join(dir, c), []byte("#!/bin/sh\n"+body+"\n"), 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	return dir
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name    string
		opts    func(t *testing.T) Options
		wantAll []string
	}{
		{
			name: "component dies during start",
			opts: func(t *testing.T) Options {
				return Options{BinDir: fakeBinDir(t, map[string]string{"etcd": "echo cannot open data dir >&2; exit 3"})}
			},
			wantAll: []string{"etcd exited during start", "exit status 3", "etcd.log", "cannot open data dir"},
		},
		{
			name: "port in use",
			opts: func(t *testing.T) Options {
				return Options{BinDir: fakeBinDir(t, nil), APIPort: busyPort}
			},
			wantAll: []string{"kube-apiserver", fmt.Sprintf("port %d", busyPort), "not free"},
		},
		{
			name: "binary missing",
			opts: func(t *testing.T) Options {
				dir := fakeBinDir(t, nil)
				os.Remove(filepath.Join(dir, "kwok"))
				return Options{BinDir: dir}
			},
			wantAll: []string{"kwok", "binary missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts(t)
			o.Dir = t.TempDir()
			c, err := Start(t.Context(), o)
			if err == nil {
				c.Stop()
				t.Fatal("Start succeeded, want an error")
			}
			for _, want := range tt.wantAll {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestEnsureBinariesPrebuiltMissing(t *testing.T) {
	t.Setenv("YACI_TESTENV_BIN_DIR", t.TempDir())
	_, err := EnsureBinaries(t.Context(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("err = %v, want one naming the missing binaries", err)
	}
}

func TestParseKubeGoMod(t *testing.T) {
	gomod := []byte(`module k8s.io/kubernetes

go 1.26.0

require k8s.io/api v0.0.0

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	example.com/other => example.com/other v1.2.3
)
`)
	goVersion, staging := parseKubeGoMod(gomod)
	if goVersion != "1.26.0" {
		t.Errorf("go version = %q", goVersion)
	}
	if strings.Join(staging, ",") != "k8s.io/api,k8s.io/client-go" {
		t.Errorf("staging = %v", staging)
	}
}

// TestPullErrorImage checks the stand-in for an image that cannot be
// pulled: the pod waits in ImagePullBackOff and never runs.
func TestPullErrorImage(t *testing.T) {
	cfg, ns := Namespace(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	job := createJob(ctx, t, cs, ns, "pull", PullErrorImage, "true")
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, podsOf(job.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok {
			continue
		}
		if pod.Status.Phase != corev1.PodPending {
			t.Fatalf("pod %s reached phase %s, want it to stay Pending", pod.Name, pod.Status.Phase)
		}
		for _, st := range pod.Status.ContainerStatuses {
			if st.State.Waiting != nil && st.State.Waiting.Reason == "ImagePullBackOff" {
				if !strings.Contains(st.State.Waiting.Message, PullErrorImage) {
					t.Errorf("waiting message %q does not name the image", st.State.Waiting.Message)
				}
				return
			}
		}
	}
	t.Fatalf("pod never reported ImagePullBackOff: %v", ctx.Err())
}

// TestRunFor checks that RunForEnv keeps a pod Running for the duration
// it names before the pod completes.
func TestRunFor(t *testing.T) {
	cfg, ns := Namespace(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const runFor = 3 * time.Second
	zero := int32(0)
	job, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "slow"},
		Spec: batchv1.JobSpec{BackoffLimit: &zero, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "run", Image: "busybox:1", Command: []string{"true"},
				Env: []corev1.EnvVar{{Name: RunForEnv, Value: runFor.String()}},
			}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitJobFinished(ctx, t, cs, ns, job.Name); got != batchv1.JobComplete {
		t.Fatalf("job ended %s", got)
	}

	pods, err := cs.CoreV1().Pods(ns).List(ctx, podsOf(job.Name))
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods: %v", err)
	}
	term := pods.Items[0].Status.ContainerStatuses[0].State.Terminated
	if term == nil || pods.Items[0].Status.StartTime == nil {
		t.Fatalf("pod status lacks start or end: %+v", pods.Items[0].Status)
	}
	// Status times have one-second resolution.
	if ran := term.FinishedAt.Sub(pods.Items[0].Status.StartTime.Time); ran < runFor-time.Second {
		t.Errorf("pod ran %s, want about %s", ran, runFor)
	}
}
