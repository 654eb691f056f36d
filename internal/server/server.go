// Package server assembles yaci's parts into one HTTP server: intake on
// /webhook and the dispatcher behind it, the watcher that reports ended
// runs, the run pages and API, and the health endpoints. It holds the
// adapters between parts that, by design, do not know each other.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/logs"
	"github.com/yaci-ci/yaci/internal/metrics"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
	"github.com/yaci-ci/yaci/internal/watch"
	"github.com/yaci-ci/yaci/internal/webhook"
)

// Config is everything New needs. Secrets are passed as values read from
// files by the caller; none of them is ever logged.
type Config struct {
	// WebhookSecret verifies X-Hub-Signature-256; required.
	WebhookSecret []byte
	GitHub        *github.Client
	Kube          kubernetes.Interface
	// Launch says how runs become Jobs; its Namespace is where they go.
	Launch launch.Options
	// PublicURL is yaci's address as users reach it; Details links are
	// made from it and signed with Signer. Empty means statuses carry no
	// link.
	PublicURL string
	// Signer signs run links; required, as pages refuse unsigned ones.
	Signer *logs.Signer
	// Store keeps ended runs' logs and metadata; required.
	Store logs.Store
	// APIToken, when set, lets API clients list runs with
	// "Authorization: Bearer <token>".
	APIToken string
	// StuckAfter is how long a pod may wait for a node before its run is
	// ended as an error; zero means the watcher's default.
	StuckAfter time.Duration
	// MaxRunning and MaxPerRepo limit how many runs run at once, in all
	// and per repository; runs beyond them wait in the queue, which is
	// the cluster's suspended Jobs. Zero means the queue's defaults.
	MaxRunning, MaxPerRepo int
	// TokenMinLeft is how long a queued run's clone token must still have
	// to live when the run starts; one with less is renewed first. Zero
	// means half an hour. Launch hands out tokens with
	// github.CloneTokenReuse left at least; a TokenMinLeft close to that
	// or above it has most queued runs renew their token.
	TokenMinLeft time.Duration
	// LeaderElection, when its Lease is set, lets several replicas share
	// the work: every replica takes webhooks and serves pages, and the
	// elected one watches runs and admits them. Without it this replica
	// does all.
	LeaderElection LeaderElection
	// Metrics, when set, counts what yaci does and serves it on /metrics.
	// The GitHub client reports to it through its own Observe option,
	// which the caller sets.
	Metrics *metrics.Metrics
	// Intake sizes the webhook queue; its Secret and Logger are set from
	// the fields above.
	Intake webhook.Options
	// ReadyChecks are asked by /readyz besides GitHub's credentials, e.g.
	// whether a watcher's caches have synced.
	ReadyChecks []func(context.Context) error
	Logger      *slog.Logger
}

// Server serves yaci's HTTP endpoints and runs the work behind them.
type Server struct {
	intake *webhook.Intake
	// newWatcher and newAdmitter make the leader's parts afresh for each
	// term, so a new term starts from the cluster as it is.
	newWatcher  func(jobs cache.SharedIndexInformer) (*watch.Watcher, error)
	newAdmitter func(jobs cache.SharedIndexInformer) (*queue.Admitter, error)
	// leading and admitting are the running watcher and admitter while
	// this replica leads, else nil.
	leading   atomic.Pointer[watch.Watcher]
	admitting atomic.Pointer[queue.Admitter]
	election  LeaderElection
	metrics   *metrics.Metrics
	kube      kubernetes.Interface
	// namespace holds the Jobs and the election's Lease.
	namespace string
	mux       *http.ServeMux
	checks    []func(context.Context) error
	log       *slog.Logger
}

