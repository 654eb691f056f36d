package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/yaci-ci/yaci/internal/logs/s3test"
)

// testS3Prefix is the key prefix of the stores under test, so that every
// test also checks that nothing is written outside it.
const testS3Prefix = "yaci/logs"

// s3Fixture is one versitygw server shared by the subtests of TestS3Store;
// each subtest has a bucket of its own.
type s3Fixture struct {
	srv *s3test.Server
}

func (f *s3Fixture) options(bucket string) S3Options {
	return S3Options{
		Endpoint:  f.srv.Endpoint,
		Region:    s3test.Region,
		Bucket:    bucket,
		Prefix:    testS3Prefix,
		AccessKey: []byte(f.srv.AccessKey),
		SecretKey: []byte(f.srv.SecretKey),
		PathStyle: true,
		Logger:    slog.New(slog.DiscardHandler),
	}
}

// store makes a bucket called after t and returns a store in it.
func (f *s3Fixture) store(t *testing.T, max int64) *S3Store {
	t.Helper()
	bucket := bucketName(t)
	f.srv.CreateBucket(t, bucket)
	o := f.options(bucket)
	o.MaxLogBytes = max
	s, err := NewS3Store(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}

	return s
}

// bucketName turns a test's name into a bucket name of its own.
func bucketName(t *testing.T) string {
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, name)

	return strings.Trim(name[max(0, len(name)-60):], "-")
}

// keys lists every key in bucket.
func (f *s3Fixture) keys(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := f.srv.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket),
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}

	return keys
}

// uploads counts the unfinished multipart uploads in bucket.
func (f *s3Fixture) uploads(t *testing.T, bucket string) int {
	t.Helper()

	return len(f.uploadKeys(t, bucket))
}

// uploadKeys lists the keys of the unfinished multipart uploads in bucket.
func (f *s3Fixture) uploadKeys(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := f.srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket),
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}

	return keys
}

