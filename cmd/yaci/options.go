package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/queue"
	"github.com/yaci-ci/yaci/internal/watch"
)

// serveOptions are the settings of "yaci serve". Each is a flag with an
// environment variable as its twin; a flag given on the command line wins.
// Secrets are never option values: options name the files they are in.
type serveOptions struct {
	Listen            string
	WebhookSecretFile string
	GitHubAPIURL      string
	GitHubTokenFile   string
	GitHubAppID       int64
	GitHubAppKeyFile  string
	Kubeconfig        string
	Namespace         string
	PublicURL         string
	DataDir           string
	Archive           string
	S3Endpoint        string
	S3Region          string
	S3Bucket          string
	S3Prefix          string
	S3AccessKeyFile   string
	S3SecretKeyFile   string
	S3PathStyle       bool
	LinkKeyFile       string
	APITokenFile      string
	StuckAfter        time.Duration
	MaxRunning        int
	MaxPerRepo        int
	LeaderElect       bool
	LeaderLease       string
	CloneImage        string
	DefaultTimeout    time.Duration
	MaxTimeout        time.Duration
	QueueSize         int
	Workers           int
	LogFormat         string
	LogLevel          string
}

// flagSpec ties a flag to its environment twin.
type flagSpec struct{ flag, env string }

var serveEnv = []flagSpec{
	{"listen", "YACI_LISTEN"},
	{"webhook-secret-file", "YACI_WEBHOOK_SECRET_FILE"},
	{"github-api-url", "YACI_GITHUB_API_URL"},
	{"github-token-file", "YACI_GITHUB_TOKEN_FILE"},
	{"github-app-id", "YACI_GITHUB_APP_ID"},
	{"github-app-key-file", "YACI_GITHUB_APP_KEY_FILE"},
	{"kubeconfig", "KUBECONFIG"},
	{"namespace", "YACI_NAMESPACE"},
	{"public-url", "YACI_PUBLIC_URL"},
	{"data-dir", "YACI_DATA_DIR"},
	{"archive", "YACI_ARCHIVE"},
	{"s3-endpoint", "YACI_S3_ENDPOINT"},
	{"s3-region", "YACI_S3_REGION"},
	{"s3-bucket", "YACI_S3_BUCKET"},
	{"s3-prefix", "YACI_S3_PREFIX"},
	{"s3-access-key-file", "YACI_S3_ACCESS_KEY_FILE"},
	{"s3-secret-key-file", "YACI_S3_SECRET_KEY_FILE"},
	{"s3-path-style", "YACI_S3_PATH_STYLE"},
	{"link-key-file", "YACI_LINK_KEY_FILE"},
	{"api-token-file", "YACI_API_TOKEN_FILE"},
	{"stuck-after", "YACI_STUCK_AFTER"},
	{"max-running", "YACI_MAX_RUNNING"},
	{"max-per-repo", "YACI_MAX_PER_REPO"},
	{"leader-elect", "YACI_LEADER_ELECT"},
	{"leader-election-lease", "YACI_LEADER_ELECTION_LEASE"},
	{"clone-image", "YACI_CLONE_IMAGE"},
	{"default-timeout", "YACI_DEFAULT_TIMEOUT"},
	{"max-timeout", "YACI_MAX_TIMEOUT"},
	{"queue-size", "YACI_QUEUE_SIZE"},
	{"workers", "YACI_WORKERS"},
	{"log-format", "YACI_LOG_FORMAT"},
	{"log-level", "YACI_LOG_LEVEL"},
}