// New wires intake, dispatcher, GitHub client and launcher together.
func New(cfg Config) (*Server, error) {
	if cfg.GitHub == nil || cfg.Kube == nil || cfg.Signer == nil || cfg.Store == nil {
		return nil, errors.New("server: a GitHub client, a Kubernetes client, " +
			"a link signer and a log store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.TokenMinLeft == 0 {
		cfg.TokenMinLeft = defaultTokenMinLeft
	}
	cfg.Launch.Logger = cfg.Logger
	// Every run waits, suspended, until the admitter gives it its turn.
	cfg.Launch.Suspend = true
	launcher, err := launch.New(cfg.Kube, cfg.Launch)
	if err != nil {
		return nil, err
	}

	var runURL func(string) string
	if cfg.PublicURL != "" {
		runURL = func(name string) string { return cfg.Signer.URL(cfg.PublicURL, name) }
	}

	gh := githubAdapter{cfg.GitHub}
	newWatcher := func(jobs cache.SharedIndexInformer) (*watch.Watcher, error) {
		return watch.New(cfg.Kube, watch.Options{
			Namespace:  cfg.Launch.Namespace,
			Jobs:       jobs,
			Statuses:   gh,
			RunURL:     runURL,
			Archiver:   logs.NewArchiver(cfg.Kube, cfg.Store, logs.ArchiverOptions{Logger: cfg.Logger}),
			StuckAfter: cfg.StuckAfter,
			Logger:     cfg.Logger,
			Permanent:  github.IsPermanent,
			RetryAfter: github.RetryAfter,
			Observe:    cfg.Metrics.ObserveReport,
		})
	}
	newAdmitter := func(jobs cache.SharedIndexInformer) (*queue.Admitter, error) {
		return queue.New(cfg.Kube, queue.Options{
			Namespace:  cfg.Launch.Namespace,
			Jobs:       jobs,
			MaxRunning: cfg.MaxRunning,
			MaxPerRepo: cfg.MaxPerRepo,
			Logger:     cfg.Logger,
			Observe:    cfg.Metrics.ObserveAdmission,
			Prepare: func(ctx context.Context, name string) error {
				return launcher.RenewToken(ctx, name, cfg.TokenMinLeft, gh.minter(cfg.TokenMinLeft))
			},
		})
	}
	// Superseding reads and deletes Jobs through the API server, so every
	// replica can do it with a watcher that never runs.
	superseder, err := newWatcher(nil)
	if err != nil {
		return nil, err
	}
	// The admitter is made anew for each term of leadership; making one
	// now refuses bad queue options at start-up instead of at the first
	// term, which may come much later.
	if _, err := newAdmitter(nil); err != nil {
		return nil, err
	}
	if err := cfg.LeaderElection.validate(); err != nil {
		return nil, err
	}
	dispatcher := &trigger.Dispatcher{
		Configs:    gh,
		Statuses:   gh,
		Tokens:     gh,
		Launcher:   launcherAdapter{launcher, cfg.Metrics, cfg.Kube, cfg.Launch.Namespace},
		Superseder: superseder,
		RunURL:     runURL,
		Logger:     webhook.LoggerFrom,
	}
	in := cfg.Intake
	in.Secret = cfg.WebhookSecret
	in.Logger = cfg.Logger
	intake, err := webhook.New(in, dispatcher)
	if err != nil {
		return nil, err
	}

	s := &Server{
		intake:      intake,
		newWatcher:  newWatcher,
		newAdmitter: newAdmitter,
		election:    cfg.LeaderElection,
		metrics:     cfg.Metrics,
		kube:        cfg.Kube,
		namespace:   cfg.Launch.Namespace,
		mux:         http.NewServeMux(),
		log:         cfg.Logger,
	}
	s.checks = append([]func(context.Context) error{cfg.GitHub.Check, s.synced}, cfg.ReadyChecks...)
	// Only the leader's admitter knows the queue; followers report 0.
	cfg.Metrics.SetQueueDepthFunc(func() float64 {
		a := s.admitting.Load()
		if a == nil {
			return 0
		}
		n, _ := a.Queued()
		return float64(n)
	})
	s.mux.Handle("/webhook", cfg.Metrics.Webhook(intake))
	s.mux.Handle("GET /metrics", cfg.Metrics.Handler())
	pages := logs.NewHandler(cfg.Kube, cfg.Launch.Namespace, cfg.Store, cfg.Signer,
		cfg.APIToken, cfg.Logger)
	pages.Mount(s.mux)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)

	return s, nil
}

// Handle mounts h on pattern, for parts that serve pages of their own.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves all of yaci's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run does the work accepted webhooks ask for until ctx ends, then
// finishes what was already accepted before returning. Meanwhile it leads,
// or takes part in the election of the replica that leads: the leader
// watches runs end, reports them, and admits queued runs.
func (s *Server) Run(ctx context.Context) error {
	led := make(chan error, 1)
	go func() {
		if s.election.Lease == "" {
			led <- s.lead(ctx)
			return
		}
		led <- s.elect(ctx)
	}()

	err := s.intake.Run(ctx)
	if lerr := <-led; lerr != nil && !errors.Is(lerr, context.Canceled) {
		err = errors.Join(err, lerr)
	}

	return err
}

// lead runs a fresh watcher and admitter until ctx ends. They share one
// cache of the runs' Jobs, so the leader holds each Job once.
func (s *Server) lead(ctx context.Context) error {
	jobs := launch.NewJobInformer(s.kube, s.namespace)
	watcher, err := s.newWatcher(jobs)
	if err != nil {
		return err
	}
	admitter, err := s.newAdmitter(jobs)
	if err != nil {
		return err
	}
	// The informer stops with ctx, and is waited for before lead returns.
	var informer sync.WaitGroup
	defer informer.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	informer.Go(func() { jobs.RunWithContext(ctx) })
	s.leading.Store(watcher)
	s.admitting.Store(admitter)
	s.metrics.SetLeader(true)
	defer func() {
		s.leading.Store(nil)
		s.admitting.Store(nil)
		s.metrics.SetLeader(false)
	}()

	admitted := make(chan error, 1)
	go func() { admitted <- admitter.Run(ctx) }()

	err = watcher.Run(ctx)
	if err != nil {
		err = fmt.Errorf("watcher: %w", err)
	}
	if aerr := <-admitted; aerr != nil {
		err = errors.Join(err, fmt.Errorf("admitter: %w", aerr))
	}

	return err
}

