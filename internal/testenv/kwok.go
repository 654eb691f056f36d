package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// FailImage is the image that makes a pod fail: kwok ends pods whose main
// container uses it with exit code 1, and all others with exit code 0. A
// repository config chooses the outcome of its job with it.
const FailImage = "kwok.local/fail:1"

// PullErrorImage is an image kwok pretends cannot be pulled: the pod stays
// Pending with its container waiting in ImagePullBackOff.
const PullErrorImage = "kwok.local/pull-error:1"

// RunForEnv is an environment variable a job can set to a Go duration
// ("30s") to keep its pod Running that long before it ends.
const RunForEnv = "KWOK_RUN_FOR"

// NodeLabel marks the kwok nodes; every node carries "type: kwok".
const NodeLabel = "type"

// kwokStages are the stage files of kwok's own module that the harness
// uses as they are: nodes become Ready and keep their lease, and deleted
// pods go away.
var kwokStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-delete.yaml",
}

// logsAnnotation gates kwok's pod-ready stage: the pod log writer sets it
// once the pod's log is registered, so no pod can finish, and have its log
// read, before kwok knows where that log is.
const logsAnnotation = "testenv.yaci.dev/logs"

func (c *Cluster) startKwok(ctx context.Context, o Options, p *pki, ps portSet) error {
	src, err := moduleDir(ctx, c.Dir, "sigs.k8s.io/kwok@"+KwokVersion)
	if err != nil {
		return fmt.Errorf("kwok: read its stage files: %w", err)
	}
	cfg, err := c.kwokConfig(src)
	if err != nil {
		return fmt.Errorf("kwok: %w", err)
	}
	cfgPath := filepath.Join(c.Dir, "kwok.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	crd := filepath.Join(src, "kustomize/crd/bases/kwok.x-k8s.io_logs.yaml")
	if err := c.installCRD(ctx, crd); err != nil {
		return fmt.Errorf("kwok: %w", err)
	}

	proc, err := c.start("kwok",
		"--kubeconfig="+c.Kubeconfig, "--config="+cfgPath,
		// Logs objects are read from the apiserver, so the harness can give
		// each pod its own log file (see podLogWriter).
		"--enable-crds=Logs",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40", "--cidr=10.244.0.0/16",
		"--node-ip=127.0.0.1", "--node-port="+strconv.Itoa(ps.kwok),
		"--server-address=127.0.0.1:"+strconv.Itoa(ps.kwok),
		"--tls-cert-file="+p.ServingCert, "--tls-private-key-file="+p.ServeKey,
	)
	if err != nil {
		return err
	}

	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := c.startPodLogWriter(cs); err != nil {
		return fmt.Errorf("kwok: start pod log writer: %w", err)
	}
	for i := range o.Nodes {
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return err
		}
	}

	return proc.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		return nodesReady(ctx, cs, o.Nodes)
	})
}

