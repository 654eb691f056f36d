package deploy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/yaci-ci/yaci/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { testenv.Main(m) }

// Paths of what the tests check, relative to this package, which is where
// "go test" runs them.
const (
	moduleRoot = "../.."
	chartDir   = moduleRoot + "/charts/yaci"
)

// releaseName is the release every render installs.
const releaseName = "yaci"

// rendered is a release as "helm template" would print it.
type rendered struct {
	manifest string
	notes    string
	objects  []*unstructured.Unstructured
}

// renderChart renders the chart as "helm install --dry-run=client" would,
// values validated against the chart's schema, into namespace.
func renderChart(namespace string, values map[string]any) (rendered, error) {
	// Loaded for each render: an install may change the chart it is given.
	ch, err := loader.Load(chartDir)
	if err != nil {
		return rendered{}, fmt.Errorf("load chart %s: %w", chartDir, err)
	}

	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.Replace = true // "helm template" does the same: no name check
	out, err := install.Run(ch, values)
	if err != nil {
		return rendered{}, err
	}
	rel, ok := out.(*release.Release)
	if !ok {
		return rendered{}, fmt.Errorf("install returned a %T, not a v1 release", out)
	}
	if len(rel.Hooks) > 0 {
		return rendered{}, errors.New("the chart has hooks; the tests would not apply them")
	}

	objs, err := decodeObjects(rel.Manifest)
	if err != nil {
		return rendered{}, err
	}

	return rendered{manifest: rel.Manifest, notes: rel.Info.Notes, objects: objs}, nil
}

// render renders the chart or fails the test.
func render(t *testing.T, namespace string, values map[string]any) rendered {
	t.Helper()
	r, err := renderChart(namespace, values)
	if err != nil {
		t.Fatalf("render chart: %v", err)
	}

	return r
}

// decodeObjects splits a multi-document manifest into objects.
func decodeObjects(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode rendered manifest: %w", err)
		}
		if len(doc) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: doc})
	}
}

// kinds lists the rendered objects as "Kind/name" in manifest order.
func (r rendered) kinds() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}

	return out
}

// object returns the only rendered object of kind, converted to out (a
// pointer to the typed object), failing the test unless there is exactly
// one.
func (r rendered) object(t *testing.T, kind string, out any) {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range r.objects {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("rendered %d objects of kind %s, want 1; objects: %v", len(found), kind, r.kinds())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(
		found[0].Object, out, true); err != nil {
		t.Fatalf("%s %s does not convert to %T: %v", kind, found[0].GetName(), out, err)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the render; if the change is meant, run go test -update and review the diff.\n%s",
			path, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first line where want and got differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  golden: %q\n  render: %q", i+1, wl, gl)
		}
	}

	return "(no line differs)"
}
