package watch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/logs"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/trigger"
	yaciwatch "github.com/yaci-ci/yaci/internal/watch"
)

// latencyRuns is how many runs BenchmarkReportLatency measures.
const latencyRuns = 200

// BenchmarkReportLatency measures how soon a run's final status reaches
// GitHub after the run ends: 200 runs launched at 10 a second through the
// Dispatcher, each a pod that passes at once, with one watcher reporting
// and, as in yaci serve, archiving each run's logs (to a directory) first.
//
// Each interval ends when the fake GitHub recorded the status, and starts:
//   - watcher: when the watcher's informer delivered the update that
//     ended the run (Report.Seen), the pod's: the watcher's own latency;
//   - pod: when a watch of the benchmark's own saw the pod succeed: the
//     issue's "pod finished", as near as a client can see it. Both
//     watches get the same event from the API server, so the two
//     figures differ only by when each was delivered;
//   - cond: at the Job condition's lastTransitionTime, which Kubernetes
//     keeps in whole seconds, so up to a second too early. The Job
//     controller marks the Job up to a second after the pod ends, as it
//     batches pod updates, so this one is mostly negative: the status is
//     posted before the Job says it ended.
//
// Its figures are the point, so it runs its 200 runs once, whatever b.N.
func BenchmarkReportLatency(b *testing.B) {
	var mu sync.Mutex
	seen := map[string]time.Time{}
	store, err := logs.NewDirStore(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, func(o *yaciwatch.Options) {
		o.Archiver = logs.NewArchiver(kubernetes.NewForConfigOrDie(testenv.Config(b)), store,
			logs.ArchiverOptions{})
		o.Observe = func(r yaciwatch.Report) {
			mu.Lock()
			defer mu.Unlock()
			seen[r.Run] = r.Seen
		}
	})
	ended := watchEnds(b, e)
	e.start()

	var events []trigger.Event
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range latencyRuns {
		<-tick.C
		// A branch each: pushes to one branch would supersede each other.
		events = append(events, e.push(fmt.Sprintf("b%d", i), sha(1000+i), job{name: "bench"}))
	}

	var watcherMs, podMs, condMs []float64
	for _, ev := range events {
		got := e.final(ev, "bench")
		if got.State != string(trigger.StateSuccess) {
			b.Fatalf("run on %s: %s %q", ev.SHA[:7], got.State, got.Description)
		}
		name := runName(ev, "bench")
		end := ended.of(name)
		mu.Lock()
		watcherMs = append(watcherMs, ms(got.CreatedAt.Sub(seen[name])))
		mu.Unlock()
		podMs = append(podMs, ms(got.CreatedAt.Sub(end.pod)))
		condMs = append(condMs, ms(got.CreatedAt.Sub(end.cond)))
	}

	for _, m := range []struct {
		name string
		vals []float64
	}{{"watcher", watcherMs}, {"pod", podMs}, {"cond", condMs}} {
		p50, p99 := percentile(m.vals, 50), percentile(m.vals, 99)
		b.ReportMetric(p50, m.name+"-p50-ms")
		b.ReportMetric(p99, m.name+"-p99-ms")
		b.Logf("%s -> status posted, %d runs: min %.1f ms, p50 %.1f ms, p99 %.1f ms, max %.1f ms",
			m.name, len(m.vals), slices.Min(m.vals), p50, p99, slices.Max(m.vals))
	}
}

// ends records when the test's own watches saw each run end.
type ends struct {
	mu   sync.Mutex
	by   map[string]runEnd
	cond *sync.Cond
}

type runEnd struct {
	pod, cond time.Time
}

func (s *ends) of(name string) runEnd {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if e := s.by[name]; !e.cond.IsZero() && !e.pod.IsZero() {
			return e
		}
		s.cond.Wait()
	}
}

// watchEnds watches the env's Jobs and pods and records, for each run,
// when the watch saw its pod succeed and when its Job says it ended.
func watchEnds(b *testing.B, e *env) *ends {
	b.Helper()
	s := &ends{by: map[string]runEnd{}}
	s.cond = sync.NewCond(&s.mu)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	jobs, err := e.cs.BatchV1().Jobs(e.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pods, err := e.cs.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	record := func(name string, set func(*runEnd)) {
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.by[name]
		set(&r)
		s.by[name] = r
		s.cond.Broadcast()
	}

	go func() {
		for ev := range jobs.ResultChan() {
			job, ok := ev.Object.(*batchv1.Job)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			for _, c := range job.Status.Conditions {
				ended := c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet
				if ended && c.Status == corev1.ConditionTrue {
					record(job.Name, func(r *runEnd) {
						if r.cond.IsZero() {
							r.cond = c.LastTransitionTime.Time
						}
					})
					break
				}
			}
		}
	}()
	go func() {
		for ev := range pods.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || pod.Status.Phase != corev1.PodSucceeded {
				continue
			}
			now := time.Now()
			record(pod.Labels[batchv1.JobNameLabel], func(r *runEnd) {
				if r.pod.IsZero() {
					r.pod = now
				}
			})
		}
	}()

	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile of vals, nearest rank.
func percentile(vals []float64, p int) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1

	return s[max(i, 0)]
}

