package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gh "github.com/go-playground/webhooks/v6/github"

	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// errBadPayload marks a signed payload that yaci cannot act on: malformed
// JSON or a missing field it needs. Intake answers it with 400, as
// redelivering the same bytes would fail the same way.
var errBadPayload = errors.New("bad payload")

// handledActions are the pull_request actions yaci acts on: the first three
// change the head commit, closed lets later stages cancel its runs.
var handledActions = map[string]bool{
	"opened":      true,
	"synchronize": true,
	"reopened":    true,
	"closed":      true,
}

// decoded is what a payload decodes to: either an event to enqueue, or the
// reason the delivery is ignored.
type decoded struct {
	event  trigger.Event
	ignore string
}

// decodePayload turns a signed payload of the given X-GitHub-Event kind into
// an event. Kinds other than push and pull_request are ignored.
func decodePayload(kind string, body []byte) (decoded, error) {
	switch gh.Event(kind) {
	case gh.PushEvent:
		return decodePush(body)
	case gh.PullRequestEvent:
		return decodePullRequest(body)
	default:
		return decoded{ignore: "event " + clip(kind)}, nil
	}
}

// pushDoc is the library's push payload with its commit list left
// undecoded: yaci needs only the head commit, and the list is most of a
// large payload's bytes and allocations.
type pushDoc struct {
	gh.PushPayload
	Commits skipped `json:"commits"` // shadows PushPayload.Commits
}

// skipped is a JSON value that is checked for syntax but not decoded.
type skipped struct{}

// UnmarshalJSON ignores the value.
func (*skipped) UnmarshalJSON([]byte) error { return nil }

// decodePush decodes a push payload. Pushes of tags and deletions of
// branches or tags start nothing, so they come back as ignored.
func decodePush(body []byte) (decoded, error) {
	var doc pushDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return decoded{}, fmt.Errorf("decode push payload: %w: %w", errBadPayload, err)
	}
	p := &doc.PushPayload

	r := p.Repository
	repo, err := requireRepo(r.Owner.Login, r.FullName, r.Name, r.CloneURL, r.Private)
	if err != nil {
		return decoded{}, fmt.Errorf("decode push payload: %w", err)
	}

	branch, isBranch := strings.CutPrefix(p.Ref, "refs/heads/")
	switch {
	case p.Deleted || isZeroSHA(p.After):
		return decoded{ignore: "deletion of " + p.Ref}, nil
	case strings.HasPrefix(p.Ref, "refs/tags/"):
		return decoded{ignore: "tag push"}, nil
	case !isBranch || branch == "":
		return decoded{ignore: "push to a ref that is not a branch"}, nil
	}
	if !isSHA(p.After) {
		return decoded{}, fmt.Errorf("decode push payload: %w: after %q is not a commit id",
			errBadPayload, p.After)
	}

	before := p.Before
	if isZeroSHA(before) {
		before = "" // a new branch replaced no commit
	}

	return decoded{event: trigger.Event{
		Kind:           repoconfig.EventPush,
		Repo:           repo,
		InstallationID: int64(p.Installation.ID),
		SHA:            p.After,
		Ref:            p.Ref,
		Branch:         branch,
		Before:         before,
		HeadAt:         unixTime(p.Repository.PushedAt),
		Message:        p.HeadCommit.Message,
		Sender:         p.Sender.Login,
	}}, nil
}

// prExtra holds the action, which decides whether the rest is worth
// decoding (most pull_request deliveries are labels, reviews and edits),
// and the field the library's payload type leaves out.
type prExtra struct {
	Action      string `json:"action"`
	PullRequest struct {
		AuthorAssociation string `json:"author_association"`
	} `json:"pull_request"`
}

