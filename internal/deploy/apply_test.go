package deploy

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/yaci-ci/yaci/internal/testenv"
)

// warnings collects the warnings the API server sends back, such as
// PodSecurity's for a pod template that breaks a namespace's policy.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := w.msgs
	w.msgs = nil

	return msgs
}

// applier server-side applies objects with dryRun All: the API server
// defaults, validates and admits them as it would for "helm install",
// and stores nothing.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	warn   *warnings
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))

	return &applier{dyn: dyn, mapper: mapper, warn: w}
}

// apply dry-runs obj. known is false when the API server has no such kind.
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured) (known bool, err error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return true, err
	}

	var res dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		res = a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	_, err = res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{
		FieldManager: "yaci-chart-test", DryRun: []string{metav1.DryRunAll}, Force: true,
	})

	return true, err
}

// TestDryRunApply sends every rendered object to the real API server with
// server-side apply and dryRun All, in namespaces that enforce the
// restricted Pod Security Standard. The ServiceMonitor is the one object
// the test control plane cannot take, as it has no Prometheus Operator
// CRDs; only that kind may be skipped.
func TestDryRunApply(t *testing.T) {
	t.Parallel()
	cfg, releaseNS := testenv.Namespace(t)
	_, jobNS := testenv.Namespace(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	for _, ns := range []string{releaseNS, jobNS} {
		restrict(t, cs, ns)
	}
	a := newApplier(t, cfg)

	tests := []struct {
		name   string
		values map[string]any
		skip   []string
	}{
		{"default", nil, nil},
		{"full", fullValues(jobNS), []string{"ServiceMonitor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, releaseNS, tt.values)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			var skipped []string
			for _, obj := range r.objects {
				known, err := a.apply(ctx, obj)
				if err != nil {
					t.Errorf("dry-run apply %s/%s: %v", obj.GetKind(), obj.GetName(), err)
				}
				if !known {
					skipped = append(skipped, obj.GetKind())
				}
			}
			if !slices.Equal(skipped, tt.skip) {
				t.Errorf("skipped kinds %v the API server does not know, want only %v", skipped, tt.skip)
			}
			if w := a.warn.take(); len(w) > 0 {
				t.Errorf("API server warnings:\n%s", strings.Join(w, "\n"))
			}
		})
	}

	// The check above means something only if a pod template that breaks
	// the policy does draw a warning.
	t.Run("unrestricted pod draws a warning", func(t *testing.T) {
		var dep appsv1.Deployment
		render(t, releaseNS, nil).object(t, "Deployment", &dep)
		dep.Name = "yaci-unrestricted"
		dep.Spec.Template.Spec.SecurityContext = nil
		dep.Spec.Template.Spec.Containers[0].SecurityContext = nil
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&dep)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{Object: u}
		obj.SetAPIVersion("apps/v1")
		obj.SetKind("Deployment")

		if _, err := a.apply(t.Context(), obj); err != nil {
			t.Fatalf("dry-run apply: %v", err)
		}
		if w := a.warn.take(); !slices.ContainsFunc(w, func(s string) bool {
			return strings.Contains(s, "restricted")
		}) {
			t.Errorf("warnings %q, want PodSecurity's about the restricted policy", w)
		}
	})
}

// restrict makes namespace ns enforce and warn about the restricted Pod
// Security Standard.
func restrict(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	patch := []byte(`{"metadata":{"labels":{` +
		`"pod-security.kubernetes.io/enforce":"restricted",` +
		`"pod-security.kubernetes.io/warn":"restricted"}}}`)
	_, err := cs.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, patch,
		metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("label namespace %s restricted: %v", ns, err)
	}
}
