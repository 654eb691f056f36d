package repoconfig

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Limits on a .yaci.yml. They bound the work one push can cause and keep
// job names usable inside Kubernetes names and labels.
const (
	// MaxFileSize is the largest file Parse reads, in bytes. A real CI
	// config is a few hundred bytes; the cap bounds parsing time for a
	// file fetched from any repository that installs the app.
	MaxFileSize = 64 << 10

	// MaxJobs is the most jobs one file may define, so one push cannot
	// ask for an unbounded number of Kubernetes Jobs.
	MaxJobs = 32

	// MaxNameLength is the longest job name. The name becomes part of a
	// Kubernetes object name (at most 63 characters) next to a hash.
	MaxNameLength = 40

	// MaxParallel is the largest value of the parallel key. The server's
	// own per-repository limit caps it in any case; the bound only keeps
	// the number sensible.
	MaxParallel = 1000

	// MaxDepth is the deepest nesting of YAML collections accepted. The
	// schema needs five levels; the bound keeps a hostile file from
	// making validation recurse deeply.
	MaxDepth = 16
)

// maxTimeout is the longest timeout the file itself may state. It is a
// sanity bound on what a user wrote, not policy: the server applies its
// own, usually lower, cap.
const maxTimeout = 24 * time.Hour

var (
	// dnsLabel is RFC 1123's label, the shape Kubernetes wants in names
	// and label values.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// envName is what a POSIX shell accepts as a variable name.
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// The keys each level of the file accepts, in the order the
// documentation lists them; suggestions prefer the earlier key on a tie.
var (
	rootKeys = []string{"jobs", "parallel"}
	jobKeys  = []string{
		"name", "image", "run", "env", "timeout", "on", "branches", "resources",
	}
	resourceKeys  = []string{"cpu", "memory"}
	eventKeywords = []string{string(EventPush), string(EventPullRequest)}
)

// defaultOn is the events a job runs on when the file does not say.
var defaultOn = []EventKind{EventPush, EventPullRequest}

// The check functions below hold each rule once, for Parse (which adds
// positions) and Config.Validate (which adds the job). Each returns ""
// when the value is fine, or a lowercase message naming the key and the
// value.

func checkName(name string) string {
	switch {
	case name == "":
		return "name must not be empty"
	case len(name) > MaxNameLength:
		return fmt.Sprintf("name %s is %d characters long; at most %d are allowed",
			quote(name), len(name), MaxNameLength)
	case !dnsLabel.MatchString(name):
		return fmt.Sprintf("name %s is not a DNS label: use lowercase letters, digits "+
			"and '-', starting and ending with a letter or digit", quote(name))
	}

	return ""
}

func checkImage(image string) string {
	switch {
	case image == "":
		return "image must not be empty"
	case strings.IndexFunc(image, unicode.IsSpace) >= 0:
		return fmt.Sprintf("image %s must not contain whitespace", quote(image))
	}

	return ""
}

func checkRun(run string) string {
	if strings.TrimSpace(run) == "" {
		return "run must not be empty"
	}

	return ""
}

// ReservedEnv reports whether yaci sets the environment variable name
// itself in every job (CI, HOME, YACI and the YACI_ variables), so that a
// job's config may not.
func ReservedEnv(name string) bool {
	return name == "CI" || name == "HOME" || name == "YACI" || strings.HasPrefix(name, "YACI_")
}

func checkEnvName(name string) string {
	switch {
	case !envName.MatchString(name):
		return fmt.Sprintf("env name %s is not valid: use letters, digits and '_', "+
			"not starting with a digit", quote(name))
	case strings.HasPrefix(name, "YACI_"):
		return fmt.Sprintf("env name %s is reserved: yaci sets the YACI_ variables",
			quote(name))
	case ReservedEnv(name):
		return fmt.Sprintf("env name %s is reserved: yaci sets it", quote(name))
	}

	return ""
}

// parseParallel reads the parallel key: a whole number from 1 to
// MaxParallel.
func parseParallel(text string) (int, string) {
	n, err := strconv.Atoi(text)
	if err != nil || n < 1 || n > MaxParallel {
		return 0, fmt.Sprintf("parallel must be a whole number from 1 to %d, got %s",
			MaxParallel, quote(text))
	}

	return n, ""
}

// parseTimeout reads a timeout as the file writes it ("20m", "1h30m").
func parseTimeout(text string) (time.Duration, string) {
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Sprintf("timeout %s is not a duration like 90s, 20m or 1h30m",
			quote(text))
	}
	if msg := checkTimeout(d, text); msg != "" {
		return 0, msg
	}

	return d, ""
}

func checkTimeout(d time.Duration, text string) string {
	switch {
	case d <= 0:
		return fmt.Sprintf("timeout %s must be positive", quote(text))
	case d > maxTimeout:
		return fmt.Sprintf("timeout %s is longer than 24h", quote(text))
	}

	return ""
}

func checkEvent(word string) string {
	switch EventKind(word) {
	case EventPush, EventPullRequest:
		return ""
	}

	return fmt.Sprintf("on: unknown event %s; want push or pull_request%s",
		quote(word), didYouMean(word, eventKeywords))
}

func checkBranch(pattern string) string {
	if pattern == "" {
		return "branches: pattern must not be empty"
	}
	// path.Match checks the whole pattern's syntax even when the name
	// does not match, so matching against "" is a full validity check.
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Sprintf("branches: pattern %s is not a valid glob "+
			"(path.Match syntax: *, ?, [a-z], \\ escapes)", quote(pattern))
	}

	return ""
}

// checkQuantity checks one of the resources values. example is shown to
// a user who wrote something unparsable.
func checkQuantity(key, text, example string) string {
	q, err := resource.ParseQuantity(text)
	if err != nil {
		return fmt.Sprintf("resources: %s %s is not a Kubernetes quantity like %s",
			key, quote(text), example)
	}
	if q.Sign() <= 0 {
		return fmt.Sprintf("resources: %s %s must be positive", key, quote(text))
	}

	return ""
}

// quantityExample is what checkQuantity shows for each resources key.
var quantityExample = map[string]string{
	"cpu":    "500m or 2",
	"memory": "512Mi or 2Gi",
}

// checkBranchesNeedPush catches a job that filters branches but never
// runs on push, where the filter would silently do nothing: pull requests
// are not filtered by branch.
func checkBranchesNeedPush(on []EventKind, branches []string) string {
	if len(branches) == 0 {
		return ""
	}
	for _, kind := range on {
		if kind == EventPush {
			return ""
		}
	}

	return "branches filters push events only, but on does not include push"
}
