package trigger

import (
	"strings"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// trustedAssociations are the author associations whose pull requests
// from another repository yaci builds without approval: people who could
// push the same code to the base repository themselves.
var trustedAssociations = []string{"OWNER", "MEMBER", "COLLABORATOR"}

// Trusted reports whether yaci may run code from ev's commit with the
// repository's credentials. A push is trusted: only people with write
// access can push. A pull request whose head lives in the base repository
// is trusted for the same reason. A pull request from another repository
// is trusted only when its author is an owner, member or collaborator of
// the base repository.
//
// The head repository's "fork" flag is deliberately not consulted: GitHub
// sets it on any repository that is itself a fork, including a base
// repository that was forked from elsewhere, so it says nothing about
// where this pull request comes from.
func Trusted(ev Event) bool {
	switch ev.Kind {
	case repoconfig.EventPush:
		return true
	case repoconfig.EventPullRequest:
		return ev.PullRequest != nil && trustedPullRequest(ev.Repo, *ev.PullRequest)
	default:
		return false
	}
}

func trustedPullRequest(base Repo, pr PullRequest) bool {
	if sameRepo(base, pr.HeadRepo) {
		return true
	}

	for _, a := range trustedAssociations {
		if strings.EqualFold(pr.AuthorAssociation, a) {
			return true
		}
	}

	return false
}

// sameRepo compares by full name, as GitHub does, ignoring case. A head
// repository without a name (its fork was deleted) is never the same.
func sameRepo(a, b Repo) bool {
	if a.Owner == "" || a.Name == "" || b.Owner == "" || b.Name == "" {
		return false
	}

	return strings.EqualFold(a.FullName(), b.FullName())
}
