package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// LogLinesEnv is an environment variable a job can set (in .yaci.yml) to
// make its fake log that many lines longer, for tests of big logs.
const LogLinesEnv = "KWOK_LOG_LINES"

// maxLogLines bounds LogLinesEnv so a typo cannot fill the disk.
const maxLogLines = 2_000_000

var logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

// startPodLogWriter gives every pod owned by a Job a log of its own: kwok
// serves one file for all pods unless a Logs object names the pod. The
// log echoes the pod's script and says how it ended, so a test can tell
// one run's log from another's.
func (c *Cluster) startPodLogWriter(cs kubernetes.Interface) error {
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.Dir, "kwok-logs")
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(cs, 0)
	pods := factory.Core().V1().Pods().Informer()
	_, err = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			err := registerPod(ctx, cs, dc, dir, pod)
			// A test that ended deletes its namespace; its last pods
			// need no log.
			ended := ctx.Err() != nil ||
				apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
			if err != nil && !ended {
				fmt.Fprintf(os.Stderr, "testenv: log for pod %s/%s: %v\n", pod.Namespace, pod.Name, err)
			}
		},
	})
	if err != nil {
		cancel()
		return err
	}

	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return fmt.Errorf("sync %v informer", typ)
		}
	}
	c.stopWriter = cancel
	c.writerDone = make(chan struct{})
	go func() {
		<-ctx.Done()
		factory.Shutdown()
		close(c.writerDone)
	}()

	return nil
}

// registerPod writes the logs of a Job's pod, then marks the pod so that
// kwok lets it run (see logsAnnotation). Other pods are only marked.
func registerPod(ctx context.Context, cs kubernetes.Interface, dc dynamic.Interface,
	dir string, pod *corev1.Pod) error {
	if pod.Annotations[logsAnnotation] != "" {
		return nil
	}
	if ownedByJob(pod) {
		if err := writePodLogs(ctx, dc, dir, pod); err != nil {
			return err
		}
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"written"}}}`, logsAnnotation)
	_, err := cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType,
		patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}

	return err
}

func ownedByJob(pod *corev1.Pod) bool {
	return slices.ContainsFunc(pod.OwnerReferences, func(r metav1.OwnerReference) bool {
		return r.Kind == "Job"
	})
}

func writePodLogs(ctx context.Context, dc dynamic.Interface, dir string, pod *corev1.Pod) error {
	podDir := filepath.Join(dir, pod.Namespace, pod.Name)
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		return err
	}

	var entries []any
	all := append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
	for i, ctr := range all {
		path := filepath.Join(podDir, ctr.Name+".log")
		if err := os.WriteFile(path, fakeLog(pod, ctr, i < len(pod.Spec.InitContainers)), 0o644); err != nil {
			return err
		}
		entries = append(entries, map[string]any{"containers": []any{ctr.Name}, "logsFile": path})
	}

	logs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "Logs",
		"metadata": map[string]any{
			"name":      pod.Name,
			"namespace": pod.Namespace,
			// Deleted with its pod by the garbage collector.
			"ownerReferences": []any{map[string]any{
				"apiVersion": "v1", "kind": "Pod", "name": pod.Name, "uid": string(pod.UID),
			}},
		},
		"spec": map[string]any{"logs": entries},
	}}
	_, err := dc.Resource(logsGVR).Namespace(pod.Namespace).Create(ctx, logs, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}

	return nil
}

// fakeLog is what a container "printed": for a clone init container the
// commit it fetched, for a script container each script line as "sh -x"
// would echo it, then LogLinesEnv extra lines and the exit status.
func fakeLog(pod *corev1.Pod, ctr corev1.Container, init bool) []byte {
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}

	var lines []string
	if init {
		lines = append(lines, fmt.Sprintf("kwok: %s of pod %s", ctr.Name, pod.Name))
		if url := env["YACI_CLONE_URL"]; url != "" {
			lines = append(lines, "fetching "+env["YACI_SHA"]+" from "+url)
		}
		return criLines("stdout", lines...)
	}

	cmd := append(slices.Clone(ctr.Command), ctr.Args...)
	if len(cmd) > 0 {
		for _, l := range strings.Split(strings.TrimSpace(cmd[len(cmd)-1]), "\n") {
			lines = append(lines, "+ "+l)
		}
	}
	n, _ := strconv.Atoi(env[LogLinesEnv])
	for i := range min(n, maxLogLines) {
		lines = append(lines, fmt.Sprintf("line %d of %d", i+1, n))
	}
	out := criLines("stdout", lines...)
	if ctr.Image == FailImage {
		return append(out, criLines("stderr", "kwok: exit status 1")...)
	}

	return append(out, criLines("stdout", "kwok: exit status 0")...)
}

// criLines formats lines the way container runtimes store logs, which is
// the format kwok (like the kubelet) reads back.
func criLines(stream string, lines ...string) []byte {
	var b bytes.Buffer
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s F %s\n", ts, stream, l)
	}

	return b.Bytes()
}
