// Package testenv runs a real Kubernetes control plane on loopback for
// yaci's integration tests and for people trying yaci locally: etcd,
// kube-apiserver, kube-controller-manager (the Job controller),
// kube-scheduler and kwok, a fake kubelet that carries pods through their
// phases and serves their logs. Everything is built from Go modules; see
// EnsureBinaries.
package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Start.
type Options struct {
	// BinDir holds the binaries; see EnsureBinaries.
	BinDir string
	// Dir receives certificates, etcd's data, kwok's files and the
	// component logs (under Dir/logs). A new temporary folder when empty.
	Dir string
	// APIPort is kube-apiserver's port on 127.0.0.1; a free one when 0.
	APIPort int
	// Nodes is the number of kwok nodes; 1 when 0.
	Nodes int
	// Progress receives one line per started component; may be nil.
	Progress io.Writer
}

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds everything of this cluster; LogDir its component logs.
	Dir, LogDir string
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig string
	// Config is the same admin access for client-go.
	Config *rest.Config

	binDir     string
	procs      []*process
	stopWriter context.CancelFunc
	writerDone chan struct{}
}

const startTimeout = 90 * time.Second

// Start starts a control plane and returns once a kwok node is Ready, so
// that pods can be scheduled and run. On error nothing is left running.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "yaci-testenv-"); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Dir: o.Dir, LogDir: filepath.Join(o.Dir, "logs"), binDir: o.BinDir}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return nil, err
	}
	for _, b := range Components {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%s: binary missing in %s (run EnsureBinaries first): %w",
				b, o.BinDir, err)
		}
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	ports, err := c.pickPorts(o.APIPort)
	if err != nil {
		return nil, err
	}
	p, err := makePKI(filepath.Join(o.Dir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("make certificates: %w", err)
	}
	if err := c.writeKubeconfig(p, ports.api); err != nil {
		return nil, err
	}

	steps := []struct {
		name string
		fn   func(context.Context, Options, *pki, portSet) error
	}{
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"kube-controller-manager", c.startControllerManager},
		{"kube-scheduler", c.startScheduler},
		{"kwok", c.startKwok},
	}
	begin := time.Now()
	for _, s := range steps {
		if err := s.fn(ctx, o, p, ports); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Progress, "testenv: %s ready after %.1fs\n", s.name, time.Since(begin).Seconds())
	}

	return c, nil
}

// Stop stops every component, newest first, and removes etcd's data. The
// logs stay in LogDir for whoever needs to read why something failed.
func (c *Cluster) Stop() {
	if c.stopWriter != nil {
		c.stopWriter()
		<-c.writerDone
		c.stopWriter = nil
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
	c.procs = nil
	_ = os.RemoveAll(filepath.Join(c.Dir, "etcd-data"))
}

// PIDs returns the process ids of the components, for checks that none
// outlives Stop.
func (c *Cluster) PIDs() map[string]int {
	pids := map[string]int{}
	for _, p := range c.procs {
		pids[p.name] = p.cmd.Process.Pid
	}

	return pids
}

type portSet struct {
	etcd, etcdPeer, api, kcm, scheduler, kwok int
}

func (c *Cluster) pickPorts(api int) (portSet, error) {
	var ps portSet
	if api != 0 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(api))
		if err != nil {
			return ps, fmt.Errorf("kube-apiserver: port %d on 127.0.0.1 is not free: %w", api, err)
		}
		l.Close()
	}

	// Listening on port 0 lets the kernel pick ports no one uses; the
	// short gap until a component binds one is an accepted race.
	free := make([]int, 6)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := range free {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ps, fmt.Errorf("find a free port: %w", err)
		}
		held = append(held, l)
		free[i] = l.Addr().(*net.TCPAddr).Port
	}
	ps = portSet{
		etcd: free[0], etcdPeer: free[1], api: free[2],
		kcm: free[3], scheduler: free[4], kwok: free[5],
	}
	if api != 0 {
		ps.api = api
	}

	return ps, nil
}