// startUpload begins a multipart upload of key in bucket, as a replica
// killed after its first part would leave it, aged as if begun age ago.
func (f *s3Fixture) startUpload(t *testing.T, bucket, key string, age time.Duration) {
	t.Helper()
	c := f.srv.Client()
	up, err := c.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPart(t.Context(), &s3.UploadPartInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("part one"),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.AgeUpload(t, bucket, aws.ToString(up.UploadId), age)
}

// TestS3Store runs the behaviour DirStore is tested for against a real
// S3-compatible server, and what is particular to object stores.
func TestS3Store(t *testing.T) {
	// A developer's own AWS settings must not reach the stores.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	f := &s3Fixture{srv: s3test.Start(t)}

	t.Run("round trip", f.testRoundTrip)
	t.Run("multipart", f.testMultipart)
	t.Run("atomic", f.testAtomic)
	t.Run("truncates huge log", f.testTruncatesHugeLog)
	t.Run("truncation bound", f.testTruncationBound)
	t.Run("bad names", f.testBadNames)
	t.Run("refused", f.testRefused)
	t.Run("two replicas", f.testTwoReplicas)
	t.Run("sweeps stale uploads", f.testSweepsUploads)
	t.Run("sweep pages", f.testSweepPages)

	if f.srv.Exited() {
		t.Error("the S3 server exited during the tests")
	}
}

func (f *s3Fixture) testRoundTrip(t *testing.T) {
	s := f.store(t, 0)
	ctx := t.Context()

	info, err := s.PutLog(ctx, testRun, testPod, "run", strings.NewReader("+ make\nok\n"))
	if err != nil {
		t.Fatal(err)
	}
	if info != (LogInfo{Bytes: 10}) {
		t.Errorf("PutLog info = %+v", info)
	}
	if got := readLog(t, s, testRun, testPod, "run"); got != "+ make\nok\n" {
		t.Errorf("log = %q", got)
	}
	if st, err := s.StatLog(ctx, testRun, testPod, "run"); err != nil || st != info {
		t.Errorf("StatLog = %+v, %v; want %+v", st, err, info)
	}
	if _, err := s.GetLog(ctx, testRun, testPod, "clone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetLog of a missing log: err = %v, want ErrNotFound", err)
	}
	if _, err := s.StatLog(ctx, testRun, testPod, "clone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("StatLog of a missing log: err = %v, want ErrNotFound", err)
	}

	// The object is the same gzip stream DirStore writes to a file.
	key := testS3Prefix + "/runs/" + testRun + "/logs/" + testPod + "/run.log.gz"
	obj, err := f.srv.Client().GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key),
	})
	if err != nil {
		t.Fatalf("the log is not at %s: %v", key, err)
	}
	zr, err := gzip.NewReader(obj.Body)
	if err != nil {
		t.Fatalf("the stored log is not gzip: %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || string(raw) != "+ make\nok\n" {
		t.Errorf("stored object holds %q, %v", raw, err)
	}
	obj.Body.Close()

	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	runs := []*Run{
		{Name: testRun, Repo: "yaci-ci/Example", SHA: testSHA, State: StateSuccess, Started: &started},
		{Name: "yaci-lint-1111111111111111", Repo: "yaci-ci/example", SHA: testSHA, State: StateFailure},
		{Name: "yaci-unit-2222222222222222", Repo: "yaci-ci/example", SHA: strings.Repeat("a", 40)},
		{Name: "yaci-unit-3333333333333333", Repo: "other/example", SHA: testSHA},
	}
	for _, r := range runs {
		if err := s.PutRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Storing again must not list a run twice.
	if err := s.PutRun(ctx, runs[0]); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, testRun)
	if err != nil || got.State != StateSuccess || !got.Started.Equal(started) {
		t.Errorf("GetRun = %+v, %v", got, err)
	}
	if _, err := s.GetRun(ctx, "yaci-none-0000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun of a missing run: err = %v, want ErrNotFound", err)
	}

	tests := []struct {
		name, repo, sha string
		want            []string
	}{
		{"by commit", "yaci-ci/example", testSHA, []string{testRun, "yaci-lint-1111111111111111"}},
		{"any case", "YACI-CI/EXAMPLE", testSHA, []string{testRun, "yaci-lint-1111111111111111"}},
		{"whole repo", "yaci-ci/example", "", []string{testRun, "yaci-lint-1111111111111111",
			"yaci-unit-2222222222222222"}},
		{"unknown repo", "nobody/nothing", "", nil},
		{"unknown commit", "yaci-ci/example", strings.Repeat("b", 40), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.ListRuns(ctx, tt.repo, tt.sha)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range list {
				names = append(names, r.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ListRuns = %v, want %v", names, tt.want)
			}
		})
	}

	// An index entry whose run is gone is not listed, as in DirStore.
	_, err = f.srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(testS3Prefix + "/runs/yaci-lint-1111111111111111/run.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListRuns(ctx, "yaci-ci/example", testSHA); err != nil || len(list) != 1 {
		t.Errorf("after removing a run, ListRuns = %d runs, %v; want 1", len(list), err)
	}

	for _, k := range f.keys(t, s.bucket) {
		if !strings.HasPrefix(k, testS3Prefix+"/") {
			t.Errorf("key %q is outside the prefix %q", k, testS3Prefix)
		}
	}
}

// randomLog yields size bytes that gzip cannot shrink, the same for the
// same seed, so that a log spans several upload parts.
func randomLog(seed uint64, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size)
}

