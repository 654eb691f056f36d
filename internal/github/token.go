package github

import (
	"context"
	"fmt"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// Token is a credential a Job uses to clone a repository.
type Token struct {
	Value Secret
	// ExpiresAt is when GitHub stops accepting the token; zero for a
	// configured token, which does not expire on its own.
	ExpiresAt time.Time
}

// CloneToken returns a token that can clone owner/repo. With App
// authentication it asks GitHub for a new installation token limited to
// that one repository and to reading its contents, which expires within an
// hour, so a Job's script cannot use it to write anywhere. With token
// authentication it returns the configured token, whose reach is whatever
// it was created with.
func (c *Client) CloneToken(ctx context.Context, inst int64, owner, repo string) (Token, error) {
	if c.key == nil {
		return Token{Value: append(Secret(nil), c.token...)}, nil
	}
	if inst <= 0 {
		return Token{}, fmt.Errorf("clone token for %s/%s: %w", owner, repo,
			&permanentError{err: ErrNoInstallation})
	}

	opts := &gh.InstallationTokenOptions{
		Repositories: []string{repo},
		Permissions:  &gh.InstallationPermissions{Contents: gh.String("read")},
	}
	var tok *gh.InstallationToken
	err := c.call(ctx, OpCreateInstallationToken, func(ctx context.Context) error {
		var err error
		tok, _, err = c.appAPI.Apps.CreateInstallationToken(ctx, inst, opts)
		return err
	})
	if err != nil {
		return Token{}, fmt.Errorf("clone token for %s/%s: %w", owner, repo, err)
	}

	return Token{Value: Secret(tok.GetToken()), ExpiresAt: tok.GetExpiresAt().Time}, nil
}