func (c *Cluster) writeKubeconfig(p *pki, port int) error {
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testenv"] = &clientcmdapi.Cluster{
		Server:               fmt.Sprintf("https://127.0.0.1:%d", port),
		CertificateAuthority: p.CACert,
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: p.Token}
	cfg.Contexts["testenv"] = &clientcmdapi.Context{
		Cluster: "testenv", AuthInfo: "admin", Namespace: "default",
	}
	cfg.CurrentContext = "testenv"
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	// Tests create objects in bursts; the default 5 QPS would make the
	// client, not the apiserver, the thing measured.
	rc.QPS, rc.Burst = 200, 400
	c.Config = rc

	return nil
}

func (c *Cluster) start(name string, args ...string) (*process, error) {
	p, err := startProcess(name, filepath.Join(c.binDir, name), args, filepath.Join(c.LogDir, name+".log"))
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)

	return p, nil
}

func (c *Cluster) startEtcd(ctx context.Context, _ Options, _ *pki, ps portSet) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", ps.etcd)
	peer := fmt.Sprintf("http://127.0.0.1:%d", ps.etcdPeer)
	p, err := c.start("etcd",
		"--name=testenv", "--data-dir="+filepath.Join(c.Dir, "etcd-data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=testenv="+peer,
		// Tests write little; a smaller backend and no fsync wait keep
		// start-up and Job churn fast on a shared disk.
		"--unsafe-no-fsync", "--quota-backend-bytes=2147483648",
	)
	if err != nil {
		return err
	}

	return p.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, client+"/health", "", `"health":"true"`)
	})
}

func (c *Cluster) startAPIServer(ctx context.Context, _ Options, p *pki, ps portSet) error {
	proc, err := c.start("kube-apiserver",
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", ps.etcd),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ps.api),
		"--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--tls-cert-file="+p.ServingCert, "--tls-private-key-file="+p.ServeKey,
		"--client-ca-file="+p.CACert, "--token-auth-file="+p.TokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.SAPub, "--service-account-signing-key-file="+p.SAKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// kwok's kubelet endpoint serves pod logs on 127.0.0.1; the node
		// reports that address as InternalIP.
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		// Load tests would otherwise be throttled by priority and
		// fairness on a two-core machine, measuring the throttle.
		"--enable-priority-and-fairness=false",
	)
	if err != nil {
		return err
	}

	tlsClient, err := c.tlsClient(p)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", ps.api)

	return proc.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		return httpOK(ctx, tlsClient, url, p.Token, "ok")
	})
}

func (c *Cluster) startControllerManager(ctx context.Context, _ Options, p *pki, ps portSet) error {
	proc, err := c.start("kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ps.kcm),
		"--leader-elect=false", "--use-service-account-credentials=false",
		"--service-account-private-key-file="+p.SAKey, "--root-ca-file="+p.CACert,
		"--cluster-signing-cert-file="+p.CACert, "--cluster-signing-key-file="+p.CAKey,
		"--controllers=*",
		// The default client limits make the Job controller finish about
		// 3 Jobs/s; these let it keep up with load tests (about 40/s).
		"--kube-api-qps=300", "--kube-api-burst=600", "--concurrent-job-syncs=20",
	)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}

	// Pods are refused in a namespace until its default ServiceAccount
	// exists, and the controller-manager creates it: wait for that.
	return proc.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func (c *Cluster) startScheduler(ctx context.Context, _ Options, p *pki, ps portSet) error {
	proc, err := c.start("kube-scheduler",
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ps.scheduler),
		"--leader-elect=false", "--kube-api-qps=300", "--kube-api-burst=600",
	)
	if err != nil {
		return err
	}
	insecure := &http.Client{Transport: &http.Transport{
		// The scheduler serves healthz with a self-signed certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", ps.scheduler)

	return proc.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		return httpOK(ctx, insecure, url, "", "ok")
	})
}

func (c *Cluster) tlsClient(p *pki) (*http.Client, error) {
	rc := &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAFile: p.CACert}}
	tr, err := rest.TransportFor(rc)
	if err != nil {
		return nil, err
	}

	return &http.Client{Transport: tr}, nil
}

func httpOK(ctx context.Context, client *http.Client, url, token, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}

	return nil
}

// CreateNamespace creates a namespace with a generated name and waits for
// its default ServiceAccount, without which pods are refused.
func (c *Cluster) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	return createNamespace(ctx, c.Config, prefix)
}

func createNamespace(ctx context.Context, cfg *rest.Config, prefix string) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace %s*: %w", prefix, err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return ns.Name, nil
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			return "", fmt.Errorf("wait for default service account in %s: %w", ns.Name, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