// kwokConfig assembles kwok's configuration: its own stages, plus a
// complete stage split in two so that the image decides success or
// failure, plus a default log for pods the log writer has not seen.
func (c *Cluster) kwokConfig(src string) ([]byte, error) {
	var out bytes.Buffer
	for _, f := range kwokStages {
		data, err := os.ReadFile(filepath.Join(src, "kustomize/stage", f))
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(data)
	}

	ready, err := os.ReadFile(filepath.Join(src, "kustomize/stage/pod/fast/pod-ready.yaml"))
	if err != nil {
		return nil, err
	}
	complete, err := os.ReadFile(filepath.Join(src, "kustomize/stage/pod/fast/pod-complete.yaml"))
	if err != nil {
		return nil, err
	}
	const images = ".spec.containers.[].image"
	// A pod runs for the duration its RunForEnv variable names, if any.
	runFor := `.spec.containers.[].env.[]? | select(.name == "` + RunForEnv + `") | .value`
	edits := []struct {
		base []byte
		edit stageEdit
	}{
		{ready, stageEdit{name: "pod-ready", exprs: []map[string]any{
			selectorExpr(`.metadata.annotations["`+logsAnnotation+`"]`, "In", "written"),
			selectorExpr(images, "NotIn", PullErrorImage),
		}}},
		{complete, stageEdit{name: "pod-complete", delayFrom: runFor, exprs: []map[string]any{
			selectorExpr(images, "NotIn", FailImage),
		}}},
		{complete, stageEdit{name: "pod-fail", delayFrom: runFor, exprs: []map[string]any{
			selectorExpr(images, "In", FailImage),
		}, replace: strings.NewReplacer(
			"exitCode: 0", "exitCode: 1",
			"reason: Completed", "reason: Error",
			"phase: Succeeded", "phase: Failed",
		)}},
	}
	for _, e := range edits {
		stage, err := amendStage(e.base, e.edit)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(stage)
	}
	out.WriteString(pullErrorStage)

	defaultLog := filepath.Join(c.Dir, "kwok-logs", "default.log")
	if err := os.MkdirAll(filepath.Dir(defaultLog), 0o755); err != nil {
		return nil, err
	}
	fallback := criLines("stdout", "kwok: no log was written for this pod")
	if err := os.WriteFile(defaultLog, fallback, 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(&out, `---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: default
spec:
  selector: {}
  logs:
  - logsFile: %s
`, defaultLog)

	return out.Bytes(), nil
}

func selectorExpr(key, op, value string) map[string]any {
	return map[string]any{"key": key, "operator": op, "values": []any{value}}
}

// stageEdit says how to derive a stage from one of kwok's own.
type stageEdit struct {
	name string
	// exprs narrow the stage's selector.
	exprs []map[string]any
	// replace, when not nil, rewrites the status template, to describe
	// another outcome than the original stage does.
	replace *strings.Replacer
	// delayFrom, when set, is a jq expression on the pod whose value (a
	// Go duration) delays the stage.
	delayFrom string
}

func amendStage(stageYAML []byte, e stageEdit) ([]byte, error) {
	var stage map[string]any
	if err := yaml.Unmarshal(stageYAML, &stage); err != nil {
		return nil, fmt.Errorf("parse stage for %s: %w", e.name, err)
	}
	meta, _ := stage["metadata"].(map[string]any)
	spec, _ := stage["spec"].(map[string]any)
	sel, _ := spec["selector"].(map[string]any)
	exprs, _ := sel["matchExpressions"].([]any)
	next, _ := spec["next"].(map[string]any)
	tmpl, _ := next["statusTemplate"].(string)
	if meta == nil || sel == nil || next == nil || tmpl == "" {
		return nil, fmt.Errorf("stage for %s: kwok %s stage has an unexpected shape", e.name, KwokVersion)
	}

	meta["name"] = e.name
	for _, x := range e.exprs {
		exprs = append(exprs, x)
	}
	sel["matchExpressions"] = exprs
	if e.replace != nil {
		next["statusTemplate"] = e.replace.Replace(tmpl)
	}
	if e.delayFrom != "" {
		spec["delay"] = map[string]any{
			"durationMilliseconds": 0,
			"durationFrom":         map[string]any{"jq": map[string]any{"expression": e.delayFrom}},
		}
	}

	return yaml.Marshal(stage)
}

// pullErrorStage leaves pods whose image is PullErrorImage Pending with
// their main container waiting in ImagePullBackOff, as a kubelet does for
// an image that does not exist. The clone init container has finished.
var pullErrorStage = `---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-pull-error
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.metadata.annotations["` + logsAnnotation + `"]'
      operator: 'In'
      values: ['written']
    - key: '.spec.containers.[].image'
      operator: 'In'
      values: ['` + PullErrorImage + `']
    - key: '.status.containerStatuses.[].state.waiting.reason'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: ContainersNotReady
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        state:
          waiting:
            reason: ImagePullBackOff
            message: {{ printf "Back-off pulling image %q" .image | Quote }}
      {{ end }}
      phase: Pending
`

func (c *Cluster) installCRD(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{
		Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions",
	}
	_, err = dc.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create CRD %s: %w", obj.GetName(), err)
	}

	return nil
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name,
		Annotations: map[string]string{
			"node.alpha.kubernetes.io/ttl": "0",
			"kwok.x-k8s.io/node":           "fake",
		},
		Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
			"kubernetes.io/arch": "amd64", NodeLabel: "kwok",
		},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}

	return nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodeLabel + "=kwok"})
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready < want {
		return fmt.Errorf("%d of %d kwok nodes Ready", ready, want)
	}

	return nil
}
