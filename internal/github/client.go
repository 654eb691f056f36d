// Package github is yaci's client for GitHub's REST API. It reads a
// repository's configuration file, posts commit statuses and mints the
// short-lived tokens a Job clones with, reusing each while it has long
// enough to live, authenticated either with a plain token or as a GitHub
// App installation.
//
// Every call has its own deadline and is retried by what GitHub's answer
// means, told apart by go-github's typed errors: server errors, rate limits
// and network failures are retried, other client errors are not. An error
// the client gave up on says, through IsPermanent and RetryAfter, whether
// trying again later could help.
package github

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v62/github"
	ghv88 "github.com/google/go-github/v88/github"
)

// Defaults applied by New to the zero values of Options.
const (
	DefaultBaseURL     = "https://api.github.com/"
	DefaultTimeout     = 10 * time.Second
	DefaultMaxFileSize = 64 << 10
	DefaultCacheSize   = 256
)

// userAgent names yaci to GitHub, which asks every client to send one.
const userAgent = "yaci"

// ErrNoInstallation is returned by calls made with App authentication but
// without an installation id: an App can only act through an installation.
var ErrNoInstallation = errors.New("github: no installation id for app authentication")

// Options configure a Client. Exactly one of Token or AppID with AppKey
// must be set.
type Options struct {
	// BaseURL is the API root: DefaultBaseURL for github.com, or
	// "https://HOST/api/v3/" for GitHub Enterprise Server.
	BaseURL string
	// Token authenticates every call with a personal or fine-grained
	// access token.
	Token Secret
	// AppID and AppKey, the App's PEM private key, authenticate as a
	// GitHub App; calls then act through the installation id they name.
	AppID  int64
	AppKey Secret
	// Timeout bounds each HTTP request, token refreshes included; retries
	// each get a fresh one. Zero means DefaultTimeout.
	Timeout time.Duration
	// Retry says how often and how long a failed call is tried again.
	Retry RetryPolicy
	// MaxFileSize is the largest file ReadFile returns; zero means
	// DefaultMaxFileSize, the configuration parser's own limit.
	MaxFileSize int64
	// CacheSize is how many files ReadFile keeps, with their ETags, to ask
	// GitHub whether they changed. Zero means DefaultCacheSize; negative
	// turns the cache off.
	CacheSize int
	// Logger receives retries at Warn and each request at Debug; nil
	// means slog.Default().
	Logger *slog.Logger
	// Transport is the base transport every request goes through, shared by
	// all installations; nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Observe, when set, is called after every HTTP request the client
	// makes, token refreshes included. It is the seam for metrics.
	Observe func(Observation)
}

// Validate reports whether the options can make a client. It checks their
// shape only; New also parses the App key.
func (o Options) Validate() error {
	token, app := len(o.Token) > 0, o.AppID != 0 || len(o.AppKey) > 0
	switch {
	case token && app:
		return errors.New("github options: set a token or an app, not both")
	case !token && !app:
		return errors.New("github options: set a token or an app id and key")
	case app && o.AppID <= 0:
		return errors.New("github options: app id must be positive")
	case app && len(o.AppKey) == 0:
		return errors.New("github options: app key is missing")
	}

	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil {
			return fmt.Errorf("github options: base url: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("github options: base url %q is not an http(s) url", o.BaseURL)
		}
	}
	if o.Timeout < 0 || o.MaxFileSize < 0 {
		return errors.New("github options: timeout and max file size must not be negative")
	}

	return o.Retry.validate()
}

// LogValue lets options be logged: it names the kind of authentication and
// leaves out the credentials.
func (o Options) LogValue() slog.Value {
	auth := slog.String("auth", "token")
	if o.AppID != 0 {
		auth = slog.Group("auth", slog.String("kind", "app"), slog.Int64("app_id", o.AppID))
	}
	return slog.GroupValue(slog.String("base_url", o.BaseURL), auth,
		slog.Duration("timeout", o.Timeout))
}

