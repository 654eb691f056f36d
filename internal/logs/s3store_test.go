package logs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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

// TestS3Store runs the Store behaviours of store_test.go, which DirStore
// is tested for too, against a real S3-compatible server, and what is
// particular to object stores.
func TestS3Store(t *testing.T) {
	// A developer's own AWS settings must not reach the stores.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	f := &s3Fixture{srv: s3test.Start(t)}

	t.Run("round trip", f.testRoundTrip)
	t.Run("multipart", f.testMultipart)
	t.Run("atomic", f.testAtomic)
	t.Run("truncates huge log", func(t *testing.T) { testStoreTruncatesHugeLog(t, f.store(t, 0)) })
	t.Run("truncation bound", func(t *testing.T) { testStoreTruncationBound(t, f.store(t, 10)) })
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
	testStoreRoundTrip(t, s, func(t *testing.T, name string) {
		_, err := f.srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(testS3Prefix + "/runs/" + name + "/run.json"),
		})
		if err != nil {
			t.Fatal(err)
		}
	})

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

	for _, k := range f.keys(t, s.bucket) {
		if !strings.HasPrefix(k, testS3Prefix+"/") {
			t.Errorf("key %q is outside the prefix %q", k, testS3Prefix)
		}
	}
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
	testStoreAtomic(t, s, func(t *testing.T) {
		if keys := f.keys(t, s.bucket); len(keys) != 0 {
			t.Errorf("a failed write left objects: %v", keys)
		}
		if n := f.uploads(t, s.bucket); n != 0 {
			t.Errorf("a failed write left %d multipart uploads open", n)
		}
	})
	// A failed rewrite must not leave its upload open either.
	if n := f.uploads(t, s.bucket); n != 0 {
		t.Errorf("a failed write left %d multipart uploads open", n)
	}
}

func (f *s3Fixture) testBadNames(t *testing.T) {
	s := f.store(t, 0)
	testStoreBadNames(t, s)

	// Only what the valid calls of the test wrote is in the bucket.
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
