package launch

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults for the zero fields of Options.
const (
	DefaultCloneImage       = "alpine/git:2.47.2"
	DefaultTimeout          = 20 * time.Minute
	DefaultMaxTimeout       = 2 * time.Hour
	DefaultTTLAfterFinished = time.Hour
	DefaultRunAsUser        = 65532
	// DefaultCPU and DefaultMemory are what a job gets when .yaci.yml
	// asks for nothing: enough for a typical build and test of a small
	// project, small enough that a busy cluster fits many of them.
	DefaultCPU    = "500m"
	DefaultMemory = "512Mi"
	// DefaultCallTimeout bounds each call to the API server.
	DefaultCallTimeout = 10 * time.Second
)

// Options say how runs become Jobs. The zero value of every field except
// Namespace means its default.
type Options struct {
	// Namespace is where Jobs and their Secrets are created. Required.
	Namespace string
	// CloneImage is the image of the init container that clones the
	// commit; it needs git and sh.
	CloneImage string
	// DefaultTimeout applies to a job whose config sets none.
	DefaultTimeout time.Duration
	// MaxTimeout caps every job's timeout; a longer one is clamped.
	MaxTimeout time.Duration
	// TTLAfterFinished is how long a finished Job (and with it its pod
	// and Secret) is kept. The watcher archives logs well before that.
	TTLAfterFinished time.Duration
	// RunAsUser is the non-root uid, and also the gid and fsGroup, of
	// both containers.
	RunAsUser int64
	// DefaultCPU and DefaultMemory, in Kubernetes quantity syntax, are
	// the request and limit of a job whose config sets none.
	DefaultCPU    string
	DefaultMemory string
	// Suspend leaves launched Jobs suspended for an admission loop to
	// start. When false, Launch starts each Job itself once its Secret
	// exists.
	Suspend bool
	// CallTimeout bounds each call Launch makes to the API server.
	CallTimeout time.Duration
	// Logger receives one line per launched run; nil means
	// slog.Default().
	Logger *slog.Logger
}

// ErrBadOptions is wrapped by Options.Validate's errors.
var ErrBadOptions = errors.New("launch: bad options")

// Validate reports the first unusable field of o, after defaults.
func (o Options) Validate() error {
	d := o.withDefaults()
	if errs := validation.IsDNS1123Label(d.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s: %w", d.Namespace, errs[0], ErrBadOptions)
	}
	if o.DefaultTimeout < 0 || o.MaxTimeout < 0 || o.TTLAfterFinished < 0 || o.CallTimeout < 0 {
		return fmt.Errorf("timeouts must not be negative: %w", ErrBadOptions)
	}
	if d.DefaultTimeout > d.MaxTimeout {
		return fmt.Errorf("default timeout %s exceeds max timeout %s: %w",
			d.DefaultTimeout, d.MaxTimeout, ErrBadOptions)
	}
	if o.RunAsUser < 0 {
		return fmt.Errorf("run-as user %d: must be a non-root uid: %w", o.RunAsUser, ErrBadOptions)
	}
	for _, q := range []string{d.DefaultCPU, d.DefaultMemory} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("default resource %q: %w", q, errors.Join(err, ErrBadOptions))
		}
	}

	return nil
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.CloneImage == "" {
		o.CloneImage = DefaultCloneImage
	}
	if o.DefaultTimeout == 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	if o.MaxTimeout == 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	if o.TTLAfterFinished == 0 {
		o.TTLAfterFinished = DefaultTTLAfterFinished
	}
	if o.RunAsUser == 0 {
		o.RunAsUser = DefaultRunAsUser
	}
	if o.DefaultCPU == "" {
		o.DefaultCPU = DefaultCPU
	}
	if o.DefaultMemory == "" {
		o.DefaultMemory = DefaultMemory
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	return o
}

// timeout returns the deadline of a job whose config asks for asked.
func (o Options) timeout(asked time.Duration) time.Duration {
	if asked <= 0 {
		return o.DefaultTimeout
	}

	return min(asked, o.MaxTimeout)
}
