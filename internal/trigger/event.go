// Package trigger turns a verified GitHub event and the repository's
// configuration into the runs yaci should start. It knows nothing of
// webhook payload types: intake decodes those into an Event.
package trigger

import (
	"time"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// Event is what yaci needs to know about one push or pull request delivery,
// independent of GitHub's payload shapes.
type Event struct {
	// Delivery is the X-GitHub-Delivery GUID, the correlation id carried
	// into logs, annotations and status descriptions.
	Delivery string
	Kind     repoconfig.EventKind
	// Action is the pull_request action ("opened", "synchronize",
	// "reopened", "closed"); empty for pushes.
	Action string
	// Repo is the repository the event belongs to: for a pull request,
	// the base repository, where statuses are posted.
	Repo Repo
	// InstallationID is the GitHub App installation that sent the event;
	// zero when yaci is set up with a plain token.
	InstallationID int64
	// SHA is the commit to build and to post statuses on.
	SHA string
	// Ref is the full ref that was pushed ("refs/heads/main"), or the
	// pull request's head ref as seen from the base repository
	// ("refs/pull/7/head").
	Ref string
	// Branch is the pushed branch, or the pull request's base branch.
	Branch string
	// Before is the commit a push replaced; empty for pull requests.
	Before string
	// HeadAt is when GitHub says SHA became the head: a push's
	// repository.pushed_at, a pull request's updated_at (whole seconds);
	// zero when the payload does not say. Superseding compares it, so that
	// a late delivery of an older event does not cancel a newer run.
	HeadAt time.Time
	// Message is the head commit's message for a push; empty otherwise.
	Message string
	// Sender is the login of the user who caused the event.
	Sender string
	// PullRequest is nil for pushes.
	PullRequest *PullRequest
}

// Repo identifies a GitHub repository.
type Repo struct {
	Owner    string
	Name     string
	CloneURL string
	Private  bool
}

// FullName returns "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// PullRequest holds the pull request fields yaci acts on.
type PullRequest struct {
	Number int
	Title  string
	// HeadRepo is where the head commit lives; it differs from the
	// event's Repo for a pull request from a fork.
	HeadRepo Repo
	HeadRef  string
	BaseRef  string
	// Author is the pull request author's login and AuthorAssociation
	// GitHub's word for their relation to the base repository (OWNER,
	// MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...).
	Author            string
	AuthorAssociation string
}
