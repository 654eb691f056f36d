package github_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
)

// clock is a settable time for a client's clone token cache. Moving it
// also lengthens the life of the fake's tokens by as much, as the fake
// issues them by the real time: a token minted after the move still lives
// an hour by the client's clock.
type clock struct {
	gh *githubtest.Server

	mu  sync.Mutex
	t   time.Time
	ttl time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.ttl += d
	c.gh.SetTokenTTL(c.ttl)
}

// newClockedAppClient is newAppClient on a clock the test moves.
func newClockedAppClient(t *testing.T, s *githubtest.Server, change ...func(*github.Options)) (*github.Client, *clock) {
	t.Helper()
	c := newAppClient(t, s, change...)
	clk := &clock{gh: s, t: time.Now(), ttl: time.Hour}
	github.SetClock(c, clk.now)
	return c, clk
}

// mints is how many installation tokens s has issued.
func mints(s *githubtest.Server) int {
	return s.Calls(githubtest.EndpointCreateInstallationToken)
}

// TestCloneTokenCache walks one client's cache through the life of its
// tokens, step by step: each step says whether GitHub is asked for a new
// token.
func TestCloneTokenCache(t *testing.T) {
	s := githubtest.NewServer(t)
	c, clk := newClockedAppClient(t, s)

	type step struct {
		name        string
		advance     time.Duration
		inst        int64
		owner, repo string
		// lasting, when set, asks CloneTokenLasting for that long.
		lasting time.Duration
		mint    bool
		// same names the earlier step whose token this one must return.
		same string
	}
	steps := []step{
		{name: "first", inst: 7, owner: owner, repo: repo, mint: true},
		{name: "again", inst: 7, owner: owner, repo: repo, same: "first"},
		{name: "names in other case", inst: 7, owner: "Octo", repo: "HELLO", same: "first"},
		{name: "another repository", inst: 7, owner: owner, repo: "other", mint: true},
		{name: "another installation", inst: 8, owner: owner, repo: repo, mint: true},
		{name: "19 minutes on", advance: 19 * time.Minute, inst: 7, owner: owner, repo: repo,
			same: "first"},
		// 39 minutes left now: less than CloneTokenReuse, but enough for
		// a caller that needs 30.
		{name: "renewal needing 30 minutes", advance: 2 * time.Minute, inst: 7, owner: owner,
			repo: repo, lasting: 30 * time.Minute, same: "first"},
		{name: "21 minutes on", inst: 7, owner: owner, repo: repo, mint: true},
		{name: "reused after renewal", inst: 7, owner: owner, repo: repo, same: "21 minutes on"},
		{name: "more than a token lives", inst: 7, owner: owner, repo: repo,
			lasting: 2 * time.Hour, mint: true},
		{name: "the longer one is kept", inst: 7, owner: owner, repo: repo,
			same: "more than a token lives"},
	}
	seen := map[string]string{}
	for _, st := range steps {
		clk.advance(st.advance)
		before := mints(s)
		var tok github.Token
		var err error
		if st.lasting > 0 {
			tok, err = c.CloneTokenLasting(t.Context(), st.inst, st.owner, st.repo, st.lasting)
		} else {
			tok, err = c.CloneToken(t.Context(), st.inst, st.owner, st.repo)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := tok.Value.Reveal()
		seen[st.name] = got

		want := 0
		if st.mint {
			want = 1
		}
		if minted := mints(s) - before; minted != want {
			t.Errorf("%s: %d tokens minted, want %d", st.name, minted, want)
		}
		if st.mint && handedOutBefore(seen, got, st.name) {
			t.Errorf("%s: got a token handed out before", st.name)
		}
		if st.same != "" && got != seen[st.same] {
			t.Errorf("%s: got another token than step %q", st.name, st.same)
		}
	}
}

// handedOutBefore reports whether a step other than name got tok.
func handedOutBefore(seen map[string]string, tok, name string) bool {
	for step, v := range seen {
		if step != name && v == tok {
			return true
		}
	}
	return false
}

// TestCloneTokenCacheDropsExpired checks that the cache does not keep
// every repository it ever saw: adding one drops those whose tokens have
// expired.
func TestCloneTokenCacheDropsExpired(t *testing.T) {
	s := githubtest.NewServer(t)
	c, clk := newClockedAppClient(t, s)
	get := func(name string) {
		t.Helper()
		if _, err := c.CloneToken(t.Context(), 7, owner, name); err != nil {
			t.Fatal(err)
		}
	}

	get("a")
	get("b")
	if n := github.CachedCloneTokens(c); n != 2 {
		t.Fatalf("%d tokens cached, want 2", n)
	}
	clk.advance(time.Hour + time.Minute)
	get("c")
	if n := github.CachedCloneTokens(c); n != 1 {
		t.Errorf("%d tokens cached after the others expired, want 1", n)
	}
}

// TestCloneTokenNearExpiryIsNotReused checks that tokens GitHub makes
// shorter-lived than CloneTokenReuse are never handed out twice.
func TestCloneTokenNearExpiryIsNotReused(t *testing.T) {
	s := githubtest.NewServer(t)
	s.SetTokenTTL(github.CloneTokenReuse - time.Minute)
	c := newAppClient(t, s)

	first, err := c.CloneToken(t.Context(), 7, owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.CloneToken(t.Context(), 7, owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	if first.Value.Reveal() == second.Value.Reveal() || mints(s) != 2 {
		t.Errorf("%d mints, same token %v; want a new token each time",
			mints(s), first.Value.Reveal() == second.Value.Reveal())
	}
}

// TestCloneTokenFailureIsNotCached checks that a failed mint leaves
// nothing behind: the next call asks GitHub again.
func TestCloneTokenFailureIsNotCached(t *testing.T) {
	s := githubtest.NewServer(t)
	c := newAppClient(t, s)
	s.Fail(1, githubtest.Failure{Endpoint: githubtest.EndpointCreateInstallationToken,
		Status: http.StatusUnauthorized})

	if _, err := c.CloneToken(t.Context(), 7, owner, repo); err == nil {
		t.Fatal("CloneToken() succeeded while GitHub refused")
	}
	tok, err := c.CloneToken(t.Context(), 7, owner, repo)
	if err != nil || len(tok.Value) == 0 {
		t.Fatalf("CloneToken() after the failure = %v", err)
	}
	if n := mints(s); n != 2 {
		t.Errorf("%d requests for tokens, want the failed one and one more", n)
	}
}

// TestCloneTokenCallerCannotChangeCache checks that each caller gets its
// own copy of a cached token.
func TestCloneTokenCallerCannotChangeCache(t *testing.T) {
	s := githubtest.NewServer(t)
	c := newAppClient(t, s)

	tok, err := c.CloneToken(t.Context(), 7, owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	want := tok.Value.Reveal()
	tok.Value[0] = 'X'
	again, err := c.CloneToken(t.Context(), 7, owner, repo)
	if err != nil || again.Value.Reveal() != want {
		t.Errorf("the cached token changed with a caller's copy")
	}
}

// gate holds requests for installation tokens until it is opened, and
// counts them.
type gate struct {
	next    http.RoundTripper
	entered atomic.Int32
	open    chan struct{}
}

func newGate() *gate {
	return &gate{next: http.DefaultTransport.(*http.Transport).Clone(), open: make(chan struct{})}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/access_tokens") {
		g.entered.Add(1)
		select {
		case <-g.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return g.next.RoundTrip(r)
}

// waitEntered waits until n requests have reached g.
func (g *gate) waitEntered(t *testing.T, n int32) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); g.entered.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d token requests reached GitHub, want %d", g.entered.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCloneTokenConcurrentCallersMintOnce asks for two repositories' tokens
// from many goroutines while GitHub is slow to answer: each repository's
// token is minted once, and every caller gets it. Run it with -race.
func TestCloneTokenConcurrentCallersMintOnce(t *testing.T) {
	s := githubtest.NewServer(t)
	g := newGate()
	c := newAppClient(t, s, func(o *github.Options) { o.Transport = g })
	const callers = 20

	got := make([]string, 2*callers)
	var wg sync.WaitGroup
	ask := func(i int, name string) {
		defer wg.Done()
		tok, err := c.CloneToken(t.Context(), 7, owner, name)
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
			return
		}
		got[i] = tok.Value.Reveal()
	}
	wg.Add(2)
	go ask(0, repo)
	go ask(callers, "other")
	g.waitEntered(t, 2)
	for i := 1; i < callers; i++ {
		wg.Add(2)
		go ask(i, repo)
		go ask(callers+i, "other")
	}
	// Give the late callers time to reach GitHub, which they must not.
	time.Sleep(100 * time.Millisecond)
	if n := g.entered.Load(); n != 2 {
		t.Errorf("%d token requests in flight, want one per repository", n)
	}
	close(g.open)
	wg.Wait()

	if n := mints(s); n != 2 {
		t.Errorf("%d tokens minted, want 2", n)
	}
	for i := range got {
		first := got[i/callers*callers]
		if got[i] != first || got[i] == "" {
			t.Fatalf("caller %d got another token than the first caller of its repository", i)
		}
	}
	if got[0] == got[callers] {
		t.Error("two repositories share a token")
	}
}

// TestCloneTokenWaiterGivesUp checks that a caller waiting for another's
// mint stops when its own context ends, and does not mint.
func TestCloneTokenWaiterGivesUp(t *testing.T) {
	s := githubtest.NewServer(t)
	g := newGate()
	c := newAppClient(t, s, func(o *github.Options) { o.Transport = g })

	done := make(chan error, 1)
	go func() {
		_, err := c.CloneToken(t.Context(), 7, owner, repo)
		done <- err
	}()
	g.waitEntered(t, 1)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.CloneToken(ctx, 7, owner, repo)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting caller got %v, want its deadline", err)
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Errorf("first caller: %v", err)
	}
	if n := g.entered.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}
