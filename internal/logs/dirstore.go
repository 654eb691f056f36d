package logs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/yaci-ci/yaci/internal/launch"
)

// maxListed bounds what one ListRuns call returns, newest first.
const maxListed = 500

// tempPrefix begins the name of every file writeAtomic has not yet renamed
// into place.
const tempPrefix = ".tmp-"

// tempMaxAge is how long a temporary file must have gone unwritten before
// NewDirStore takes it for the leftover of a killed process and removes
// it. A live writer touches its file with every 64 KiB it writes, and a
// whole log is copied within the Archiver's LogTimeout (minutes), so an
// hour leaves room for a stalled disk and for clocks that disagree
// between the replicas sharing a ReadWriteMany volume, one of which may
// be writing while another starts.
const tempMaxAge = time.Hour

// repoPattern is what GitHub allows in "owner/name".
var repoPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)

// DirStore is a Store in a local folder. Every file is written to a
// temporary name in its final folder and renamed into place once it is
// complete and synced, so a crash or a failed read leaves the previous
// copy, or nothing, never half a file. Logs are gzip-compressed.
//
// The layout under the folder is:
//
//	runs/<run>/run.json                       the run's metadata
//	runs/<run>/logs/<pod>/<container>.log.gz  a container's log
//	runs/<run>/logs/<pod>/<container>.json    its LogInfo
//	index/<repo key>/<sha>/<run>              empty; lists runs by commit
//
// where <repo key> is a hash of the lower-cased "owner/name", so that no
// repository name is ever part of a path.
type DirStore struct {
	dir         string
	maxLogBytes int64
}

// NewDirStore returns a store in dir, creating the folder if needed. A log
// longer than maxLogBytes is cut there; zero means DefaultMaxLogBytes.
// Temporary files that a killed process left behind in dir are removed
// (which reads every folder of the store once), and their number logged
// to slog.Default().
func NewDirStore(dir string, maxLogBytes int64) (*DirStore, error) {
	maxLogBytes, err := logBound(maxLogBytes)
	if err != nil {
		return nil, fmt.Errorf("log store %s: %w", dir, err)
	}
	// Logs may hold what a job printed by mistake; only yaci reads them.
	for _, sub := range []string{"runs", "index"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create log store %s: %w", dir, err)
		}
	}

	log := slog.Default().With("dir", dir)
	if n := sweepTemp(dir, time.Now().Add(-tempMaxAge), log); n > 0 {
		log.Info("removed temporary files left by an interrupted write", "count", n)
	}

	return &DirStore{dir: dir, maxLogBytes: maxLogBytes}, nil
}

// MaxLogBytes returns the bound on one stored log.
func (s *DirStore) MaxLogBytes() int64 { return s.maxLogBytes }

func (s *DirStore) logDir(run, pod string) string {
	return filepath.Join(s.dir, "runs", run, "logs", pod)
}

// PutLog implements Store.
func (s *DirStore) PutLog(ctx context.Context, run, pod, container string, r io.Reader) (LogInfo, error) {
	if err := checkLogNames(run, pod, container); err != nil {
		return LogInfo{}, err
	}
	dir := s.logDir(run, pod)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return LogInfo{}, fmt.Errorf("store log %s/%s/%s: %w", run, pod, container, err)
	}

	var info LogInfo
	err := writeAtomic(dir, container+".log.gz", func(w io.Writer) (err error) {
		info, err = encodeLog(ctx, w, r, s.maxLogBytes)
		return err
	})
	if err != nil {
		return LogInfo{}, fmt.Errorf("store log %s/%s/%s: %w", run, pod, container, err)
	}

	err = writeAtomic(dir, container+".json", func(w io.Writer) error {
		return json.NewEncoder(w).Encode(info)
	})
	if err != nil {
		return LogInfo{}, fmt.Errorf("store log info %s/%s/%s: %w", run, pod, container, err)
	}

	return info, nil
}

// GetLog implements Store.
func (s *DirStore) GetLog(_ context.Context, run, pod, container string) (io.ReadCloser, error) {
	if err := checkLogNames(run, pod, container); err != nil {
		return nil, err
	}

	f, err := os.Open(filepath.Join(s.logDir(run, pod), container+".log.gz"))
	if err != nil {
		return nil, fmt.Errorf("open log %s/%s/%s: %w", run, pod, container, notFound(err))
	}
	rc, err := decodeLog(f)
	if err != nil {
		return nil, fmt.Errorf("open log %s/%s/%s: %w", run, pod, container, err)
	}

	return rc, nil
}

// StatLog implements Store.
func (s *DirStore) StatLog(_ context.Context, run, pod, container string) (LogInfo, error) {
	if err := checkLogNames(run, pod, container); err != nil {
		return LogInfo{}, err
	}

	var info LogInfo
	data, err := os.ReadFile(filepath.Join(s.logDir(run, pod), container+".json"))
	if err != nil {
		return info, fmt.Errorf("stat log %s/%s/%s: %w", run, pod, container, notFound(err))
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("stat log %s/%s/%s: %w", run, pod, container, err)
	}

	return info, nil
}

