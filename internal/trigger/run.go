package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// Run is one job of the repository's config, to be run for one event.
type Run struct {
	Event Event
	Job   repoconfig.Job
	// Attempt starts at 1; a retry asked for by a user gets the next one,
	// and with it a new name.
	Attempt int
	// Parallel is the repository config's limit on its runs at once;
	// zero when it sets none. It does not change the run's identity.
	Parallel int
}

// maxJobPart bounds the readable part of a run's name so that the whole
// name stays a valid label value (63 characters) once Kubernetes appends
// its own suffixes to pod names.
const maxJobPart = 24

// Name returns the run's Kubernetes name. It depends only on the
// repository, commit, job, event kind and attempt, so two deliveries of
// the same push (or two replicas handling it) name the same Job and the
// second create fails with AlreadyExists instead of running twice.
func (r Run) Name() string {
	h := sha256.New()
	for _, part := range []string{
		r.Event.Repo.FullName(), r.Event.SHA, r.Job.Name,
		string(r.Event.Kind), strconv.Itoa(r.Attempt),
	} {
		h.Write([]byte(part))
		h.Write([]byte{0}) // separator: "a"+"bc" must differ from "ab"+"c"
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]

	job := strings.Trim(r.Job.Name, "-")
	if len(job) > maxJobPart {
		job = strings.TrimRight(job[:maxJobPart], "-")
	}

	return "yaci-" + job + "-" + sum
}

// StatusContext returns the commit status context the run reports on:
// "yaci/push/<job>" or "yaci/pr/<job>". A push and a pull request on the
// same commit report separately, as users see them separately.
func (r Run) StatusContext() string {
	kind := "push"
	if r.Event.Kind == repoconfig.EventPullRequest {
		kind = "pr"
	}

	return "yaci/" + kind + "/" + r.Job.Name
}