func (f *s3Fixture) testMultipart(t *testing.T) {
	s := f.store(t, 0)
	const size = 3*s3PartSize + 12345

	want := sha256.New()
	info, err := s.PutLog(t.Context(), testRun, testPod, "run",
		io.TeeReader(randomLog(1, size), want))
	if err != nil {
		t.Fatal(err)
	}
	if info != (LogInfo{Bytes: size}) {
		t.Errorf("info = %+v, want %d bytes", info, size)
	}

	rc, err := s.GetLog(t.Context(), testRun, testPod, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	if n, err := io.Copy(got, rc); err != nil || n != size {
		t.Fatalf("read back %d bytes, %v; want %d", n, err, size)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("the log read back differs from the one stored")
	}
	if n := f.uploads(t, s.bucket); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

func (f *s3Fixture) testAtomic(t *testing.T) {
	s := f.store(t, 0)
	ctx := t.Context()

	tests := []struct {
		name string
		src  io.Reader
	}{
		{"fails in the first part", &failingReader{n: 200 << 10}},
		// Random bytes stay as large compressed: two parts are sent
		// before the reader breaks.
		{"fails after parts were sent", io.MultiReader(randomLog(2, 2*s3PartSize+4096),
			&failingReader{n: 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PutLog(ctx, testRun, testPod, "clone", tt.src)
			if !errors.Is(err, errBroken) {
				t.Fatalf("err = %v, want the reader's error", err)
			}
			if _, err := s.GetLog(ctx, testRun, testPod, "clone"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed write left a log: err = %v", err)
			}
			if _, err := s.StatLog(ctx, testRun, testPod, "clone"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed write left log info: err = %v", err)
			}
			if keys := f.keys(t, s.bucket); len(keys) != 0 {
				t.Errorf("a failed write left objects: %v", keys)
			}
			if n := f.uploads(t, s.bucket); n != 0 {
				t.Errorf("a failed write left %d multipart uploads open", n)
			}
		})
	}

	t.Run("rewrite fails", func(t *testing.T) {
		if _, err := s.PutLog(ctx, testRun, testPod, "run", strings.NewReader("complete\n")); err != nil {
			t.Fatal(err)
		}
		src := io.MultiReader(randomLog(3, s3PartSize+1), &failingReader{n: 0})
		if _, err := s.PutLog(ctx, testRun, testPod, "run", src); !errors.Is(err, errBroken) {
			t.Fatalf("err = %v, want the reader's error", err)
		}
		if got := readLog(t, s, testRun, testPod, "run"); got != "complete\n" {
			t.Errorf("after a failed rewrite the log is %.40q, want the earlier copy", got)
		}
		if st, err := s.StatLog(ctx, testRun, testPod, "run"); err != nil || st.Bytes != 9 {
			t.Errorf("after a failed rewrite StatLog = %+v, %v; want the earlier info", st, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.PutLog(cctx, testRun, testPod, "other", strings.NewReader("x\n"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func (f *s3Fixture) testTruncatesHugeLog(t *testing.T) {
	s := f.store(t, 0)
	src := &lazyLog{size: 64 << 20}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	info, err := s.PutLog(t.Context(), testRun, testPod, "run", src)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}

	if !info.Truncated || info.Bytes != DefaultMaxLogBytes {
		t.Errorf("info = %+v, want truncated at %d", info, DefaultMaxLogBytes)
	}
	if src.read > DefaultMaxLogBytes+64<<10 {
		t.Errorf("read %d bytes of the source, want little more than %d", src.read, DefaultMaxLogBytes)
	}
	// The same bound as DirStore's: the upload holds at most one part.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12<<20 {
		t.Errorf("storing allocated %d MiB, want it bounded well under the log's size", alloc>>20)
	}

	rc, err := s.GetLog(t.Context(), testRun, testPod, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var total int64
	var last string
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		total += int64(len(sc.Bytes())) + 1
		last = sc.Text()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	marker := TruncationMarker(DefaultMaxLogBytes)
	if last+"\n" != marker {
		t.Errorf("last line = %q, want %q", last, marker)
	}
	if want := DefaultMaxLogBytes + int64(len(marker)); total != want {
		t.Errorf("stored %d bytes, want %d", total, want)
	}
}

func (f *s3Fixture) testTruncationBound(t *testing.T) {
	s := f.store(t, 10)
	tests := []struct {
		name, in, want string
		truncated      bool
	}{
		{"under", "abc\n", "abc\n", false},
		{"exactly", "0123456789", "0123456789", false},
		{"over at line end", "012345678\nmore", "012345678\n" + TruncationMarker(10), true},
		{"over mid-line", "0123456789abc", "0123456789\n" + TruncationMarker(10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := s.PutLog(t.Context(), testRun, testPod, "run", strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if info.Truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", info.Truncated, tt.truncated)
			}
			if got := readLog(t, s, testRun, testPod, "run"); got != tt.want {
				t.Errorf("log = %q, want %q", got, tt.want)
			}
		})
	}
}

func (f *s3Fixture) testBadNames(t *testing.T) {
	s := f.store(t, 0)
	ctx := t.Context()
	bad := []string{"", "..", ".", "../escape", "a/b", "/etc", "x/../../y", "UPPER",
		"run\x00", "-lead", strings.Repeat("a", 64), `a\b`, "a?b", "a%2fb"}

	for _, name := range bad {
		t.Run(name, func(t *testing.T) {
			calls := map[string]error{}
			_, calls["PutLog run"] = s.PutLog(ctx, name, testPod, "run", strings.NewReader("x"))
			_, calls["PutLog pod"] = s.PutLog(ctx, testRun, name, "run", strings.NewReader("x"))
			_, calls["PutLog container"] = s.PutLog(ctx, testRun, testPod, name, strings.NewReader("x"))
			_, calls["GetLog"] = s.GetLog(ctx, name, testPod, "run")
			_, calls["StatLog"] = s.StatLog(ctx, testRun, testPod, name)
			calls["PutRun"] = s.PutRun(ctx, &Run{Name: name, Repo: "a/b", SHA: testSHA})
			calls["PutRun repo"] = s.PutRun(ctx, &Run{Name: testRun, Repo: name, SHA: testSHA})
			_, calls["GetRun"] = s.GetRun(ctx, name)
			_, calls["ListRuns repo"] = s.ListRuns(ctx, name, "")
			_, calls["ListRuns sha"] = s.ListRuns(ctx, "a/b", name)
			for call, err := range calls {
				switch {
				case name == strings.Repeat("a", 64) && call == "PutLog pod",
					name == "" && call == "ListRuns sha",
					name == "a/b" && (call == "ListRuns repo" || call == "PutRun repo"):
					// A long pod name is a valid subdomain, no commit
					// means all of them, and a/b is a repository.
					continue
				}
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("%s(%q): err = %v, want ErrInvalidName", call, name, err)
				}
			}
		})
	}

	// Only what the valid calls above wrote is in the bucket.
	for _, k := range f.keys(t, s.bucket) {
		if !strings.HasPrefix(k, testS3Prefix+"/runs/"+testRun+"/") &&
			!strings.HasPrefix(k, testS3Prefix+"/index/") {
			t.Errorf("unexpected key %q", k)
		}
	}
}

func (f *s3Fixture) testRefused(t *testing.T) {
	bucket := bucketName(t)
	f.srv.CreateBucket(t, bucket)
	const wrongSecret = "not-the-secret-0123456789"

	tests := []struct {
		name   string
		change func(*S3Options)
		// codes are the words of which the error must say one.
		codes  []string
		denied bool
	}{
		{"wrong secret", func(o *S3Options) { o.SecretKey = []byte(wrongSecret) },
			[]string{"SignatureDoesNotMatch"}, true},
		// AWS says InvalidAccessKeyId, versitygw XAdminUserNotFound.
		{"unknown access key", func(o *S3Options) { o.AccessKey = []byte("nobody") },
			[]string{"InvalidAccessKeyId", "XAdminUserNotFound"}, true},
		{"missing bucket", func(o *S3Options) { o.Bucket = "no-such-bucket" },
			[]string{"does not exist"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options(bucket)
			tt.change(&o)
			_, err := NewS3Store(t.Context(), o)
			if err == nil {
				t.Fatal("NewS3Store succeeded")
			}
			if errors.Is(err, ErrAccessDenied) != tt.denied {
				t.Errorf("errors.Is(err, ErrAccessDenied) = %v, want %v: %v",
					!tt.denied, tt.denied, err)
			}
			msg := err.Error()
			said := slices.ContainsFunc(tt.codes, func(c string) bool {
				return strings.Contains(msg, c)
			})
			if !said || !strings.Contains(msg, o.Bucket) {
				t.Errorf("error %q does not say one of %q about the bucket", msg, tt.codes)
			}
			if strings.Contains(msg, f.srv.SecretKey) || strings.Contains(msg, wrongSecret) {
				t.Errorf("error %q shows the secret key", msg)
			}
		})
	}
}

// archiveTo stores an ended run whose logs are given, as the Archiver
// would and as handler_test.go's fixture does for the golden page.
func archiveTo(t *testing.T, store Store, job string, logs map[string]string) *Run {
	t.Helper()
	j, pod := endedJob(t, testRunFor(job), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	run, err := runFromJob(j, []*corev1.Pod{pod})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range run.Pods[0].Containers {
		text, ok := logs[c.Name]
		if !ok {
			run.Pods[0].Containers[i].Note = "log unavailable: the pod no longer exists"
			continue
		}
		info, err := store.PutLog(t.Context(), run.Name, pod.Name, c.Name, strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		run.Pods[0].Containers[i].Log = &info
	}
	archived := time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC)
	run.Archived = &archived
	if err := store.PutRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}

	return run
}

// testTwoReplicas serves an archived run from two Handlers, each with its
// own S3Store made from the same options, as two yaci replicas would.
func (f *s3Fixture) testTwoReplicas(t *testing.T) {
	bucket := bucketName(t)
	f.srv.CreateBucket(t, bucket)
	signer := testSigner(t)

	var servers []*httptest.Server
	var stores []*S3Store
	for range 2 {
		store, err := NewS3Store(t.Context(), f.options(bucket))
		if err != nil {
			t.Fatal(err)
		}
		// Each replica has its own cluster client; the Job is gone.
		h := NewHandler(fake.NewClientset(), testNamespace, store, signer, testAPIToken,
			slog.New(slog.DiscardHandler))
		h.now = func() time.Time { return time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC) }
		mux := http.NewServeMux()
		h.Mount(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		servers, stores = append(servers, srv), append(stores, store)
	}

	// The first replica archives; both serve.
	run := archiveTo(t, stores[0], "unit",
		map[string]string{"clone": "kwok: clone\n", "run": colourLog})
	want, err := os.ReadFile(filepath.Join("testdata", "page.golden.html"))
	if err != nil {
		t.Fatal(err)
	}
	token := run.Name + "?t=" + signer.Token(run.Name)
	for i, srv := range servers {
		t.Run(fmt.Sprintf("replica %d", i), func(t *testing.T) {
			page := httpGet(t, srv, "/runs/"+token)
			if page != string(want) {
				t.Errorf("the page differs from the one a DirStore serves (testdata/page.golden.html):\n%s",
					page)
			}
			log := httpGet(t, srv, "/runs/"+run.Name+"/log?t="+signer.Token(run.Name)+"&container=run")
			if log != colourLog {
				t.Errorf("raw log = %q, want %q", log, colourLog)
			}
		})
	}
}

func (f *s3Fixture) testSweepsUploads(t *testing.T) {
	bucket := bucketName(t)
	f.srv.CreateBucket(t, bucket)
	logs := testS3Prefix + "/runs/" + testRun + "/logs/" + testPod + "/"
	const old = s3StaleUpload + time.Hour
	uploads := []struct {
		key  string
		age  time.Duration
		kept bool
	}{
		{logs + "run.log.gz", old, false},
		// Another replica is sending it now.
		{logs + "clone.log.gz", time.Hour, true},
		// Not the store's: outside its prefix, or beside its logs.
		{"other/runs/" + testRun + "/logs/" + testPod + "/run.log.gz", old, true},
		{testS3Prefix + "/backup.tar", old, true},
	}
	for _, u := range uploads {
		f.startUpload(t, bucket, u.key, u.age)
	}

	var out bytes.Buffer
	o := f.options(bucket)
	o.Logger = slog.New(slog.NewTextHandler(&out, nil))
	if _, err := NewS3Store(t.Context(), o); err != nil {
		t.Fatal(err)
	}

	left := f.uploadKeys(t, bucket)
	for _, u := range uploads {
		if kept := slices.Contains(left, u.key); kept != u.kept {
			t.Errorf("upload of %s: kept = %v, want %v", u.key, kept, u.kept)
		}
	}
	if !strings.Contains(out.String(), "count=1") || strings.Contains(out.String(), "WARN") {
		t.Errorf("the log does not say that one upload was aborted:\n%s", out.String())
	}
}

// testSweepPages has the sweep go through a listing of several pages.
func (f *s3Fixture) testSweepPages(t *testing.T) {
	s := f.store(t, 0)
	const n = 5
	for i := range n {
		f.startUpload(t, s.bucket, s.logKey(testRun, testPod, fmt.Sprintf("c%d.log.gz", i)),
			s3StaleUpload+time.Hour)
	}

	aborted, err := s.abortStale(t.Context(), time.Now().Add(-s3StaleUpload), 2)
	if err != nil {
		t.Fatal(err)
	}
	if aborted != n {
		t.Errorf("aborted %d uploads, want %d", aborted, n)
	}
	if left := f.uploadKeys(t, s.bucket); len(left) != 0 {
		t.Errorf("uploads left: %v", left)
	}
}

// TestS3StoreSweepRefused checks that a bucket policy that refuses the
// listing of uploads is said once and does not stop the store.
func TestS3StoreSweepRefused(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	var listed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		if r.URL.Query().Has("uploads") {
			listed.Add(1)
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		fmt.Fprint(w, `<ListBucketResult><Name>yaci</Name><KeyCount>0</KeyCount>`+
			`<IsTruncated>false</IsTruncated></ListBucketResult>`)
	}))
	t.Cleanup(srv.Close)

	var out bytes.Buffer
	_, err := NewS3Store(t.Context(), S3Options{
		Endpoint: srv.URL, Bucket: "yaci", Prefix: testS3Prefix, PathStyle: true,
		AccessKey: []byte("key"), SecretKey: []byte("secret"),
		Logger: slog.New(slog.NewTextHandler(&out, nil)),
	})
	if err != nil {
		t.Fatalf("NewS3Store failed on a refused sweep: %v", err)
	}
	log := out.String()
	if listed.Load() != 1 || strings.Count(log, "level=WARN") != 1 ||
		!strings.Contains(log, "s3:ListBucketMultipartUploads") {
		t.Errorf("listed %d times; the log should warn once, naming the permission:\n%s",
			listed.Load(), log)
	}
}

// httpGet returns the body of a GET of path from srv, failing t unless
// it answers 200.
func httpGet(t *testing.T, srv *httptest.Server, path string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}

	return string(body)
}

// TestS3OptionsValidate checks options before any server is reached.
func TestS3OptionsValidate(t *testing.T) {
	valid := S3Options{
		Endpoint: "http://127.0.0.1:1", Bucket: "yaci-logs", Prefix: "yaci/",
		AccessKey: []byte("AKIDEXAMPLE"), SecretKey: []byte("secret-never-shown"),
	}
	tests := []struct {
		name   string
		change func(*S3Options)
		want   string
	}{
		{"bucket empty", func(o *S3Options) { o.Bucket = "" }, "not an S3 bucket name"},
		{"bucket with slash", func(o *S3Options) { o.Bucket = "a/b" }, "not an S3 bucket name"},
		{"bucket upper case", func(o *S3Options) { o.Bucket = "Logs" }, "not an S3 bucket name"},
		{"prefix escapes", func(o *S3Options) { o.Prefix = "../x" }, "not a plain name"},
		{"prefix absolute", func(o *S3Options) { o.Prefix = "/x" }, "not a plain name"},
		{"prefix empty segment", func(o *S3Options) { o.Prefix = "a//b" }, "not a plain name"},
		{"endpoint not a URL", func(o *S3Options) { o.Endpoint = "minio:9000" }, "not an http"},
		{"endpoint with user", func(o *S3Options) { o.Endpoint = "https://k:s@minio" },
			"has user info"},
		{"key without secret", func(o *S3Options) { o.SecretKey = nil }, "needs a secret key"},
		{"negative bound", func(o *S3Options) { o.MaxLogBytes = -1 }, "negative log bound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.change(&o)
			_, err := NewS3Store(t.Context(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-never-shown") {
				t.Errorf("error %q shows the secret key", err)
			}
		})
	}

	for _, p := range []struct{ in, want string }{
		{"", ""}, {"yaci", "yaci/"}, {"yaci/", "yaci/"}, {"a/b.c/d_e", "a/b.c/d_e/"},
	} {
		o := valid
		o.Prefix = p.in
		if got, err := o.validate(); err != nil || got != p.want {
			t.Errorf("prefix %q: got %q, %v; want %q", p.in, got, err, p.want)
		}
	}

	// Printing or logging options never shows the secret key.
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("store", "s3", valid)
	for _, text := range []string{
		fmt.Sprint(valid), fmt.Sprintf("%+v", valid), fmt.Sprintf("%#v", valid), logged.String(),
	} {
		if strings.Contains(text, "secret-never-shown") || !strings.Contains(text, "yaci-logs") {
			t.Errorf("options print as %q", text)
		}
	}
}

// BenchmarkStorePutLog archives a 1 MiB log of test output into each kind
// of store, to show what S3 costs over a local folder.
func BenchmarkStorePutLog(b *testing.B) {
	b.Setenv("AWS_CONFIG_FILE", os.DevNull)
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	line := "+ go test ./...\nok  \texample.com/yaci/internal/parser\t0.012s\n"
	log := []byte(strings.Repeat(line, (1<<20)/len(line)))

	f := &s3Fixture{srv: s3test.Start(b)}
	f.srv.CreateBucket(b, "bench")
	s3store, err := NewS3Store(b.Context(), f.options("bench"))
	if err != nil {
		b.Fatal(err)
	}
	stores := []struct {
		name  string
		store Store
	}{
		{"dir", newTestStore(b, 0)},
		{"s3", s3store},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			b.SetBytes(int64(len(log)))
			b.ReportAllocs()
			for b.Loop() {
				_, err := st.store.PutLog(b.Context(), testRun, testPod, "run", bytes.NewReader(log))
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