// synced is ready when this replica does not lead, as followers only take
// webhooks, or when the leader's watcher has synced its caches.
func (s *Server) synced(context.Context) error {
	w := s.leading.Load()
	if w == nil && s.election.Lease == "" {
		return errors.New("watcher not started")
	}
	if w != nil && !w.HasSynced() {
		return errors.New("watcher caches not synced")
	}

	return nil
}

// readyz answers 200 only when every check passes, so a load balancer
// sends no webhook to a replica that could not act on it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()

	for _, check := range s.checks {
		if err := check(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// githubAdapter gives the dispatcher the views of yaci's GitHub client it
// declares, translating types and the not-found error.
type githubAdapter struct{ c *github.Client }

func (a githubAdapter) ReadFile(ctx context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	data, err := a.c.ReadFile(ctx, inst, owner, repo, path, ref)
	switch {
	case errors.Is(err, github.ErrNotFound):
		return nil, fmt.Errorf("%w: %w", trigger.ErrConfigNotFound, err)
	case errors.Is(err, github.ErrTooLarge):
		reason := fmt.Sprintf("file is larger than %d KiB", repoconfig.MaxFileSize/1024)
		return nil, fmt.Errorf("%w: %w", &trigger.UnusableConfigError{Reason: reason}, err)
	case errors.Is(err, github.ErrNotFile):
		return nil, fmt.Errorf("%w: %w", &trigger.UnusableConfigError{Reason: "not a regular file"}, err)
	}

	return data, err
}

func (a githubAdapter) SetStatus(ctx context.Context, inst int64, owner, repo, sha string, s trigger.Status) error {
	return a.c.SetStatus(ctx, inst, owner, repo, sha, github.Status{
		State: string(s.State), Context: s.Context, Description: s.Description, TargetURL: s.TargetURL,
	})
}

func (a githubAdapter) CloneToken(ctx context.Context, inst int64, owner, repo string) (trigger.Token, error) {
	return triggerToken(a.c.CloneToken(ctx, inst, owner, repo))
}

// triggerToken turns the GitHub client's token into the dispatcher's.
// Its value is revealed because the launcher writes it into the clone
// Secret; trigger.Token still redacts it when printed or logged.
func triggerToken(tok github.Token, err error) (trigger.Token, error) {
	if err != nil {
		return trigger.Token{}, err
	}

	return trigger.Token{Value: tok.Value.Reveal(), ExpiresAt: tok.ExpiresAt}, nil
}

// defaultTokenMinLeft leaves a queued run's clone step half an hour of
// token, as renewing every token older than half an hour of its hour did
// before tokens were reused.
const defaultTokenMinLeft = 30 * time.Minute

// minter returns how RenewToken gets a new clone token for the run info
// describes: one that has minLeft to live, which may be one the client
// minted earlier.
func (a githubAdapter) minter(minLeft time.Duration) func(context.Context, launch.RunInfo) (trigger.Token, error) {
	return func(ctx context.Context, info launch.RunInfo) (trigger.Token, error) {
		return triggerToken(a.c.CloneTokenLasting(ctx, info.InstallationID,
			info.Repo.Owner, info.Repo.Name, minLeft))
	}
}

type launcherAdapter struct {
	l         *launch.Launcher
	m         *metrics.Metrics
	kube      kubernetes.Interface
	namespace string
}

func (a launcherAdapter) Launch(ctx context.Context, run trigger.Run, tok trigger.Token) (trigger.Launched, error) {
	name, created, err := a.l.Launch(ctx, run, tok)
	if err != nil || !created {
		return trigger.Launched{Name: name, Created: created, Queued: true}, err
	}
	a.m.RunStarted()

	// Runs are created suspended and wait for the admitter. Where the run
	// stands is read from the cluster, so any replica can tell; if that
	// read fails, the status just says queued.
	launched := trigger.Launched{Name: name, Created: true, Queued: true}
	list, lerr := a.kube.BatchV1().Jobs(a.namespace).List(ctx,
		metav1.ListOptions{LabelSelector: launch.Selector})
	if lerr == nil {
		jobs := make([]*batchv1.Job, len(list.Items))
		for i := range list.Items {
			jobs[i] = &list.Items[i]
		}
		launched.Ahead, _ = queue.Ahead(jobs, name)
	}

	return launched, nil
}
