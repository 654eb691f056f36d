package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Environment variables through which "yaci-cluster exec" hands its
// control plane to every test binary of one "go test ./..." run, so the
// run starts one control plane instead of one per package.
const (
	EnvKubeconfig = "YACI_TESTENV_KUBECONFIG"
	EnvLogDir     = "YACI_TESTENV_LOG_DIR"
	// EnvRequired makes integration tests fail instead of skipping under
	// -short: CI sets it so that no integration test is silently skipped.
	EnvRequired = "YACI_TESTENV_REQUIRED"
)

// shared is the control plane of this test binary; mu guards all of it.
var shared struct {
	mu      sync.Mutex
	tried   bool
	cfg     *rest.Config
	logDir  string
	err     error
	cluster *Cluster // set when this binary started the control plane
	inMain  bool
}

// Main runs a package's tests and afterwards stops the control plane the
// package started, if it started one. Integration test packages call it
// from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	if shared.cluster != nil {
		shared.cluster.Stop()
		fmt.Fprintf(os.Stderr, "testenv: stopped; component logs in %s\n", shared.cluster.LogDir)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Config returns admin access to the control plane of this test run,
// starting one on first use when "yaci-cluster exec" did not. Under -short
// it skips the test, unless EnvRequired is set.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	if testing.Short() && os.Getenv(EnvRequired) == "" {
		t.Skip("integration test: needs the local control plane; run without -short")
	}

	shared.mu.Lock()
	if !shared.tried {
		shared.tried = true
		shared.cfg, shared.logDir, shared.err = connect()
	}
	cfg, logDir, err := shared.cfg, shared.logDir, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane component logs: %s", logDir)
		}
	})

	return rest.CopyConfig(cfg)
}

// Namespace returns admin access and a new namespace for one test,
// deleted when the test ends.
func Namespace(t testing.TB) (*rest.Config, string) {
	t.Helper()
	cfg := Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	ns, err := createNamespace(ctx, cfg, strings.Trim(prefix, "-")+"-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})

	return cfg, ns
}

func connect() (*rest.Config, string, error) {
	if kc := os.Getenv(EnvKubeconfig); kc != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kc)
		if err != nil {
			return nil, "", fmt.Errorf("load %s=%s: %w", EnvKubeconfig, kc, err)
		}
		cfg.QPS, cfg.Burst = 200, 400
		return cfg, os.Getenv(EnvLogDir), nil
	}
	if !shared.inMain {
		return nil, "", errors.New("this package starts its own control plane, " +
			"so its TestMain must call testenv.Main to stop it")
	}

	// Building the binaries can take many minutes on a cold machine; it
	// has no deadline of its own, the test binary's -timeout bounds it.
	ctx := context.Background()
	bin, err := EnsureBinaries(ctx, os.Stderr)
	if err != nil {
		return nil, "", err
	}
	c, err := Start(ctx, Options{BinDir: bin, Progress: os.Stderr})
	if err != nil {
		return nil, "", err
	}
	shared.cluster = c

	return c.Config, c.LogDir, nil
}

// Kubeconfig writes a kubeconfig file for cfg whose current context uses
// namespace, for tests that run yaci as a separate process.
func Kubeconfig(t testing.TB, cfg *rest.Config, namespace string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testenv"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthority:     cfg.CAFile,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["testenv"] = &clientcmdapi.Context{
		Cluster: "testenv", AuthInfo: "admin", Namespace: namespace,
	}
	kc.CurrentContext = "testenv"

	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}

	return path
}
