package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// yaciProc is one yaci process started by a test, with its output.
type yaciProc struct {
	cmd    *exec.Cmd
	base   string
	logs   *syncBuffer
	exited chan error
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildYaci builds the yaci binary once per test binary.
func buildYaci(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "yaci-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "yaci")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build yaci: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}

	return builtBin
}

// startYaci runs "yaci serve" with args on a free port and waits until it
// is ready.
func startYaci(t *testing.T, args []string, env ...string) *yaciProc {
	t.Helper()
	listen := freeAddr(t)
	cmd := exec.Command(buildYaci(t), append([]string{"serve", "--listen", listen}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &yaciProc{cmd: cmd, base: "http://" + listen, logs: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("yaci log (%s):\n%s", listen, p.logs.String())
		}
	})
	waitHTTP(t, p.base+"/readyz", p.exited)

	return p
}

func pushBody(head string) []byte {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "after": head, "before": strings.Repeat("0", 39) + "1",
		"repository": map[string]any{
			"name": "app", "full_name": "octo/app", "owner": map[string]string{"login": "octo"},
			"clone_url": "https://github.com/octo/app.git",
		},
		"head_commit": map[string]string{"message": "test"},
	})
	return body
}

func (p *yaciProc) deliver(t *testing.T, secret, delivery string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.base+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
}

func (p *yaciProc) leads() bool {
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	return strings.Contains(string(body), "\nyaci_leader 1\n")
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeBinary runs the yaci binary as a user would, against the real
// control plane and a fake GitHub: a signed push becomes a Job and a
// pending status, and SIGTERM stops it cleanly. No secret reaches its log.
func TestServeBinary(t *testing.T) {
	cfg, ns := testenv.Namespace(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	dir := t.TempDir()

	const token, secret = "ghp_e2e_token_value", "e2e-webhook-secret"
	gh := githubtest.NewServer(t)
	gh.SetToken(token)
	head := strings.Repeat("ab", 20)
	gh.SetFile("octo", "app", head, ".yaci.yml", []byte("jobs:\n  - name: test\n    image: golang:1.26\n    run: go test ./...\n"))
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "secret"), secret+"\n")

	p := startYaci(t, []string{
		"--github-api-url", gh.URL,
		"--github-token-file", filepath.Join(dir, "token"),
		"--kubeconfig", testenv.Kubeconfig(t, cfg, ns),
		"--public-url", "https://ci.example.com",
		"--log-level", "debug",
		"--data-dir", filepath.Join(dir, "data"),
	},
		// The secret comes from the environment twin, as a chart would set it.
		"YACI_WEBHOOK_SECRET_FILE="+filepath.Join(dir, "secret"))

	p.deliver(t, secret, "e2e-delivery-1", pushBody(head))
	waitUntil(t, "a pending status", time.Minute, func() bool {
		return gh.StatusCount("octo", "app", head, "yaci/push/test", "pending") == 1
	})
	jobs, err := kube.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{LabelSelector: launch.Selector})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("jobs: %v, %d found, want 1", err, len(jobs.Items))
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("yaci exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("yaci did not stop within 40s of SIGTERM")
	}

	out := p.logs.String()
	for _, s := range []string{token, secret} {
		if strings.Contains(out, s) {
			t.Errorf("yaci's log contains a secret (%q)", s[:6])
		}
	}
	for _, want := range []string{`"msg":"serving"`, "e2e-delivery-1", `"msg":"stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("yaci's log lacks %s", want)
		}
	}
	// The GitHub client knows nothing of deliveries, yet its lines for
	// this one name it.
	requests := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"msg":"github request"`) && strings.Contains(line, "get-content") {
			requests++
			if !strings.Contains(line, `"delivery":"e2e-delivery-1"`) {
				t.Errorf("github request line lacks the delivery: %s", line)
			}
		}
	}
	if requests == 0 {
		t.Error("no github request line was logged at debug level")
	}
}

// TestLeaderProcessKilled runs two yaci processes with leader election,
// kills the leader with SIGKILL while its runs go on, and checks that the
// other process takes over within the lease and every run's final status
// arrives exactly once.
func TestLeaderProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two yaci processes and waits out a 15 s lease")
	}
	cfg, ns := testenv.Namespace(t)
	dir := t.TempDir()
	const token, secret = "ghp_ha_token", "ha-webhook-secret"
	gh := githubtest.NewServer(t)
	gh.SetToken(token)
	head := strings.Repeat("cd", 20)
	gh.SetFile("octo", "app", head, ".yaci.yml", []byte(
		"jobs:\n  - name: one\n    image: golang:1.26\n    run: echo one\n    env: {KWOK_RUN_FOR: 20s}\n"+
			"  - name: two\n    image: golang:1.26\n    run: echo two\n    env: {KWOK_RUN_FOR: 20s}\n"))
	writeFile(t, filepath.Join(dir, "token"), token)
	writeFile(t, filepath.Join(dir, "secret"), secret)
	args := func(name string) []string {
		return []string{
			"--github-api-url", gh.URL, "--github-token-file", filepath.Join(dir, "token"),
			"--webhook-secret-file", filepath.Join(dir, "secret"),
			"--kubeconfig", testenv.Kubeconfig(t, cfg, ns), "--data-dir", filepath.Join(dir, name),
			"--leader-elect",
		}
	}

	a := startYaci(t, args("a"))
	waitUntil(t, "the first process to lead", 30*time.Second, a.leads)
	b := startYaci(t, args("b"))
	b.deliver(t, secret, "ha-1", pushBody(head))
	waitUntil(t, "two pending statuses", time.Minute, func() bool {
		return len(gh.Statuses("octo", "app", head)) == 2
	})

	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second process to lead", 40*time.Second, b.leads)
	t.Logf("the second process leads %s after the leader was killed", time.Since(killed).Round(100*time.Millisecond))

	for _, ctx := range []string{"yaci/push/one", "yaci/push/two"} {
		waitUntil(t, ctx+" to succeed", 2*time.Minute, func() bool {
			return gh.StatusCount("octo", "app", head, ctx, "success") >= 1
		})
	}
	time.Sleep(time.Second)
	for _, ctx := range []string{"yaci/push/one", "yaci/push/two"} {
		if n := gh.StatusCount("octo", "app", head, ctx, "success"); n != 1 {
			t.Errorf("%s: %d success statuses, want exactly 1", ctx, n)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func waitHTTP(t *testing.T, url string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("yaci exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within a minute", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
