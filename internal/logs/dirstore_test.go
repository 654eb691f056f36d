package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const (
	testRun = "yaci-unit-0123456789abcdef"
	testPod = "yaci-unit-0123456789abcdef-x7k2p"
	testSHA = "0d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
)

func newTestStore(t testing.TB, max int64) *DirStore {
	t.Helper()
	s, err := NewDirStore(t.TempDir(), max)
	if err != nil {
		t.Fatal(err)
	}

	return s
}

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

func TestDirStoreRoundTrip(t *testing.T) {
	s := newTestStore(t, 0)
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

func TestDirStoreAtomic(t *testing.T) {
	s := newTestStore(t, 0)
	ctx := t.Context()

	t.Run("first write fails", func(t *testing.T) {
		_, err := s.PutLog(ctx, testRun, testPod, "clone", &failingReader{n: 200 << 10})
		if !errors.Is(err, errBroken) {
			t.Fatalf("err = %v, want the reader's error", err)
		}
		if _, err := s.GetLog(ctx, testRun, testPod, "clone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed write left a log: err = %v", err)
		}
		if _, err := s.StatLog(ctx, testRun, testPod, "clone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed write left log info: err = %v", err)
		}
	})

	t.Run("rewrite fails", func(t *testing.T) {
		if _, err := s.PutLog(ctx, testRun, testPod, "run", strings.NewReader("complete\n")); err != nil {
			t.Fatal(err)
		}
		_, err := s.PutLog(ctx, testRun, testPod, "run", &failingReader{n: 300 << 10})
		if !errors.Is(err, errBroken) {
			t.Fatalf("err = %v, want the reader's error", err)
		}
		if got := readLog(t, s, testRun, testPod, "run"); got != "complete\n" {
			t.Errorf("after a failed rewrite the log is %.40q, want the earlier copy", got)
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

	// No temporary file stays behind, and no file is half written.
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
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

func TestDirStoreTruncatesHugeLog(t *testing.T) {
	s := newTestStore(t, 0)
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
	// is ever allocated: it is streamed.
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

func TestTruncationBound(t *testing.T) {
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
			s := newTestStore(t, 10)
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
	if got := TruncationMarker(10); got != "… log truncated by yaci after 10 bytes …\n" {
		t.Errorf("marker = %q", got)
	}
}

func TestDirStoreRejectsBadNames(t *testing.T) {
	parent := t.TempDir()
	s, err := NewDirStore(filepath.Join(parent, "store"), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	bad := []string{"", "..", ".", "../escape", "a/b", "/etc", "x/../../y", "UPPER",
		"run\x00", "-lead", strings.Repeat("a", 64), `a\b`}

	for _, name := range bad {
		t.Run(name, func(t *testing.T) {
			calls := map[string]error{}
			_, calls["PutLog run"] = s.PutLog(ctx, name, testPod, "run", strings.NewReader("x"))
			_, calls["PutLog pod"] = s.PutLog(ctx, testRun, name, "run", strings.NewReader("x"))
			_, calls["PutLog container"] = s.PutLog(ctx, testRun, testPod, name, strings.NewReader("x"))
			_, calls["GetLog"] = s.GetLog(ctx, name, testPod, "run")
			_, calls["StatLog"] = s.StatLog(ctx, testRun, testPod, name)
			calls["PutRun"] = s.PutRun(ctx, &Run{Name: name, Repo: "a/b", SHA: testSHA})
			_, calls["GetRun"] = s.GetRun(ctx, name)
			_, calls["ListRuns repo"] = s.ListRuns(ctx, name, "")
			_, calls["ListRuns sha"] = s.ListRuns(ctx, "a/b", name)
			for call, err := range calls {
				switch {
				case name == strings.Repeat("a", 64) && call == "PutLog pod",
					name == "" && call == "ListRuns sha",
					name == "a/b" && call == "ListRuns repo":
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

	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("files appeared beside the store: %v", entries)
	}
}

// writeAged creates the file name below dir, written age ago.
func writeAged(t *testing.T, dir, name string, age time.Duration) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-age)
	if err := os.Chtimes(path, then, then); err != nil {
		t.Fatal(err)
	}
}

func TestDirStoreSweepsTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join("runs", testRun)
	pod := filepath.Join(run, "logs", testPod)
	old := tempMaxAge + time.Minute
	files := []struct {
		name string
		age  time.Duration
		kept bool
	}{
		{filepath.Join(run, ".tmp-run.json-1"), old, false},
		{filepath.Join(pod, ".tmp-run.log.gz-2"), old, false},
		// A write of this replica or another that is still going on.
		{filepath.Join(pod, ".tmp-clone.log.gz-3"), time.Minute, true},
		{filepath.Join(run, "run.json"), old, true},
		{filepath.Join(pod, "run.log.gz"), old, true},
		{filepath.Join(pod, "tmp-not-ours"), old, true},
	}
	for _, f := range files {
		writeAged(t, dir, f.name, f.age)
	}

	if _, err := NewDirStore(dir, 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f.name))
		if kept := err == nil; kept != f.kept {
			t.Errorf("%s: kept = %v, want %v (%v)", f.name, kept, f.kept, err)
		}
	}
}

func TestSweepTempCountsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	old := tempMaxAge + time.Minute
	writeAged(t, dir, filepath.Join("runs", "a", ".tmp-run.json-1"), old)
	writeAged(t, dir, filepath.Join("runs", "b", ".tmp-run.json-2"), old)
	writeAged(t, dir, filepath.Join("runs", "c", ".tmp-run.json-3"), old)
	// Root may remove files from a folder it may not write to.
	stuck := os.Geteuid() != 0
	if stuck {
		locked := filepath.Join(dir, "runs", "b")
		if err := os.Chmod(locked, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(locked, 0o700) })
	}

	var out strings.Builder
	log := slog.New(slog.NewTextHandler(&out, nil))
	n := sweepTemp(dir, time.Now().Add(-tempMaxAge), log)

	want, warned := 3, strings.Contains(out.String(), "level=WARN")
	if stuck {
		want = 2
	}
	if n != want {
		t.Errorf("removed %d files, want %d", n, want)
	}
	if warned != stuck {
		t.Errorf("warned = %v, want %v; log:\n%s", warned, stuck, out.String())
	}
}
