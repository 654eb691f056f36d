package trigger

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

func TestTrusted(t *testing.T) {
	fork := Repo{Owner: "stranger", Name: "app"}

	tests := []struct {
		name        string
		head        Repo
		association string
		want        bool
	}{
		{"same repository", Repo{Owner: "octo", Name: "app"}, "NONE", true},
		{"same repository, other case", Repo{Owner: "Octo", Name: "APP"}, "NONE", true},
		{"fork by owner", fork, "OWNER", true},
		{"fork by member", fork, "MEMBER", true},
		{"fork by collaborator", fork, "COLLABORATOR", true},
		{"fork by collaborator, lower case", fork, "collaborator", true},
		{"fork by contributor", fork, "CONTRIBUTOR", false},
		{"fork by none", fork, "NONE", false},
		{"fork by first-time contributor", fork, "FIRST_TIME_CONTRIBUTOR", false},
		{"fork by first-timer", fork, "FIRST_TIMER", false},
		{"fork with no association", fork, "", false},
		{"same owner, other name", Repo{Owner: "octo", Name: "app-fork"}, "NONE", false},
		{"deleted fork", Repo{}, "NONE", false},
		{"deleted fork by member", Repo{}, "MEMBER", true},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := pullRequest("main")
			ev.PullRequest.HeadRepo = tt.head
			ev.PullRequest.AuthorAssociation = tt.association

			if got := Trusted(ev); got != tt.want {
				t.Errorf("Trusted(head %q, %q) = %v, want %v",
					tt.head.FullName(), tt.association, got, tt.want)
			}
		})
	}
}

func TestTrustedOtherEvents(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want bool
	}{
		{"push", push("main"), true},
		{"pull request without details", Event{Kind: repoconfig.EventPullRequest}, false},
		{"unknown kind", Event{Kind: "issue_comment"}, false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Trusted(tt.ev); got != tt.want {
				t.Errorf("Trusted() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTrustedForkFlagPayload checks the rule against a real delivery in
// which GitHub marks the head repository "fork": true although it is the
// base repository itself. It needs the shared payload collection and
// skips without it.
func TestTrustedForkFlagPayload(t *testing.T) {
	const file = "/work/shared/testdata/github/webhooks/pull_request/" +
		"opened.head-repo-fork-flag.json"
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("shared webhook payloads not present")
	}
	if err != nil {
		t.Fatal(err)
	}

	type repo struct {
		Name  string `json:"name"`
		Fork  bool   `json:"fork"`
		Owner struct {
			Login string `json:"login"`
		} `json:"owner"`
	}
	var p struct {
		PullRequest struct {
			AuthorAssociation string `json:"author_association"`
			Head              struct {
				Repo repo `json:"repo"`
			} `json:"head"`
		} `json:"pull_request"`
		Repository repo `json:"repository"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	if !p.PullRequest.Head.Repo.Fork {
		t.Fatalf("%s: head repo no longer has fork: true; the test lost its point", file)
	}

	head := p.PullRequest.Head.Repo
	ev := pullRequest("master")
	ev.Repo = Repo{Owner: p.Repository.Owner.Login, Name: p.Repository.Name}
	ev.PullRequest.HeadRepo = Repo{Owner: head.Owner.Login, Name: head.Name}
	// Whatever the author's association, the head is the base repository.
	ev.PullRequest.AuthorAssociation = "NONE"

	if !Trusted(ev) {
		t.Errorf("Trusted(%s from %s) = false, want true: the fork flag is not the test",
			ev.Repo.FullName(), ev.PullRequest.HeadRepo.FullName())
	}
}
