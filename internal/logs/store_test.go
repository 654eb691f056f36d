package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The testStore functions check what the Store interface promises, once,
// against any store. dirstore_test.go runs them against a DirStore and
// s3store_test.go against an S3Store, so that the two stores are held to
// the same behaviour and a fix to one test cannot miss the other store.
// What only one store can show (files, objects, uploads) is checked by
// the caller, after or through a callback.

func readLog(t *testing.T, s Store, run, pod, container string) string {
	t.Helper()
	rc, err := s.GetLog(t.Context(), run, pod, container)
	if err != nil {
		t.Fatalf("GetLog: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}

	return string(data)
}

// failingReader yields n bytes of log, then fails, like a connection to
// the API server that breaks, or a process killed, mid-copy.
type failingReader struct{ n int }

var errBroken = errors.New("connection reset")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBroken
	}
	n := min(len(p), f.n)
	for i := range n {
		p[i] = "partial line\n"[i%13]
	}
	f.n -= n

	return n, nil
}

// lazyLog generates a log of size bytes as it is read, never holding more
// than one read's worth, and counts what was read.
type lazyLog struct {
	size, read int64
	line       int
}

func (l *lazyLog) Read(p []byte) (int, error) {
	if l.read >= l.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && l.read < l.size {
		// 64-byte lines: "line 0000001 " padded with dots, then '\n'.
		pos := l.read % 64
		switch {
		case pos == 63:
			p[n] = '\n'
			l.line++
		case pos < 13:
			p[n] = "line 00000000"[pos]
		default:
			p[n] = '.'
		}
		n++
		l.read++
	}

	return n, nil
}

// randomLog yields size bytes that gzip cannot shrink, the same for the
// same seed, so that a log spans several upload parts.
func randomLog(seed uint64, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size)
}

// testStoreRoundTrip stores logs and runs in s, an empty store without a
// log bound, and reads them back. dropRun removes the stored metadata of
// the run called name, as an operator cleaning up by hand would, leaving
// its index entry behind.
func testStoreRoundTrip(t *testing.T, s Store, dropRun func(t *testing.T, name string)) {
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

	// An index entry whose run is gone is not listed.
	dropRun(t, "yaci-lint-1111111111111111")
	if list, err := s.ListRuns(ctx, "yaci-ci/example", testSHA); err != nil || len(list) != 1 {
		t.Errorf("after removing a run, ListRuns = %d runs, %v; want 1", len(list), err)
	}
}

// testStoreAtomic checks that a write that fails leaves no log, or the
// earlier copy, in s, an empty store without a log bound. leftovers fails
// t if the store holds anything at all, or anything half written, after
// a failed first write: it is called when nothing may be stored yet.
func testStoreAtomic(t *testing.T, s Store, leftovers func(t *testing.T)) {
	ctx := t.Context()

	// Each kind of failure is tried early, and late enough that S3Store
	// has sent parts and DirStore has written megabytes of its temporary
	// file: random bytes stay as large compressed.
	firsts := []struct {
		name string
		src  io.Reader
	}{
		{"first write fails in the first part", &failingReader{n: 200 << 10}},
		{"first write fails after parts were sent", io.MultiReader(randomLog(2, 2*s3PartSize+4096),
			&failingReader{n: 0})},
	}
	for _, tt := range firsts {
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
			leftovers(t)
		})
	}

	rewrites := []struct {
		name string
		src  io.Reader
	}{
		{"rewrite fails in the first part", &failingReader{n: 300 << 10}},
		{"rewrite fails after a part was sent", io.MultiReader(randomLog(3, s3PartSize+1),
			&failingReader{n: 0})},
	}
	for _, tt := range rewrites {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.PutLog(ctx, testRun, testPod, "run", strings.NewReader("complete\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutLog(ctx, testRun, testPod, "run", tt.src); !errors.Is(err, errBroken) {
				t.Fatalf("err = %v, want the reader's error", err)
			}
			if got := readLog(t, s, testRun, testPod, "run"); got != "complete\n" {
				t.Errorf("after a failed rewrite the log is %.40q, want the earlier copy", got)
			}
			if st, err := s.StatLog(ctx, testRun, testPod, "run"); err != nil || st.Bytes != 9 {
				t.Errorf("after a failed rewrite StatLog = %+v, %v; want the earlier info", st, err)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.PutLog(cctx, testRun, testPod, "other", strings.NewReader("x\n"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// testStoreTruncatesHugeLog stores a 64 MiB log in s, a store with the
// default bound, and checks that it is cut at the bound while streamed.
func testStoreTruncatesHugeLog(t *testing.T, s Store) {
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
	// Reading stops just past the bound, and nothing near the log's size
	// is ever allocated: it is streamed, through a file by DirStore and
	// one upload part at a time by S3Store.
	if src.read > DefaultMaxLogBytes+64<<10 {
		t.Errorf("read %d bytes of the source, want little more than %d", src.read, DefaultMaxLogBytes)
	}
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
	if last+"\n" != marker || !strings.Contains(marker, "16 MiB") {
		t.Errorf("last line = %q, want %q", last, marker)
	}
	if want := DefaultMaxLogBytes + int64(len(marker)); total != want {
		t.Errorf("stored %d bytes, want %d", total, want)
	}
}

// testStoreTruncationBound checks where logs are cut in s, a store
// bounded at 10 bytes. The cases write the same log in turn, so each
// also checks that a rewrite replaces the earlier copy whole.
func testStoreTruncationBound(t *testing.T, s Store) {
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

func TestTruncationMarker(t *testing.T) {
	if got := TruncationMarker(10); got != "… log truncated by yaci after 10 bytes …\n" {
		t.Errorf("marker = %q", got)
	}
}

// testStoreBadNames checks that every method of s refuses names that are
// not Kubernetes names, which could otherwise point outside the store.
// The caller checks that nothing was written for them.
func testStoreBadNames(t *testing.T, s Store) {
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
}

// archiveTo stores in store an ended run whose logs are given, as the
// Archiver would; handler_test.go's fixture stores its golden page so.
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
