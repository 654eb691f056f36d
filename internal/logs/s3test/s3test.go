// Package s3test starts a real S3-compatible server for tests: versitygw,
// a gateway that serves a local folder over the S3 protocol. It is built
// from the Go module proxy as a separate binary, so that none of its
// dependencies enter yaci's go.mod, and cached per version under the user
// cache directory like the control plane binaries of internal/testenv.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/yaci-ci/yaci/internal/testenv"
)

// Version is the versitygw release the tests run against.
const Version = "v1.8.0"

// Region is the region the server is started with.
const Region = "us-east-1"

// EnvBinary names a versitygw binary provided by hand; when it is set,
// nothing is built.
const EnvBinary = "YACI_VERSITYGW"

const module = "github.com/versity/versitygw/cmd/versitygw"

// Timeouts for the build and for a server to answer or stop. A cold build
// takes 3.5–4 minutes on two busy cores, whether the module cache or the
// build cache is the cold one; a cached binary is found at once.
const (
	buildTimeout = 15 * time.Minute
	readyTimeout = 30 * time.Second
	stopGrace    = 10 * time.Second
)

// Server is a running versitygw serving a temporary folder. Each server
// has its own generated root credentials.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:<port>.
	Endpoint  string
	AccessKey string
	SecretKey string
	// DataDir is the folder served; each bucket is a folder in it.
	DataDir string

	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// binary is the outcome of finding or building versitygw, once per test
// binary; mu guards it.
var binary struct {
	mu   sync.Mutex
	path string
	err  error
}

// Start starts a server for t and stops it when t ends. It skips t under
// -short, and when the server cannot be built or started, unless
// testenv.EnvRequired is set (as in CI): then it runs under -short too,
// and a server it cannot start fails t, so that no S3 test is skipped
// without anyone seeing.
func Start(t testing.TB) *Server {
	t.Helper()
	required := os.Getenv(testenv.EnvRequired) != ""
	if testing.Short() && !required {
		t.Skip("integration test: needs a versitygw S3 server; run without -short")
	}
	unavailable := func(err error) {
		t.Helper()
		if required {
			t.Fatalf("S3 test server unavailable (%s is set): %v", testenv.EnvRequired, err)
		}
		t.Skipf("S3 test server unavailable: %v", err)
	}

	bin, err := ensureBinaryOnce(t.Context())
	if err != nil {
		unavailable(err)
	}
	s, err := start(t.Context(), bin, t.TempDir())
	if err != nil {
		unavailable(err)
	}
	t.Cleanup(s.Stop)

	return s
}

func ensureBinaryOnce(ctx context.Context) (string, error) {
	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.path == "" && binary.err == nil {
		binary.path, binary.err = EnsureBinary(ctx, os.Stderr)
	}

	return binary.path, binary.err
}

// EnsureBinary returns the path of the versitygw binary: $YACI_VERSITYGW
// when set, else the cached build of Version, which it builds first when
// missing. Parallel test binaries wait on a file lock instead of building
// twice. A line about the build goes to progress; the go command's own
// output is kept for the error.
func EnsureBinary(ctx context.Context, progress io.Writer) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file", EnvBinary, p)
		}
		return p, nil
	}

	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory for versitygw: %w", err)
	}
	dir := filepath.Join(cache, "yaci", "testenv", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	unlock, err := testenv.LockFile(filepath.Join(dir, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have built it while this one waited.
	if isExecutable(bin) {
		return bin, nil
	}

	start := time.Now()
	fmt.Fprintf(progress, "s3test: building versitygw %s into %s (2–5 minutes on two cores)\n",
		Version, dir)
	if err := build(ctx, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "s3test: built versitygw in %s\n", time.Since(start).Round(time.Second))

	return bin, nil
}

// build installs versitygw into a staging folder beside dir's binary and
// renames it into place, so an interrupted build never leaves a
// half-written binary that looks done. "go install pkg@version" runs
// outside any module and changes no go.mod.
func build(ctx context.Context, dir string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("building versitygw needs the go command on PATH: %w", err)
	}
	staging, err := os.MkdirTemp(dir, ".staging-")
	if err != nil {
		return fmt.Errorf("create staging folder: %w", err)
	}
	defer os.RemoveAll(staging)

	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "install", "-trimpath", module+"@"+Version)
	cmd.Dir = staging
	cmd.Env = append(os.Environ(), "GOBIN="+staging, "GOWORK=off", "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build versitygw %s: %w\n%s", Version, err, lastLines(out.Bytes(), 20))
	}

	err = os.Rename(filepath.Join(staging, "versitygw"), filepath.Join(dir, "versitygw"))
	if err != nil {
		return fmt.Errorf("install versitygw: %w", err)
	}

	return nil
}