// memJobs is how many Jobs BenchmarkWatcherMemory has the watcher hold.
const memJobs = 5000

// BenchmarkWatcherMemory measures the memory of yaci's leader while 5,000
// runs exist: a Job each, as launch builds them, and a pod each. It runs
// the leader's parts, the watcher and the admitter sharing one informer
// of Jobs as yaci serve does, in a process of their own (this test
// binary, started again), so the figures are theirs and not the test's,
// in three states of the runs: with every pod running, the normal case
// of many runs under way; with every pod pending, which the watcher
// caches as it may be stuck; and with every pod ended and its run not
// reported, as when GitHub is down. Each state is measured twice: with
// the Go runtime's defaults, and with the soft memory limit the Helm
// chart sets (goMemLimit, as GOMEMLIMIT).
//
// The Jobs are created suspended and their pods as pods of no Job, with
// a status written by the benchmark and no scheduler or node to act on
// them: 5,000 running pods would take the 2 cores of this machine for
// minutes. What the informers hold is the same: a Job per run, and a pod
// per run that is not running. The admitter's clone token renewal fails
// (GitHub is down), so it starts none of the queued Jobs and keeps
// trying.
func BenchmarkWatcherMemory(b *testing.B) {
	e := newEnv(b)
	limit := chartMemLimit(b)
	measure := func(phase string) {
		reportMemory(b, phase, "", runWatcherProcess(b, e, ""))
		reportMemory(b, phase, limit, runWatcherProcess(b, e, limit))
	}
	begin := time.Now()
	forEachRun(b, memJobs, func(ctx context.Context, i int) error { return makeRun(ctx, e, i) })
	b.Logf("created %d jobs and %d running pods in %s", memJobs, memJobs,
		time.Since(begin).Round(time.Second))
	measure("running")

	pods, err := e.cs.CoreV1().Pods(e.ns).List(b.Context(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	forEachRun(b, len(pods.Items), func(ctx context.Context, i int) error {
		return makePending(ctx, e, &pods.Items[i])
	})
	measure("pending")

	if pods, err = e.cs.CoreV1().Pods(e.ns).List(b.Context(), metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	forEachRun(b, len(pods.Items), func(ctx context.Context, i int) error {
		return setPodStatus(ctx, e, &pods.Items[i], func(p *corev1.Pod) { p.Status = endedStatus(p) })
	})
	measure("ended")
}

// chartMemLimit returns the soft memory limit (GOMEMLIMIT) yaci's Helm
// chart deploys it with, so that the benchmark measures yaci as it is
// deployed too, not only with the Go runtime's default.
func chartMemLimit(b *testing.B) string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "charts", "yaci", "values.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	var values struct {
		GoMemLimit string `yaml:"goMemLimit"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		b.Fatal(err)
	}
	if values.GoMemLimit == "" {
		b.Fatal("the chart sets no goMemLimit")
	}

	return values.GoMemLimit
}

// reportMemory reports what the watcher process measured with its pods
// in the given phase.
func reportMemory(b *testing.B, phase, limit string, out memReport) {
	b.Helper()
	name, how := phase, "GOMEMLIMIT unset"
	if limit != "" {
		name, how = phase+"-limited", "GOMEMLIMIT="+limit
	}
	b.ReportMetric(float64(out.HeapAlloc)/1e6, name+"-heap-live-MB")
	b.ReportMetric(float64(out.RSS)/1e6, name+"-rss-MB")
	b.ReportMetric(float64(out.PeakRSS)/1e6, name+"-peak-rss-MB")
	b.Logf("leader of %d jobs and %d %s pods, %s: live heap %.1f MB (%.1f MB in use, "+
		"runtime %.1f MB), RSS %.1f MB (%.1f MB before it started), peak RSS %.1f MB, synced in %s",
		out.Jobs, out.Pods, phase, how, float64(out.HeapAlloc)/1e6, float64(out.HeapInuse)/1e6,
		float64(out.Runtime)/1e6, float64(out.RSS)/1e6, float64(out.BaselineRSS)/1e6,
		float64(out.PeakRSS)/1e6, out.Synced)
	if out.Jobs != memJobs || out.Pods != memJobs {
		b.Errorf("watcher process saw %d jobs and %d pods, want %d each",
			out.Jobs, out.Pods, memJobs)
	}
}

// makePending turns pod back to pending, its run container waiting to
// be created.
func makePending(ctx context.Context, e *env, pod *corev1.Pod) error {
	return setPodStatus(ctx, e, pod, func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = false
			p.Status.ContainerStatuses[i].State = corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"},
			}
		}
	})
}

// forEachRun calls do for 0 to n-1 from 32 goroutines, failing the
// benchmark on the first error.
func forEachRun(b *testing.B, n int, do func(ctx context.Context, i int) error) {
	b.Helper()
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range work {
				errs <- do(b.Context(), i)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// makeRun creates the suspended Job of run i and a running pod for it.
func makeRun(ctx context.Context, e *env, i int) error {
	ev := trigger.Event{
		Delivery: fmt.Sprintf("bench-%d", i), Kind: repoconfig.EventPush,
		Repo: trigger.Repo{Owner: owner, Name: repoName, CloneURL: "https://github.com/octo/app.git"},
		SHA:  sha(10_000 + i), Ref: "refs/heads/main", Branch: "main",
		Message: "Benchmark commit " + strconv.Itoa(i),
	}
	run := trigger.Run{Event: ev, Attempt: 1, Job: repoconfig.Job{
		Name: "test", Image: "golang:1.26", Run: "go vet ./...\ngo test ./...",
		Env: []repoconfig.EnvVar{{Name: "GOFLAGS", Value: "-mod=readonly"}},
	}}
	job, err := launch.BuildJob(run, launch.Options{Namespace: e.ns})
	if err != nil {
		return err
	}
	// Without a watcher to release them, the finalizer would keep the
	// namespace from being deleted after the benchmark.
	job.Finalizers = nil
	if _, err := e.cs.BatchV1().Jobs(e.ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		return err
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: job.Name + "-bench", Labels: job.Spec.Template.Labels,
		},
		Spec: job.Spec.Template.Spec,
	}
	pod.Spec.SchedulerName = "none"
	made, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return err
	}

	return setPodStatus(ctx, e, made, func(p *corev1.Pod) { p.Status = runningStatus(p) })
}

// setPodStatus changes pod's status as change says, again on a fresh copy
// if the pod changed meanwhile: testenv annotates every new pod.
func setPodStatus(ctx context.Context, e *env, pod *corev1.Pod, change func(*corev1.Pod)) error {
	pods := e.cs.CoreV1().Pods(e.ns)

	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		change(pod)
		_, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			if fresh, getErr := pods.Get(ctx, pod.Name, metav1.GetOptions{}); getErr == nil {
				pod = fresh
			}
		}
		return err
	})
}

// runningStatus is what a kubelet reports for a run's pod that runs.
func runningStatus(pod *corev1.Pod) corev1.PodStatus {
	now := metav1.Now()
	st := corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "10.0.0.1", PodIP: "10.244.0.9",
		HostIPs: []corev1.HostIP{{IP: "10.0.0.1"}}, PodIPs: []corev1.PodIP{{IP: "10.244.0.9"}},
		StartTime: &now, QOSClass: corev1.PodQOSGuaranteed,
	}
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReady,
		corev1.ContainersReady, corev1.PodScheduled} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{
			Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now,
		})
	}
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			ImageID:     "docker.io/alpine/git@sha256:" + strings.Repeat("ab", 32),
			ContainerID: "containerd://" + strings.Repeat("cd", 32), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
				ContainerID: "containerd://" + strings.Repeat("cd", 32),
			}},
		})
	}
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			ImageID:     "docker.io/library/golang@sha256:" + strings.Repeat("ef", 32),
			ContainerID: "containerd://" + strings.Repeat("01", 32), Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}

	return st
}

// endedStatus is what a kubelet reports for a run's pod whose script
// passed.
func endedStatus(pod *corev1.Pod) corev1.PodStatus {
	st := runningStatus(pod)
	st.Phase = corev1.PodSucceeded
	now := metav1.Now()
	for i := range st.ContainerStatuses {
		c := &st.ContainerStatuses[i]
		c.Ready, c.Started = false, ptr.To(false)
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
			ContainerID: c.ContainerID,
		}}
	}
	for i := range st.Conditions {
		if t := st.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			st.Conditions[i].Status = corev1.ConditionFalse
			st.Conditions[i].Reason = "PodCompleted"
		}
	}

	return st
}

// Environment variables that make this test binary the watcher process
// of BenchmarkWatcherMemory.
const (
	envMemKubeconfig = "YACI_WATCH_MEM_KUBECONFIG"
	envMemNamespace  = "YACI_WATCH_MEM_NAMESPACE"
	// envMemProfile, when set, names a file for the watcher process's
	// heap profile, to see what the memory is.
	envMemProfile = "YACI_WATCH_MEM_PROFILE"
)

// memReport is what the watcher process reports on its last line.
type memReport struct {
	Jobs, Pods int
	// HeapAlloc is the live heap after a collection; HeapInuse adds the
	// free space of the spans it occupies.
	HeapAlloc uint64
	HeapInuse uint64
	// Runtime is all the memory the Go runtime holds from the system
	// and has not given back, which GOMEMLIMIT bounds; RSS adds the
	// binary's own pages.
	Runtime uint64
	RSS     uint64
	PeakRSS uint64
	// BaselineRSS is the process's RSS before the watcher started: the
	// test binary and its client alone.
	BaselineRSS uint64
	Synced      time.Duration
}

// runWatcherProcess runs TestWatcherProcess in a new process of this
// binary against the env's namespace, with GOMEMLIMIT set to limit
// unless it is empty, and returns its report.
func runWatcherProcess(b *testing.B, e *env, limit string) memReport {
	b.Helper()
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	writeKubeconfig(b, e.cfg, kubeconfig)

	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestWatcherProcess$",
		"-test.bench=^$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envMemKubeconfig+"="+kubeconfig, envMemNamespace+"="+e.ns,
		"GOMEMLIMIT="+limit)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("watcher process: %v\n%s", err, out)
	}

	var rep memReport
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "memreport "); ok {
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				b.Fatal(err)
			}
			return rep
		}
	}
	b.Fatalf("watcher process gave no report:\n%s", out)

	return rep
}

func writeKubeconfig(b *testing.B, cfg *rest.Config, path string) {
	b.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host,
		CertificateAuthority: cfg.CAFile, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["a"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "a"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
}

// TestWatcherProcess is the leader process of BenchmarkWatcherMemory; it
// is skipped unless that benchmark starts it. It runs a watcher and an
// admitter on one informer of Jobs until the caches are synced and the
// watcher has looked at every Job, then prints its memory on a line of
// its own.
func TestWatcherProcess(t *testing.T) {
	kubeconfig := os.Getenv(envMemKubeconfig)
	if kubeconfig == "" {
		t.Skip("run by BenchmarkWatcherMemory")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs := kubernetes.NewForConfigOrDie(cfg)
	runtime.GC()
	baseline, _ := procMemory(t)

	ns := os.Getenv(envMemNamespace)
	jobs := launch.NewJobInformer(cs, ns)
	w, err := yaciwatch.New(cs, yaciwatch.Options{
		Namespace: ns,
		Jobs:      jobs,
		Statuses:  noStatuses{t},
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := queue.New(cs, queue.Options{
		Namespace: ns,
		Jobs:      jobs,
		Logger:    testLogger(t),
		Prepare: func(context.Context, string) error {
			return errors.New("GitHub is down (benchmark)")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	begin := time.Now()
	go jobs.RunWithContext(ctx)
	go func() { done <- w.Run(ctx) }()
	go func() { done <- a.Run(ctx) }()
	for !w.HasSynced() {
		time.Sleep(10 * time.Millisecond)
	}
	synced := time.Since(begin)
	// Let the workers look at every Job once, as after a restart.
	time.Sleep(3 * time.Second)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, peak := procMemory(t)
	if path := os.Getenv(envMemProfile); path != "" {
		writeHeapProfile(t, path)
	}
	nJobs, nPods := countRuns(t, cs, ns)
	rep, _ := json.Marshal(memReport{Jobs: nJobs, Pods: nPods, HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse,
		Runtime: ms.Sys - ms.HeapReleased,
		RSS:     rss, PeakRSS: peak, BaselineRSS: baseline, Synced: synced})
	fmt.Printf("memreport %s\n", rep)

	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	debug.FreeOSMemory()
}

// countRuns counts the Jobs and pods the watcher's selector selects in
// ns, to check that the benchmark measured the load it meant to.
func countRuns(t *testing.T, cs kubernetes.Interface, ns string) (jobs, pods int) {
	t.Helper()
	opts := metav1.ListOptions{LabelSelector: launch.Selector}
	jl, err := cs.BatchV1().Jobs(ns).List(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := cs.CoreV1().Pods(ns).List(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}

	return len(jl.Items), len(pl.Items)
}

// procMemory returns this process's resident set size and its peak, from
// /proc.
func procMemory(t *testing.T) (rss, peak uint64) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status on this system")
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}

	return rss, peak
}

// noStatuses fails the test on any status: the Jobs of the memory
// benchmark never end.
type noStatuses struct{ t *testing.T }

func (n noStatuses) SetStatus(context.Context, int64, string, string, string, trigger.Status) error {
	n.t.Error("a status was posted")
	return nil
}

func writeHeapProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}