// Client calls GitHub's REST API for yaci. It is safe for concurrent use.
type Client struct {
	opts    Options
	baseURL *url.URL
	log     *slog.Logger
	// base is the shared transport, wrapped to observe every request.
	base http.RoundTripper

	// token is set with token authentication, and then api serves every
	// call; with App authentication apps and appAPI act as the App itself,
	// and installations holds one client per installation id.
	token  Secret
	api    *gh.Client
	key    *rsa.PrivateKey
	apps   *ghinstallation.AppsTransport
	appAPI *gh.Client

	mu            sync.Mutex
	installations map[int64]*gh.Client // guarded by mu

	cache  *fileCache
	clones *cloneCache
	// now is the clock clone tokens' remaining life is measured by;
	// tests set it to see tokens age.
	now func() time.Time
}

// New returns a client for the options, after checking them and parsing
// the App key. It makes no request.
func New(o Options) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()

	baseURL, err := url.Parse(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("github options: base url: %w", err)
	}
	if !strings.HasSuffix(baseURL.Path, "/") {
		baseURL.Path += "/"
	}

	c := &Client{
		opts:          o,
		baseURL:       baseURL,
		log:           o.Logger,
		base:          &observer{next: o.Transport, base: baseURL, observe: o.Observe, log: o.Logger},
		installations: make(map[int64]*gh.Client),
		cache:         newFileCache(o.CacheSize),
		clones:        newCloneCache(),
		now:           time.Now,
	}
	if len(o.Token) > 0 {
		c.token = o.Token
		c.api = c.newAPI(&http.Client{Transport: c.base}).WithAuthToken(o.Token.Reveal())
		return c, nil
	}

	// The parse error names no key material, but say nothing of it anyway.
	c.key, err = jwt.ParseRSAPrivateKeyFromPEM(o.AppKey)
	if err != nil {
		return nil, errors.New("github options: app key is not an RSA private key in PEM form")
	}
	c.apps = ghinstallation.NewAppsTransportFromPrivateKey(c.base, o.AppID, c.key)
	c.apps.BaseURL = strings.TrimSuffix(baseURL.String(), "/")
	c.appAPI = c.newAPI(&http.Client{Transport: c.apps})

	return c, nil
}

// withDefaults fills in the zero values New replaces.
func (o Options) withDefaults() Options {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxFileSize == 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	o.Retry = o.Retry.withDefaults()

	return o
}

// newAPI returns a go-github client on hc that talks to the configured
// base URL.
func (c *Client) newAPI(hc *http.Client) *gh.Client {
	api := gh.NewClient(hc)
	u := *c.baseURL
	api.BaseURL = &u
	api.UserAgent = userAgent

	return api
}

// Check reports whether the client's credentials can be used, without a
// network call, for a readiness probe. With a token it checks one is
// loaded. With an App it checks the private key is a valid RSA key and
// signs a JWT with it, as every App call does; whether GitHub accepts the
// App is only known on the first call.
func (c *Client) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.key == nil {
		if len(c.token) == 0 {
			return errors.New("github check: no token loaded")
		}
		return nil
	}

	if err := c.key.Validate(); err != nil {
		return fmt.Errorf("github check: app key: %w", err)
	}
	now := time.Now()
	claims := &jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		Issuer:    strconv.FormatInt(c.opts.AppID, 10),
	}
	if _, err := ghinstallation.NewRSASigner(jwt.SigningMethodRS256, c.key).Sign(claims); err != nil {
		return fmt.Errorf("github check: sign app jwt: %w", err)
	}

	return nil
}

// installation returns the API client that acts for installation inst.
// With a token every installation shares one client. With an App each
// installation gets its own ghinstallation transport, created on first use
// and kept, so its token is fetched once and refreshed shortly before it
// expires; all of them share the base transport and its connections.
func (c *Client) installation(inst int64) (*gh.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	if inst <= 0 {
		return nil, &permanentError{err: ErrNoInstallation}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if api, ok := c.installations[inst]; ok {
		return api, nil
	}

	// Each installation gets its own AppsTransport because a refresh writes
	// to the one it was made from; the key and base transport are shared.
	atr := ghinstallation.NewAppsTransportFromPrivateKey(c.base, c.opts.AppID, c.key)
	atr.BaseURL = c.apps.BaseURL
	tr := ghinstallation.NewFromAppsTransport(atr, inst)
	// Left nil, ghinstallation sends the JSON body "null", which GitHub's
	// description of the call does not allow; an empty object asks for the
	// installation's full set of repositories and permissions.
	tr.InstallationTokenOptions = &ghv88.InstallationTokenOptions{}
	api := c.newAPI(&http.Client{Transport: tr})
	c.installations[inst] = api

	return api, nil
}
