package github

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// CloneTokenReuse is how much life a clone token CloneToken minted earlier
// must have left to be handed out again instead of a new one.
//
// GitHub's installation tokens live an hour, and a queued run whose token
// has less than half an hour left when it starts is given a new one (see
// launch.RenewToken). With 40 minutes, a reused token still leaves a run
// ten minutes in the queue before it needs renewing, about as long as a run
// usually waits, so reuse seldom costs a renewal; and one repository needs
// a new token at most every 20 minutes however often it is pushed to.
const CloneTokenReuse = 40 * time.Minute

// Token is a credential a Job uses to clone a repository.
type Token struct {
	Value Secret
	// ExpiresAt is when GitHub stops accepting the token; zero for a
	// configured token, which does not expire on its own.
	ExpiresAt time.Time
}

// CloneToken returns a token that can clone owner/repo. With App
// authentication it is an installation token limited to that one
// repository and to reading its contents, so a Job's script cannot use it
// to write anywhere. It expires within an hour; one minted earlier is
// reused while it has CloneTokenReuse left. With token authentication it
// returns the configured token, whose reach is whatever it was created
// with.
func (c *Client) CloneToken(ctx context.Context, inst int64, owner, repo string) (Token, error) {
	return c.CloneTokenLasting(ctx, inst, owner, repo, CloneTokenReuse)
}

// CloneTokenLasting is CloneToken for a caller that needs the token to
// last at least minLeft from now. With App authentication the client keeps
// the last token it minted for each installation and repository, and
// returns it again while it lasts that long; otherwise it mints a new one,
// which lasts as long as GitHub makes it, even when that is less than
// minLeft. Callers asking for the same repository at once wait for each
// other, so that one mint serves them all.
func (c *Client) CloneTokenLasting(ctx context.Context, inst int64, owner, repo string,
	minLeft time.Duration) (Token, error) {
	if c.key == nil {
		return Token{Value: append(Secret(nil), c.token...)}, nil
	}
	if inst <= 0 {
		return Token{}, fmt.Errorf("clone token for %s/%s: %w", owner, repo,
			&permanentError{err: ErrNoInstallation})
	}

	k := cloneKey{inst, strings.ToLower(owner), strings.ToLower(repo)}
	e, err := c.clones.lock(ctx, k, c.now())
	if err != nil {
		return Token{}, fmt.Errorf("clone token for %s/%s: %w", owner, repo, err)
	}
	defer c.clones.unlock(e)
	// Measured after the wait for the lock, which may have been long.
	if e.tok.ExpiresAt.Sub(c.now()) >= minLeft {
		return e.tok.clone(), nil
	}

	tok, err := c.mintCloneToken(ctx, inst, repo)
	if err != nil {
		return Token{}, fmt.Errorf("clone token for %s/%s: %w", owner, repo, err)
	}
	e.tok = tok

	return tok.clone(), nil
}

// mintCloneToken asks GitHub for a new installation token that can only
// read the contents of repo.
func (c *Client) mintCloneToken(ctx context.Context, inst int64, repo string) (Token, error) {
	opts := &gh.InstallationTokenOptions{
		Repositories: []string{repo},
		Permissions:  &gh.InstallationPermissions{Contents: gh.String("read")},
	}
	var tok *gh.InstallationToken
	err := c.call(ctx, OpCreateInstallationToken, func(ctx context.Context) error {
		var err error
		tok, _, err = c.appAPI.Apps.CreateInstallationToken(ctx, inst, opts)
		return err
	})
	if err != nil {
		return Token{}, err
	}

	return Token{Value: Secret(tok.GetToken()), ExpiresAt: tok.GetExpiresAt().Time}, nil
}

// clone returns a copy of t that shares no bytes with it, so a caller
// changing its token cannot change the cached one.
func (t Token) clone() Token {
	t.Value = append(Secret(nil), t.Value...)
	return t
}

// cloneKey names the clone tokens of one repository in one installation.
// GitHub's owner and repository names are case-insensitive.
type cloneKey struct {
	inst        int64
	owner, repo string
}

// cloneEntry is the last clone token minted for one key. Its lock is a
// channel with room for one, held while the entry's token is read or
// minted, so that callers for the same repository mint once between them,
// and a caller waiting for it can give up when its context ends.
type cloneEntry struct {
	lock chan struct{}
	tok  Token // guarded by lock

	users int // guarded by the cache's mu: callers holding or awaiting lock
}

// cloneCache holds the last clone token of each repository. An entry goes
// once its token has expired and nobody is using it; entries are pruned
// whenever one is added, so the cache holds at most the repositories that
// got a token within the last hour or so.
type cloneCache struct {
	mu      sync.Mutex
	entries map[cloneKey]*cloneEntry // guarded by mu
}

func newCloneCache() *cloneCache {
	return &cloneCache{entries: make(map[cloneKey]*cloneEntry)}
}

// lock returns the entry of k, locked for the caller, who must unlock it.
// Adding an entry first prunes those whose tokens have expired by now.
func (c *cloneCache) lock(ctx context.Context, k cloneKey, now time.Time) (*cloneEntry, error) {
	c.mu.Lock()
	e, ok := c.entries[k]
	if !ok {
		c.prune(now)
		e = &cloneEntry{lock: make(chan struct{}, 1)}
		c.entries[k] = e
	}
	e.users++
	c.mu.Unlock()

	select {
	case e.lock <- struct{}{}:
		return e, nil
	case <-ctx.Done():
		c.release(e)
		return nil, ctx.Err()
	}
}

func (c *cloneCache) unlock(e *cloneEntry) {
	<-e.lock
	c.release(e)
}

// release notes that a caller is done with e.
func (c *cloneCache) release(e *cloneEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.users--
}

// prune drops the entries whose tokens have expired, or were never minted,
// and that nobody uses. The caller holds mu.
func (c *cloneCache) prune(now time.Time) {
	for k, e := range c.entries {
		if e.users == 0 && !e.expiresAfter(now) {
			delete(c.entries, k)
		}
	}
}

// expiresAfter reports whether e's token is still valid at t. Only a
// caller holding e's lock may change the token, and prune runs only on
// entries that have none, so reading it under the cache's mu is safe.
func (e *cloneEntry) expiresAfter(t time.Time) bool {
	return e.tok.ExpiresAt.After(t)
}
