package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/logctx"
	"github.com/yaci-ci/yaci/internal/logs"
	"github.com/yaci-ci/yaci/internal/metrics"
	"github.com/yaci-ci/yaci/internal/server"
	"github.com/yaci-ci/yaci/internal/webhook"
)

// shutdownGrace is how long in-flight requests and accepted deliveries
// get after SIGTERM; Kubernetes waits 30 s before it kills a pod.
const shutdownGrace = 25 * time.Second

func serve(args []string, stderr io.Writer) error {
	var o serveOptions
	fs := flag.NewFlagSet("yaci serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.bind(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if err := applyEnv(fs, serveEnv, os.Getenv); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}

	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	// client-go logs through klog; send it to the same handler.
	klog.SetSlogLogger(log)

	srv, err := build(o, log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	return runServer(ctx, o.Listen, srv, log)
}

// build reads the secrets and wires yaci's parts.
func build(o serveOptions, log *slog.Logger) (*server.Server, error) {
	secret, err := github.ReadSecret(o.WebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}

	m := metrics.New()
	gopts := github.Options{BaseURL: o.GitHubAPIURL, Logger: log, Observe: m.ObserveGitHub}
	if o.GitHubTokenFile != "" {
		if gopts.Token, err = github.ReadSecret(o.GitHubTokenFile); err != nil {
			return nil, fmt.Errorf("github token: %w", err)
		}
	} else {
		gopts.AppID = o.GitHubAppID
		if gopts.AppKey, err = github.ReadSecret(o.GitHubAppKeyFile); err != nil {
			return nil, fmt.Errorf("github app key: %w", err)
		}
	}
	gh, err := github.New(gopts)
	if err != nil {
		return nil, err
	}

	restCfg, namespace, err := kubeConfig(o)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}

	if o.PublicURL == "" {
		log.Warn("no --public-url: statuses will carry no Details link")
	}
	signer, store, apiToken, err := runPages(o, secret, log)
	if err != nil {
		return nil, err
	}
	log.Info("starting", "version", versionString(), "listen", o.Listen, "namespace", namespace,
		"github", o.GitHubAPIURL, "app_id", o.GitHubAppID)

	return server.New(server.Config{
		WebhookSecret: secret,
		GitHub:        gh,
		Kube:          kube,
		Launch: launch.Options{
			Namespace:      namespace,
			CloneImage:     o.CloneImage,
			DefaultTimeout: o.DefaultTimeout,
			MaxTimeout:     o.MaxTimeout,
		},
		PublicURL:  o.PublicURL,
		Signer:     signer,
		Store:      store,
		APIToken:   apiToken,
		StuckAfter: o.StuckAfter,
		MaxRunning: o.MaxRunning,
		MaxPerRepo: o.MaxPerRepo,
		LeaderElection: func() server.LeaderElection {
			if !o.LeaderElect {
				return server.LeaderElection{}
			}
			return server.LeaderElection{Lease: o.LeaderLease}
		}(),
		Intake: webhook.Options{QueueSize: o.QueueSize, Workers: o.Workers},
		Logger: log,
	})
}

// runPages sets up what run pages need: the key that signs their links,
// the log archive, and the API token.
func runPages(o serveOptions, webhookSecret github.Secret, log *slog.Logger) (*logs.Signer, logs.Store, string, error) {
	var key []byte
	if o.LinkKeyFile != "" {
		k, err := github.ReadSecret(o.LinkKeyFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("link key: %w", err)
		}
		key = k
	} else {
		// Replicas share the webhook secret, so a key derived from it
		// signs the same links on each, without one more secret to
		// manage; the label keeps the two uses apart.
		mac := hmac.New(sha256.New, webhookSecret)
		mac.Write([]byte("yaci run links v1"))
		key = mac.Sum(nil)
	}
	signer, err := logs.NewSigner(key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("link key: %w", err)
	}

	store, err := archive(o, log)
	if err != nil {
		return nil, nil, "", err
	}

	var apiToken string
	if o.APITokenFile != "" {
		tok, err := github.ReadSecret(o.APITokenFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("api token: %w", err)
		}
		apiToken = tok.Reveal()
	}

	return signer, store, apiToken, nil
}

// archive opens the log store the options choose.
func archive(o serveOptions, log *slog.Logger) (logs.Store, error) {
	if o.Archive == "s3" {
		so := logs.S3Options{
			Endpoint: o.S3Endpoint, Region: o.S3Region, Bucket: o.S3Bucket,
			Prefix: o.S3Prefix, PathStyle: o.S3PathStyle, Logger: log,
		}
		if o.S3AccessKeyFile != "" {
			ak, err := github.ReadSecret(o.S3AccessKeyFile)
			if err != nil {
				return nil, fmt.Errorf("s3 access key: %w", err)
			}
			sk, err := github.ReadSecret(o.S3SecretKeyFile)
			if err != nil {
				return nil, fmt.Errorf("s3 secret key: %w", err)
			}
			so.AccessKey, so.SecretKey = ak, sk
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		store, err := logs.NewS3Store(ctx, so)
		if err != nil {
			return nil, fmt.Errorf("log archive: %w", err)
		}
		return store, nil
	}

	dir := o.DataDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "yaci-data")
		log.Warn("no --data-dir: logs are archived in a temporary folder and lost on restart", "dir", dir)
	}
	store, err := logs.NewDirStore(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("log archive: %w", err)
	}

	return store, nil
}

