package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestServeBinary runs the yaci binary as a user would, against the real
// control plane and a fake GitHub: a signed push becomes a Job and a
// pending status, and SIGTERM stops it cleanly. No secret reaches its log.
func TestServeBinary(t *testing.T) {
	cfg, ns := testenv.Namespace(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	dir := t.TempDir()

	bin := filepath.Join(dir, "yaci")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build yaci: %v\n%s", err, out)
	}

	const token, secret = "ghp_e2e_token_value", "e2e-webhook-secret"
	gh := githubtest.NewServer(t)
	gh.SetToken(token)
	head := strings.Repeat("ab", 20)
	gh.SetFile("octo", "app", head, ".yaci.yml", []byte("jobs:\n  - name: test\n    image: golang:1.26\n    run: go test ./...\n"))
	writeFile(t, filepath.Join(dir, "token"), token+"\n")
	writeFile(t, filepath.Join(dir, "secret"), secret+"\n")
	listen := freeAddr(t)

	cmd := exec.Command(bin, "serve",
		"--listen", listen,
		"--github-api-url", gh.URL,
		"--github-token-file", filepath.Join(dir, "token"),
		"--kubeconfig", testenv.Kubeconfig(t, cfg, ns),
		"--public-url", "https://ci.example.com",
		"--log-level", "debug",
		"--data-dir", filepath.Join(dir, "data"),
	)
	// The secret comes from the environment twin, as a chart would set it.
	cmd.Env = append(os.Environ(), "YACI_WEBHOOK_SECRET_FILE="+filepath.Join(dir, "secret"))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("yaci log:\n%s", logs.String())
		}
	})

	base := "http://" + listen
	waitHTTP(t, base+"/readyz", exited)

	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "after": head, "before": strings.Repeat("0", 39) + "1",
		"repository": map[string]any{
			"name": "app", "full_name": "octo/app", "owner": map[string]string{"login": "octo"},
			"clone_url": "https://github.com/octo/app.git",
		},
		"head_commit": map[string]string{"message": "test"},
	})
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "e2e-delivery-1")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}

	deadline := time.Now().Add(time.Minute)
	for gh.StatusCount("octo", "app", head, "yaci/push/test", "pending") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no pending status within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	jobs, err := kube.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{LabelSelector: launch.Selector})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("jobs: %v, %d found, want 1", err, len(jobs.Items))
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("yaci exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("yaci did not stop within 40s of SIGTERM")
	}

	out := logs.String()
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