// decodePullRequest decodes a pull_request payload. Actions other than
// handledActions come back as ignored.
func decodePullRequest(body []byte) (decoded, error) {
	var extra prExtra
	if err := json.Unmarshal(body, &extra); err != nil {
		return decoded{}, fmt.Errorf("decode pull_request payload: %w: %w", errBadPayload, err)
	}
	if !handledActions[extra.Action] {
		return decoded{ignore: "pull_request action " + strconv.Quote(clip(extra.Action))}, nil
	}

	var p gh.PullRequestPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return decoded{}, fmt.Errorf("decode pull_request payload: %w: %w", errBadPayload, err)
	}

	ev, err := pullRequestEvent(&p, extra)
	if err != nil {
		return decoded{}, fmt.Errorf("decode pull_request payload: %w", err)
	}

	return decoded{event: ev}, nil
}

// pullRequestEvent checks the fields yaci needs and builds the event.
func pullRequestEvent(p *gh.PullRequestPayload, extra prExtra) (trigger.Event, error) {
	r := p.Repository
	repo, err := requireRepo(r.Owner.Login, r.FullName, r.Name, r.CloneURL, r.Private)
	if err != nil {
		return trigger.Event{}, err
	}

	pr := &p.PullRequest
	number := p.Number
	if number == 0 {
		number = pr.Number
	}
	if number <= 0 {
		return trigger.Event{}, fmt.Errorf("%w: no pull request number", errBadPayload)
	}
	if !isSHA(pr.Head.Sha) {
		return trigger.Event{}, fmt.Errorf("%w: head sha %q is not a commit id",
			errBadPayload, pr.Head.Sha)
	}

	// The head repository is null when a fork was deleted; the head commit
	// stays reachable from the base repository as refs/pull/<n>/head, so
	// this is no reason to refuse the event.
	hr := pr.Head.Repo
	head := trigger.Repo{
		Owner:    ownerOf(hr.Owner.Login, hr.FullName),
		Name:     hr.Name,
		CloneURL: hr.CloneURL,
		Private:  hr.Private,
	}

	return trigger.Event{
		Kind:           repoconfig.EventPullRequest,
		Action:         p.Action,
		Repo:           repo,
		InstallationID: p.Installation.ID,
		SHA:            pr.Head.Sha,
		Ref:            "refs/pull/" + strconv.FormatInt(number, 10) + "/head",
		Branch:         pr.Base.Ref,
		HeadAt:         pr.UpdatedAt.UTC(),
		Sender:         p.Sender.Login,
		PullRequest: &trigger.PullRequest{
			Number:            int(number),
			Title:             pr.Title,
			HeadRepo:          head,
			HeadRef:           pr.Head.Ref,
			BaseRef:           pr.Base.Ref,
			Author:            pr.User.Login,
			AuthorAssociation: extra.PullRequest.AuthorAssociation,
		},
	}, nil
}

// unixTime returns the time of a payload's Unix seconds, or zero for a
// field that is absent (0).
func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}

	return time.Unix(sec, 0).UTC()
}

// requireRepo builds the event's repository and fails when a field yaci
// needs to find or clone it is missing.
func requireRepo(login, fullName, name, cloneURL string, private bool) (trigger.Repo, error) {
	repo := trigger.Repo{
		Owner:    ownerOf(login, fullName),
		Name:     name,
		CloneURL: cloneURL,
		Private:  private,
	}
	if repo.Owner == "" || repo.Name == "" || repo.CloneURL == "" {
		return trigger.Repo{}, fmt.Errorf("%w: repository lacks owner, name or clone_url",
			errBadPayload)
	}

	return repo, nil
}

// ownerOf returns the owner's login, or the part of "owner/name" before the
// slash when the payload's owner object has no login (older payloads
// name the owner with "name" only).
func ownerOf(login, fullName string) string {
	if login != "" {
		return login
	}
	owner, _, ok := strings.Cut(fullName, "/")
	if !ok {
		return ""
	}

	return owner
}

// isSHA reports whether s is a full commit id: 40 hex digits for SHA-1
// repositories, 64 for SHA-256 ones. Downstream stages put the id into
// names, labels and git commands, so nothing else may pass.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}

	return true
}

// isZeroSHA reports whether s is GitHub's all-zero commit id, which stands
// for "no commit" in a push's before (new ref) or after (deleted ref).
func isZeroSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}