// kubeConfig loads the kubeconfig named by the options, or the in-cluster
// config, and settles the namespace Jobs go to.
func kubeConfig(o serveOptions) (*rest.Config, string, error) {
	if o.Kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("no --kubeconfig and not running in a cluster: %w", err)
		}
		ns := o.Namespace
		if ns == "" {
			ns = strings.TrimSpace(readNamespaceFile())
		}
		if ns == "" {
			return nil, "", errors.New("--namespace is required: the pod's namespace is unknown")
		}
		return cfg, ns, nil
	}

	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig}, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig %s: %w", o.Kubeconfig, err)
	}
	ns := o.Namespace
	if ns == "" {
		if ns, _, err = loader.Namespace(); err != nil {
			return nil, "", fmt.Errorf("namespace from kubeconfig %s: %w", o.Kubeconfig, err)
		}
	}

	return cfg, ns, nil
}

// runServer serves until ctx ends, then stops taking requests and lets
// the deliveries already accepted finish before returning.
func runServer(ctx context.Context, listen string, srv *server.Server, log *slog.Logger) error {
	hs := &http.Server{
		Addr:    listen,
		Handler: srv,
		// Slow clients must not hold connections open: GitHub sends a
		// delivery in one go. No WriteTimeout: log pages stream.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	workDone := make(chan error, 1)
	go func() { workDone <- srv.Run(workCtx) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.ListenAndServe() }()
	log.Info("serving", "listen", listen)

	select {
	case err := <-serveErr:
		stopWork()
		<-workDone
		return fmt.Errorf("listen on %s: %w", listen, err)
	case <-ctx.Done():
	}

	log.Info("shutting down: no new webhooks, finishing accepted deliveries")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopWork()
	if err := <-workDone; err != nil {
		return fmt.Errorf("finish accepted deliveries: %w", err)
	}
	log.Info("stopped")

	return nil
}

func newLogger(o serveOptions, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(o.LogLevel)
	if err != nil {
		return nil, err
	}
	hopts := &slog.HandlerOptions{Level: level}

	format := o.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	var h slog.Handler = slog.NewJSONHandler(w, hopts)
	if format == "text" {
		h = slog.NewTextHandler(w, hopts)
	}

	// Every line logged for one delivery names it, whichever part wrote it.
	return slog.New(logctx.Handler(h)), nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}

	return l, nil
}
