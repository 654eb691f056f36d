package logs

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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

func TestDirStoreRoundTrip(t *testing.T) {
	s := newTestStore(t, 0)
	testStoreRoundTrip(t, s, func(t *testing.T, name string) {
		if err := os.Remove(filepath.Join(s.dir, "runs", name, "run.json")); err != nil {
			t.Fatal(err)
		}
	})
}

// noTempFiles fails t if a temporary file of s is left: none may stay
// behind a write, failed or not, and no file is half written.
func noTempFiles(t *testing.T, s *DirStore) {
	t.Helper()
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

func TestDirStoreAtomic(t *testing.T) {
	s := newTestStore(t, 0)
	testStoreAtomic(t, s, func(t *testing.T) { noTempFiles(t, s) })
	// After the rewrites and the cancelled write too.
	noTempFiles(t, s)
}

func TestDirStoreTruncatesHugeLog(t *testing.T) {
	testStoreTruncatesHugeLog(t, newTestStore(t, 0))
}

func TestDirStoreTruncationBound(t *testing.T) {
	testStoreTruncationBound(t, newTestStore(t, 10))
}

func TestDirStoreRejectsBadNames(t *testing.T) {
	parent := t.TempDir()
	s, err := NewDirStore(filepath.Join(parent, "store"), 0)
	if err != nil {
		t.Fatal(err)
	}
	testStoreBadNames(t, s)

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
