package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/webhook"
)

// runChartDeployment runs bin as the chart's Deployment would run the
// image: with the container's arguments and environment, and the Secret's
// entries as files where the pod would mount them. Only what a pod has and
// a test process has not is changed: mount paths become folders of the
// test, the API server is reached through KUBECONFIG (the twin of
// --kubeconfig) instead of the in-cluster config, and yaci listens on a
// free loopback port instead of :8080. Then the probes' paths must answer
// 200, a signed ping must be verified with the mounted webhook secret,
// and SIGTERM must stop yaci cleanly.
func runChartDeployment(t *testing.T, bin string) {
	cfg, ns := testenv.Namespace(t)
	fake := githubtest.NewServer(t)
	r := render(t, ns, map[string]any{
		"github":    map[string]any{"apiURL": fake.URL},
		"publicURL": "https://ci.example.com",
	})
	var dep appsv1.Deployment
	r.object(t, "Deployment", &dep)
	c := yaciContainer(t, &dep)

	// What the user puts in the Secret the default values expect.
	const webhookSecret = "chart-run-webhook-secret"
	secret := &corev1.Secret{Data: map[string][]byte{
		"webhook-secret": []byte(webhookSecret),
		"app-key.pem":    rsaKeyPEM(t),
		"app-id":         []byte("4242"),
	}}
	secret.Name = "yaci-github"

	mounts := mountVolumes(t, dep.Spec.Template.Spec, c, secret)
	port := freePort(t)
	var args []string
	for _, a := range c.Args {
		if a == "--listen=:8080" {
			a = fmt.Sprintf("--listen=127.0.0.1:%d", port)
		}
		args = append(args, remount(a, mounts))
	}
	env := []string{"KUBECONFIG=" + testenv.Kubeconfig(t, cfg, ns)}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+envValue(t, e, secret))
	}

	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once yaci has exited, with waitErr set.
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("yaci %q\nstderr:\n%s", args, stderr.String())
		}
	})

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		waitOK(t, exited, base+probe.HTTPGet.Path)
	}

	body := []byte(`{"zen":"Design for failure.","hook_id":1}`)
	for sig, want := range map[string]int{
		webhook.Sign([]byte(webhookSecret), body):       http.StatusOK,
		webhook.Sign([]byte("some other secret"), body): http.StatusUnauthorized,
	} {
		if got := postPing(t, base+"/webhook", sig, body); got != want {
			t.Errorf("ping signed with a %s secret: status %d, want %d",
				map[bool]string{true: "right", false: "wrong"}[want == http.StatusOK], got, want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("yaci exited with %v after SIGTERM, want 0", waitErr)
		}
	case <-time.After(time.Duration(*dep.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second):
		t.Error("yaci did not stop within the pod's termination grace period")
	}
}

// remount points a "--flag=path" argument whose path is in a mounted
// volume at the test's folder for that volume.
func remount(arg string, mounts map[string]string) string {
	flag, path, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	best := ""
	for mountPath := range mounts {
		if (path == mountPath || strings.HasPrefix(path, mountPath+"/")) && len(mountPath) > len(best) {
			best = mountPath
		}
	}
	if best == "" {
		return arg
	}

	return flag + "=" + mounts[best] + strings.TrimPrefix(path, best)
}

// mountVolumes makes a folder for each of the container's volume mounts,
// filled as the kubelet would fill it from secret, and returns them by
// mount path.
func mountVolumes(t *testing.T, pod corev1.PodSpec, c corev1.Container,
	secret *corev1.Secret) map[string]string {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}

	dirs := map[string]string{}
	for _, m := range c.VolumeMounts {
		dir := t.TempDir()
		dirs[m.MountPath] = dir
		v := volumes[m.Name]
		switch {
		case v.Secret != nil:
			if v.Secret.SecretName != secret.Name {
				t.Fatalf("volume %s mounts Secret %s, want %s", v.Name, v.Secret.SecretName, secret.Name)
			}
			for _, item := range v.Secret.Items {
				data, ok := secret.Data[item.Key]
				if !ok {
					t.Fatalf("volume %s wants entry %s, which the Secret lacks", v.Name, item.Key)
				}
				mode := os.FileMode(*v.Secret.DefaultMode)
				if err := os.WriteFile(filepath.Join(dir, item.Path), data, mode); err != nil {
					t.Fatal(err)
				}
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s is of a kind this test cannot provide", v.Name)
		}
	}

	return dirs
}

// envValue resolves an environment variable of the container, reading
// secretKeyRef from secret.
func envValue(t *testing.T, e corev1.EnvVar, secret *corev1.Secret) string {
	t.Helper()
	switch {
	case e.ValueFrom == nil:
		return e.Value
	case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret.Name:
		v, ok := secret.Data[e.ValueFrom.SecretKeyRef.Key]
		if !ok {
			t.Fatalf("%s wants entry %s, which the Secret lacks", e.Name, e.ValueFrom.SecretKeyRef.Key)
		}
		return string(v)
	default:
		t.Fatalf("environment variable %s comes from a source this test cannot provide", e.Name)
		return ""
	}
}

// waitOK waits up to a minute for url to answer 200, failing early when
// yaci exits.
func waitOK(t *testing.T, exited <-chan struct{}, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("yaci exited before %s answered 200", url)
		case <-ctx.Done():
			t.Fatalf("%s did not answer 200 within a minute (last error %v)", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func postPing(t *testing.T, url, signature string, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "chart-run-ping")
	req.Header.Set("X-Hub-Signature-256", signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	return resp.StatusCode
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port
}

// rsaKeyPEM makes a GitHub App private key in the PKCS #1 PEM form GitHub
// hands out.
func rsaKeyPEM(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
