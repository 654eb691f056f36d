package trigger

import (
	"context"
	"fmt"
	"time"
)

// The fakes below record every call with its arguments, so tests can
// assert on what the Dispatcher asked of GitHub and of the cluster.

type readCall struct {
	Inst              int64
	Owner, Repo, Path string
	Ref               string
}

// fakeConfigs serves files by ref; a ref it does not hold has no config.
type fakeConfigs struct {
	files map[string]string
	err   error
	calls []readCall
}

func (f *fakeConfigs) ReadFile(_ context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	f.calls = append(f.calls, readCall{inst, owner, repo, path, ref})
	if f.err != nil {
		return nil, f.err
	}

	data, ok := f.files[ref]
	if !ok {
		return nil, fmt.Errorf("get contents %s/%s/%s at %s: %w",
			owner, repo, path, ref, ErrConfigNotFound)
	}

	return []byte(data), nil
}

type statusCall struct {
	Inst        int64
	Owner, Repo string
	SHA         string
	Status      Status
}

type fakeStatuses struct {
	err   error
	calls []statusCall
}

func (f *fakeStatuses) SetStatus(_ context.Context, inst int64, owner, repo, sha string, s Status) error {
	f.calls = append(f.calls, statusCall{inst, owner, repo, sha, s})

	return f.err
}

type tokenCall struct {
	Inst        int64
	Owner, Repo string
}

// fakeTokens hands out one token, expiring at expires (zero for never).
type fakeTokens struct {
	token   string
	expires time.Time
	err     error
	calls   []tokenCall
}

func (f *fakeTokens) CloneToken(_ context.Context, inst int64, owner, repo string) (Token, error) {
	f.calls = append(f.calls, tokenCall{inst, owner, repo})
	if f.err != nil {
		return Token{}, f.err
	}

	return Token{Value: f.token, ExpiresAt: f.expires}, nil
}

type launchCall struct {
	Name    string
	Job     string
	Repo    string
	SHA     string
	Kind    string
	Attempt int
	Token   string
	// Expires is when the token expires, which the launcher records so
	// that a queued run's token is renewed in time.
	Expires time.Time
}

// fakeLauncher creates every run except those it is told exist already
// or fail, by job name.
type fakeLauncher struct {
	existing map[string]bool
	fail     map[string]error
	queued   bool
	ahead    int
	calls    []launchCall
}

func (f *fakeLauncher) Launch(_ context.Context, run Run, tok Token) (Launched, error) {
	f.calls = append(f.calls, launchCall{
		Name:    run.Name(),
		Job:     run.Job.Name,
		Repo:    run.Event.Repo.FullName(),
		SHA:     run.Event.SHA,
		Kind:    string(run.Event.Kind),
		Attempt: run.Attempt,
		Token:   tok.Value,
		Expires: tok.ExpiresAt,
	})
	if err := f.fail[run.Job.Name]; err != nil {
		return Launched{}, err
	}

	return Launched{Name: run.Name(), Created: !f.existing[run.Job.Name], Queued: f.queued,
		Ahead: f.ahead}, nil
}

type supersedeCall struct {
	Delivery string
	SHA      string
	Action   string
	// Launched is how many launches came before the call.
	Launched int
}

// fakeSuperseder records each event it is asked to supersede for, and
// how far the launcher had got by then.
type fakeSuperseder struct {
	launcher *fakeLauncher
	err      error
	calls    []supersedeCall
}

func (f *fakeSuperseder) Supersede(_ context.Context, ev Event) error {
	f.calls = append(f.calls, supersedeCall{ev.Delivery, ev.SHA, ev.Action, len(f.launcher.calls)})

	return f.err
}