// start runs bin on a free loopback port over a data folder in tmp, with
// new credentials, and waits until it answers. A port taken between
// choosing and binding it makes the server exit; start then tries again.
func start(ctx context.Context, bin, tmp string) (*Server, error) {
	var err error
	for attempt := range 3 {
		var s *Server
		s, err = startOnce(ctx, bin, filepath.Join(tmp, fmt.Sprintf("s3-%d", attempt)))
		if err == nil {
			return s, nil
		}
	}

	return nil, err
}

func startOnce(ctx context.Context, bin, dir string) (*Server, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + port,
		AccessKey: "yaci" + randomHex(8),
		SecretKey: randomHex(20),
		DataDir:   data,
		logPath:   filepath.Join(dir, "versitygw.log"),
		done:      make(chan struct{}),
	}

	// Credentials go through the environment, not the command line, where
	// any user of the machine could read them.
	s.cmd = exec.Command(bin, "--port", "127.0.0.1:"+port, "--region", Region,
		"--keep-alive", "--quiet", "posix", data)
	s.cmd.Env = append(serverEnv(),
		"ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("create versitygw log: %w", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// If the test binary dies without stopping it, the kernel kills it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logFile.Close()
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}

	return s, nil
}

// serverEnv is this process's environment without versitygw's own
// variables, which a developer's shell might set.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}

	return env
}

// waitReady polls the server until it answers HTTP at all: an anonymous
// request is refused, which proves the S3 handler is serving.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}

	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err

		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited during start: %v\n%s", s.waitErr, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("versitygw not ready after %s: %w\n%s", readyTimeout, last, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server with SIGTERM, or SIGKILL when it has not ended
// within a grace period, and waits for it. It may be called more than
// once.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)

	select {
	case <-s.done:
	case <-time.After(stopGrace):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Exited reports whether the server process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Client returns an S3 client with the server's root credentials, which
// reads no AWS settings of the machine.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket makes an empty bucket called name, through the S3 API:
// versitygw keeps a bucket as a folder, but its owner in extended
// attributes that only the server writes.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	_, err := s.Client().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// AgeUpload makes the unfinished multipart upload id in bucket look as if
// it had begun age ago, which no S3 call can do. versitygw keeps an
// upload as the folder .sgwtmp/multipart/<hash of key>/<id> of the
// bucket's folder, and reports the folder's modification time as the
// time the upload was initiated.
func (s *Server) AgeUpload(t testing.TB, bucket, id string, age time.Duration) {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(s.DataDir, bucket, ".sgwtmp", "multipart", "*", id))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("find the folder of upload %s in %s: %d found, %v", id, bucket, len(dirs), err)
	}
	then := time.Now().Add(-age)
	if err := os.Chtimes(dirs[0], then, then); err != nil {
		t.Fatalf("age upload %s: %v", id, err)
	}
}

func (s *Server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}

	return lastLines(data, 15)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())

	return port, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)

	return hex.EncodeToString(b)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)

	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func lastLines(data []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return "    " + string(bytes.Join(lines, []byte("\n    ")))
}