// PutRun implements Store. The index entry is written after the metadata,
// so a listed run can always be read.
func (s *DirStore) PutRun(_ context.Context, run *Run) error {
	if err := checkName("run", run.Name); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "runs", run.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store run %s: %w", run.Name, err)
	}

	err := writeAtomic(dir, "run.json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(run)
	})
	if err != nil {
		return fmt.Errorf("store run %s: %w", run.Name, err)
	}

	if err := s.index(run); err != nil {
		return fmt.Errorf("index run %s: %w", run.Name, err)
	}

	return nil
}

// index records run under its repository and commit.
func (s *DirStore) index(run *Run) error {
	if !repoPattern.MatchString(run.Repo) || !launch.IsCommitID(run.SHA) {
		return fmt.Errorf("repo %q at %q: %w", run.Repo, run.SHA, ErrInvalidName)
	}
	dir := filepath.Join(s.dir, "index", repoKey(run.Repo), run.SHA)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	f, err := os.OpenFile(filepath.Join(dir, run.Name), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}

	return f.Close()
}

// GetRun implements Store.
func (s *DirStore) GetRun(_ context.Context, name string) (*Run, error) {
	if err := checkName("run", name); err != nil {
		return nil, err
	}

	data, err := os.ReadFile(filepath.Join(s.dir, "runs", name, "run.json"))
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", name, notFound(err))
	}
	run := &Run{}
	if err := json.Unmarshal(data, run); err != nil {
		return nil, fmt.Errorf("read run %s: %w", name, err)
	}

	return run, nil
}

// ListRuns implements Store.
func (s *DirStore) ListRuns(ctx context.Context, repo, sha string) ([]*Run, error) {
	if !repoPattern.MatchString(repo) || (sha != "" && !launch.IsCommitID(sha)) {
		return nil, fmt.Errorf("list runs of %q at %q: %w", repo, sha, ErrInvalidName)
	}
	base := filepath.Join(s.dir, "index", repoKey(repo))

	shas := []string{sha}
	if sha == "" {
		entries, err := os.ReadDir(base)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list runs of %s: %w", repo, err)
		}
		shas = shas[:0]
		for _, e := range entries {
			shas = append(shas, e.Name())
		}
	}

	var runs []*Run
	for _, c := range shas {
		entries, err := os.ReadDir(filepath.Join(base, c))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list runs of %s at %s: %w", repo, c, err)
		}
		for _, e := range entries {
			run, err := s.GetRun(ctx, e.Name())
			if err != nil {
				// A stray entry, or a run removed by hand: not listed.
				continue
			}
			if strings.EqualFold(run.Repo, repo) && run.SHA == c {
				runs = append(runs, run)
			}
		}
	}
	sortRuns(runs)
	if len(runs) > maxListed {
		runs = runs[:maxListed]
	}

	return runs, nil
}

// sortRuns orders runs newest first, then by name.
func sortRuns(runs []*Run) {
	slices.SortStableFunc(runs, func(a, b *Run) int {
		ta, tb := startedUnix(a), startedUnix(b)
		if ta != tb {
			if ta > tb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func startedUnix(r *Run) int64 {
	if r.Started == nil {
		return 0
	}

	return r.Started.UnixNano()
}

// repoKey names a repository's index folder. GitHub treats names without
// regard to case, and so does the index.
func repoKey(repo string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(repo)))

	return hex.EncodeToString(sum[:16])
}

// notFound wraps a missing file's error in ErrNotFound, and keeps the
// store's path out of the message, which may reach a log line.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}

	return err
}

// writeAtomic writes name in dir through fill: into a temporary file in
// the same folder, synced, then renamed over name, then the folder synced,
// so that name is either the old file or the whole new one. When fill
// fails the temporary file is removed.
func writeAtomic(dir, name string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, 64<<10)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}

	return syncDir(dir)
}

// sweepTemp removes the temporary files below dir last written before
// cutoff, which writeAtomic's process was killed before renaming, and
// returns how many it removed. What it cannot read or remove is logged
// and passed over: a leftover costs only disk space, which is no reason
// to keep yaci from starting.
func sweepTemp(dir string, cutoff time.Time, log *slog.Logger) int {
	removed := 0
	// The walk goes on past every error, so it returns none.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			var gone bool
			gone, err = removeStale(path, d, cutoff)
			if gone {
				removed++
			}
		}
		// Another replica's sweep may have removed the file first.
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("sweep temporary files: pass over", "path", path, "error", err)
		}
		return nil
	})

	return removed
}

// removeStale removes path if it is a temporary file last written before
// cutoff, and says whether it did.
func removeStale(path string, d fs.DirEntry, cutoff time.Time) (bool, error) {
	if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) {
		return false, nil
	}
	info, err := d.Info()
	if err != nil || !info.ModTime().Before(cutoff) {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}

	return true, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()

	return d.Sync()
}