func (o *serveOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", ":8080",
		"address to serve webhooks, pages and health checks on")
	fs.StringVar(&o.WebhookSecretFile, "webhook-secret-file", "",
		"file holding the webhook secret (required)")
	fs.StringVar(&o.GitHubAPIURL, "github-api-url", github.DefaultBaseURL,
		"GitHub REST API root; GitHub Enterprise Server: https://HOST/api/v3/")
	fs.StringVar(&o.GitHubTokenFile, "github-token-file", "",
		"file holding a GitHub token (token auth)")
	fs.Int64Var(&o.GitHubAppID, "github-app-id", 0,
		"GitHub App id (App auth, with --github-app-key-file)")
	fs.StringVar(&o.GitHubAppKeyFile, "github-app-key-file", "",
		"file holding the GitHub App's PEM private key")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster config when empty")
	fs.StringVar(&o.Namespace, "namespace", "",
		"namespace for Jobs (default: the pod's own namespace, else the kubeconfig's)")
	fs.StringVar(&o.PublicURL, "public-url", "",
		"yaci's public base URL, used in Details links (statuses carry no link when "+
			"empty)")
	fs.StringVar(&o.DataDir, "data-dir", "",
		"folder for the log archive (default: a folder under the system's temporary "+
			"folder, lost on restart)")
	fs.StringVar(&o.Archive, "archive", "dir",
		"where ended runs' logs are kept: dir (--data-dir, one replica) or s3 (shared by "+
			"replicas)")
	fs.StringVar(&o.S3Endpoint, "s3-endpoint", "",
		"S3-compatible endpoint URL; empty means AWS S3 in --s3-region")
	fs.StringVar(&o.S3Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&o.S3Bucket, "s3-bucket", "", "S3 bucket for the log archive (with --archive=s3)")
	fs.StringVar(&o.S3Prefix, "s3-prefix", "yaci", "key prefix in the bucket")
	fs.StringVar(&o.S3AccessKeyFile, "s3-access-key-file", "",
		"file holding the S3 access key id; empty, with no secret key file, uses the AWS "+
			"SDK's own credential chain")
	fs.StringVar(&o.S3SecretKeyFile, "s3-secret-key-file", "",
		"file holding the S3 secret access key")
	fs.BoolVar(&o.S3PathStyle, "s3-path-style", false,
		"address buckets by path (most S3-compatible servers need it)")
	fs.StringVar(&o.LinkKeyFile, "link-key-file", "",
		"file holding the key (at least 32 bytes) that signs Details links; default: "+
			"derived from the webhook secret")
	fs.StringVar(&o.APITokenFile, "api-token-file", "",
		"file holding a bearer token for API clients that list runs")
	fs.DurationVar(&o.StuckAfter, "stuck-after", watch.DefaultStuckAfter,
		"how long a pod may wait for a node before its run ends as an error")
	fs.IntVar(&o.MaxRunning, "max-running", queue.DefaultMaxRunning,
		"most runs running at once; the rest wait, queued fairly across repositories")
	fs.IntVar(&o.MaxPerRepo, "max-per-repo", queue.DefaultMaxPerRepo,
		"most runs of one repository running at once")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false,
		"elect one replica, with a Lease in --namespace, to watch and admit runs (needed "+
			"for more than one replica)")
	fs.StringVar(&o.LeaderLease, "leader-election-lease", "yaci",
		"name of the leader election Lease")
	fs.StringVar(&o.CloneImage, "clone-image", launch.DefaultCloneImage,
		"image with git and sh that clones the commit")
	fs.DurationVar(&o.DefaultTimeout, "default-timeout", launch.DefaultTimeout,
		"timeout of a job whose config sets none")
	fs.DurationVar(&o.MaxTimeout, "max-timeout", launch.DefaultMaxTimeout,
		"longest timeout a job's config may set")
	fs.IntVar(&o.QueueSize, "queue-size", 1000,
		"webhook deliveries held for the workers; when full, deliveries get 503")
	fs.IntVar(&o.Workers, "workers", 4, "deliveries handled at once")
	fs.StringVar(&o.LogFormat, "log-format", "auto",
		"log format: json, text, or auto (text on a terminal, else json)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// applyEnv sets each flag that the command line did not set from its
// environment twin, through the flag's own parser, so a bad value in the
// environment is refused as clearly as a bad flag.
func applyEnv(fs *flag.FlagSet, specs []flagSpec, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	for _, s := range specs {
		v := getenv(s.env)
		if given[s.flag] || v == "" {
			continue
		}
		if err := fs.Set(s.flag, v); err != nil {
			return fmt.Errorf("%s=%q (for --%s): %w", s.env, v, s.flag, err)
		}
	}

	return nil
}

// errOptions marks every problem Validate finds, so main can tell a user
// error from a failure.
var errOptions = errors.New("invalid options")

// Validate checks the options without touching files or the network, and
// reports every problem at once.
func (o serveOptions) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{errOptions}, args...)...))
	}

	if o.WebhookSecretFile == "" {
		add("--webhook-secret-file (YACI_WEBHOOK_SECRET_FILE) is required: yaci refuses to take webhooks it cannot verify")
	}
	if o.Listen == "" {
		add("--listen must not be empty")
	}
	if err := checkURL(o.GitHubAPIURL); err != nil {
		add("--github-api-url: %v", err)
	}
	if o.PublicURL != "" {
		if err := checkURL(o.PublicURL); err != nil {
			add("--public-url: %v", err)
		}
	}

	token := o.GitHubTokenFile != ""
	app := o.GitHubAppID != 0 || o.GitHubAppKeyFile != ""
	switch {
	case token && app:
		add("choose one GitHub authentication: --github-token-file, or --github-app-id with --github-app-key-file")
	case !token && !app:
		add("GitHub authentication is required: --github-token-file, or --github-app-id with --github-app-key-file")
	case app && (o.GitHubAppID <= 0 || o.GitHubAppKeyFile == ""):
		add("App authentication needs both --github-app-id (a positive number) and --github-app-key-file")
	}

	if o.DefaultTimeout <= 0 || o.MaxTimeout <= 0 {
		add("--default-timeout and --max-timeout must be positive")
	} else if o.DefaultTimeout > o.MaxTimeout {
		add("--default-timeout %s is longer than --max-timeout %s", o.DefaultTimeout, o.MaxTimeout)
	}
	if o.MaxRunning <= 0 || o.MaxPerRepo <= 0 {
		add("--max-running and --max-per-repo must be positive")
	}
	switch o.Archive {
	case "dir":
	case "s3":
		if o.S3Bucket == "" {
			add("--archive=s3 needs --s3-bucket")
		}
		if (o.S3AccessKeyFile == "") != (o.S3SecretKeyFile == "") {
			add("--s3-access-key-file and --s3-secret-key-file go together")
		}
		if o.S3Endpoint != "" {
			if err := checkURL(o.S3Endpoint); err != nil {
				add("--s3-endpoint: %v", err)
			}
		}
	default:
		add("--archive %q: want dir or s3", o.Archive)
	}
	if o.LeaderElect && o.LeaderLease == "" {
		add("--leader-elect needs a --leader-election-lease name")
	}
	if o.StuckAfter <= 0 {
		add("--stuck-after must be positive")
	}
	if o.QueueSize <= 0 || o.Workers <= 0 {
		add("--queue-size and --workers must be positive")
	}
	switch o.LogFormat {
	case "auto", "json", "text":
	default:
		add("--log-format %q: want json, text or auto", o.LogFormat)
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		add("--log-level: %v", err)
	}

	return errors.Join(errs...)
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}

	return nil
}

// inClusterNamespace is where Kubernetes tells a pod its namespace.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func readNamespaceFile() string {
	data, err := os.ReadFile(inClusterNamespace)
	if err != nil {
		return ""
	}

	return string(data)
}
