package localrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// cleanupTimeout bounds removing one checkout. Removal runs after an
// interrupt too, so it cannot use Run's context, but it must not hang
// the command either.
const cleanupTimeout = 30 * time.Second

// repository is what Run learns about Options.Dir once, before any job:
// where the commit comes from and what the YACI_* variables say.
type repository struct {
	// dir is Options.Dir, absolute.
	dir string
	// root is the top of dir's work tree, and prefix dir's path inside
	// it ("" or "sub/dir/"); root is "" when dir is in no repository.
	root, prefix string
	// sha, ref and branch describe HEAD; ref and branch are empty when
	// HEAD is detached, as for a push of a tag.
	sha, ref, branch string
	message          string
	// owner and name come from the origin remote's URL; without one,
	// name is the directory's.
	owner, name string
	// changed is set when the work tree differs from HEAD.
	changed bool
	// env is the environment for yaci's own git commands.
	env []string
	// worktrees serializes adding and removing worktrees: git reads the
	// records of the others while it writes a new one, and a record half
	// written by a parallel job makes it fail.
	worktrees *sync.Mutex
}

// inspect reads what Run needs to know about dir from git. Outside a
// repository, or before its first commit, only a dirty run can go on.
func inspect(ctx context.Context, dir string, env []string, dirty bool) (repository, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return repository{}, fmt.Errorf("directory %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return repository{}, fmt.Errorf("directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return repository{}, fmt.Errorf("%s is not a directory", dir)
	}
	repo := repository{dir: abs, name: filepath.Base(abs), env: env, worktrees: new(sync.Mutex)}

	root, err := repo.git(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		if dirty {
			return repo, nil
		}
		return repo, fmt.Errorf("%s is not in a git repository (--dirty runs the jobs in it "+
			"as it is): %w", dir, ErrNoCheckout)
	}
	repo.root = root
	repo.name = filepath.Base(root)
	if repo.prefix, err = repo.git(ctx, "rev-parse", "--show-prefix"); err != nil {
		return repo, err
	}
	// A detached HEAD has no symbolic ref; the error says just that.
	repo.ref, _ = repo.git(ctx, "symbolic-ref", "--quiet", "HEAD")
	repo.branch = strings.TrimPrefix(repo.ref, "refs/heads/")
	if url, err := repo.git(ctx, "remote", "get-url", "origin"); err == nil {
		repo.owner, repo.name = repoFromURL(url, repo.name)
	}

	repo.sha, err = repo.git(ctx, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	switch {
	case err != nil && dirty:
		return repo, nil
	case err != nil:
		return repo, fmt.Errorf("repository %s has no commit yet (--dirty runs the jobs in "+
			"it as it is): %w", root, ErrNoCheckout)
	}
	if repo.message, err = repo.git(ctx, "log", "-1", "--format=%B", repo.sha); err != nil {
		return repo, err
	}
	if !dirty {
		status, err := repo.git(ctx, "status", "--porcelain")
		if err != nil {
			return repo, err
		}
		repo.changed = status != ""
	}

	return repo, nil
}

// repoFromURL returns the owner and name a remote URL ends in, whatever
// its form (https://host/owner/name.git, git@host:owner/name, a path).
// Only those two parts are kept, so credentials in the URL go nowhere.
func repoFromURL(url, fallback string) (owner, name string) {
	url = strings.TrimSuffix(strings.TrimRight(url, "/"), ".git")
	parts := strings.FieldsFunc(url, func(r rune) bool { return r == '/' || r == ':' })
	switch len(parts) {
	case 0:
		return "", fallback
	case 1:
		return "", parts[0]
	}

	return parts[len(parts)-2], parts[len(parts)-1]
}

// fullName is YACI_REPO: "owner/name", or the name alone.
func (r repository) fullName() string {
	if r.owner == "" {
		return r.name
	}

	return r.owner + "/" + r.name
}

// run returns the run that the cluster would make of a push of HEAD.
func (r repository) run(job repoconfig.Job, delivery string) trigger.Run {
	return trigger.Run{
		Event: trigger.Event{
			Delivery: delivery,
			Kind:     repoconfig.EventPush,
			Repo:     trigger.Repo{Owner: r.owner, Name: r.name},
			SHA:      r.sha,
			Ref:      r.ref,
			Branch:   r.branch,
			Message:  r.message,
		},
		Job:     job,
		Attempt: 1,
	}
}

// addWorktree checks HEAD's commit out at path as a detached worktree.
// The repository's hooks are off: the cluster's checkout runs none.
func (r repository) addWorktree(ctx context.Context, path string) error {
	r.worktrees.Lock()
	defer r.worktrees.Unlock()

	_, err := r.git(ctx, "-c", "core.hooksPath="+os.DevNull,
		"worktree", "add", "--quiet", "--detach", path, r.sha)

	return err
}

// removeWorktree removes the worktree at path and git's record of it.
// If git cannot (a job made files read-only, say), the files are removed
// by force and the record pruned.
func (r repository) removeWorktree(path string) error {
	r.worktrees.Lock()
	defer r.worktrees.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()

	if _, err := r.git(ctx, "worktree", "remove", "--force", path); err == nil {
		return nil
	}
	rmErr := removeAll(path)
	_, pruneErr := r.git(ctx, "worktree", "prune")

	return errors.Join(rmErr, pruneErr)
}

// git runs git in the repository's directory and returns its output
// without the final newlines.
func (r repository) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = r.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", subcommand(args), msg)
	}

	return strings.TrimRight(stdout.String(), "\n"), nil
}

// subcommand returns the git command args run, for messages: the first
// argument that is not a "-c name=value" option.
func subcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		if args[i] == "-c" {
			i++
			continue
		}
		return args[i]
	}

	return "git"
}

// removeAll removes path like os.RemoveAll, first making its folders
// writable: a job may leave read-only ones (Go's module cache is), and
// they are still the job's to lose.
func removeAll(path string) error {
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})

	return os.RemoveAll(path)
}
