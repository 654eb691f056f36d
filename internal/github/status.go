package github

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
)

// The states a commit status can have.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
)

// MaxDescription is the longest status description GitHub accepts, in
// characters; SetStatus shortens longer ones.
const MaxDescription = 140

// ErrInvalidStatus is returned, wrapped, for a status SetStatus will not
// send because GitHub would refuse it.
var ErrInvalidStatus = errors.New("github: invalid status")

// Status is one commit status: a job's state as GitHub shows it next to a
// commit or pull request.
type Status struct {
	// State is one of the State constants.
	State string
	// Context tells this status apart from the others on the commit, such
	// as "yaci/push/test".
	Context string
	// Description is a short line for people; SetStatus cuts it to
	// MaxDescription characters, ending it with an ellipsis.
	Description string
	// TargetURL links the status to the run's page; may be empty.
	TargetURL string
}

// SetStatus posts s on commit sha of owner/repo, acting for installation
// inst (ignored with token authentication).
func (c *Client) SetStatus(ctx context.Context, inst int64, owner, repo, sha string, s Status) error {
	name := s.Context
	if name == "" {
		name = "default" // what GitHub calls a status without a context
	}
	where := fmt.Sprintf("%s/%s@%s", owner, repo, sha)
	if err := s.validate(); err != nil {
		return fmt.Errorf("set status %s on %s: %w", name, where, err)
	}
	api, err := c.installation(inst)
	if err != nil {
		return fmt.Errorf("set status %s on %s: %w", name, where, err)
	}

	body := s.request()
	err = c.call(ctx, OpCreateCommitStatus, func(ctx context.Context) error {
		_, _, err := api.Repositories.CreateStatus(ctx, owner, repo, sha, body)
		return err
	})
	if err != nil {
		return fmt.Errorf("set status %s on %s: %w", name, where, err)
	}

	return nil
}

// validate refuses a status GitHub would reject with 422, which no retry
// could fix.
func (s Status) validate() error {
	switch s.State {
	case StatePending, StateSuccess, StateFailure, StateError:
		return nil
	default:
		return &permanentError{err: fmt.Errorf("%w: state %q", ErrInvalidStatus, s.State)}
	}
}

// request returns the body of the create-status call. Empty optional
// fields are left out, so GitHub applies its own defaults.
func (s Status) request() *gh.RepoStatus {
	rs := &gh.RepoStatus{
		State:       gh.String(s.State),
		Description: gh.String(truncate(s.Description, MaxDescription)),
	}
	if s.Context != "" {
		rs.Context = gh.String(s.Context)
	}
	if s.TargetURL != "" {
		rs.TargetURL = gh.String(s.TargetURL)
	}
	return rs
}

// truncate cuts s to at most n characters, the last of them an ellipsis
// when anything was cut. It counts runes, so it never splits one.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}

	cut, count := 0, 0
	for i := range s {
		if count == n-1 {
			cut = i
			break
		}
		count++
	}

	return s[:cut] + "…"
}
