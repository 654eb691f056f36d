package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// ConfigContext is the status context on which yaci reports a
// configuration it cannot use, apart from the contexts of the jobs.
const ConfigContext = "yaci/config"

// maxDescription is the longest status description GitHub accepts, in
// characters.
const maxDescription = 140

// Descriptions of the pending statuses the Dispatcher posts.
const (
	descRunning  = "running"
	descQueued   = "queued"
	descApproval = "waiting for a collaborator to approve this commit"
)

// ErrConfigNotFound is the error a ConfigReader's error wraps when the
// repository has no configuration file at the ref asked for.
var ErrConfigNotFound = errors.New("trigger: config file not found")

// UnusableConfigError is the error a ConfigReader returns (or wraps) when
// the repository has a configuration file that cannot be read as one:
// larger than the parser takes, or not a regular file. Like an invalid
// file, it is the user's to fix, and they are told on ConfigContext.
type UnusableConfigError struct {
	// Reason says what is wrong, in words for the status description.
	Reason string
}

func (e *UnusableConfigError) Error() string { return "unusable config file: " + e.Reason }

// State is a commit status state, in GitHub's words.
type State string

// The states a commit status can have.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

// Status is one commit status to post.
type Status struct {
	State State
	// Context names what the status is about, e.g. "yaci/push/test";
	// a later status with the same context replaces an earlier one.
	Context     string
	Description string
	// TargetURL is where the status links to; empty for no link.
	TargetURL string
}

// ConfigReader reads a file of a repository at a ref.
type ConfigReader interface {
	// ReadFile returns the file's content. When the file or the ref does
	// not exist, the error wraps ErrConfigNotFound.
	ReadFile(ctx context.Context, inst int64, owner, repo, path, ref string) ([]byte, error)
}

// StatusWriter posts commit statuses.
type StatusWriter interface {
	SetStatus(ctx context.Context, inst int64, owner, repo, sha string, s Status) error
}

// TokenSource hands out short-lived tokens that can clone a repository.
type TokenSource interface {
	// CloneToken returns a token that can clone owner/repo, with when it
	// expires. A run that waits in the queue may outlive its token, and a
	// token handed out again may be older than the run; knowing the
	// expiry lets the token be renewed by the time it has left.
	CloneToken(ctx context.Context, inst int64, owner, repo string) (Token, error)
}

// Token is a token that can clone a repository, with when it expires.
// It prints and logs as "[redacted]".
type Token struct {
	Value string
	// ExpiresAt is when the token stops working; zero for one that does
	// not expire on its own, such as a configured token.
	ExpiresAt time.Time
}

// String returns "[redacted]", so that a Token printed by mistake does not
// show its value.
func (Token) String() string { return "[redacted]" }

// GoString returns "[redacted]", for %#v.
func (Token) GoString() string { return "[redacted]" }

// LogValue logs only when the token expires.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("value", "[redacted]"), slog.Time("expires_at", t.ExpiresAt))
}

// Launcher creates the Kubernetes objects of a run.
type Launcher interface {
	// Launch creates the run's Job, with tok available to its clone step
	// and its expiry kept for renewing it. Creating a run that already
	// exists is not an error: it reports Created false.
	Launch(ctx context.Context, run Run, tok Token) (Launched, error)
}

// Superseder cancels the runs an event makes pointless: the unfinished
// runs of a branch's earlier push, of a pull request's earlier head, or of
// a pull request that was closed.
type Superseder interface {
	Supersede(ctx context.Context, ev Event) error
}

// Launched is what a Launcher reports about a run it was asked to start.
type Launched struct {
	// Name is the run's Job name, which its page's URL is made of.
	Name string
	// Created is false when the Job existed already: an earlier
	// delivery of the same event, or another replica, created it.
	Created bool
	// Queued is true when the Job waits for admission instead of
	// starting at once; Ahead is then how many runs go before it, when
	// known.
	Queued bool
	Ahead  int
}

// Dispatcher starts the runs an event asks for and tells GitHub about
// them. Its Handle method is what intake calls for every verified push
// and pull request.
//
// The Dispatcher sets no deadlines of its own: each dependency bounds
// its own calls, as only it knows how long one call and its retries may
// take.
type Dispatcher struct {
	// Configs, Statuses, Tokens and Launcher are required. The wiring
	// adapts yaci's GitHub client and launcher to them.
	Configs  ConfigReader
	Statuses StatusWriter
	Tokens   TokenSource
	Launcher Launcher

	// Superseder, when set, cancels the runs an event makes pointless
	// (see Handle); nil leaves every run to finish.
	Superseder Superseder

	// RunURL returns the address of a run's page from the run's name.
	// It is a function so that links can later be signed; PublicRunURL
	// makes the plain one.
	RunURL func(name string) string

	// Logger returns the logger carried by ctx, which already names
	// the delivery: intake puts one there, and this package cannot
	// import intake's helper without a cycle. Nil means slog.Default(),
	// to which Handle adds the delivery itself.
	Logger func(ctx context.Context) *slog.Logger
}

// PublicRunURL returns a RunURL function that links to run pages under
// base, yaci's public address: base + "/runs/" + name.
func PublicRunURL(base string) func(name string) string {
	base = strings.TrimRight(base, "/")

	return func(name string) string { return base + "/runs/" + name }
}

// Handle starts the runs that the repository's configuration asks for on
// ev and posts a pending status for each.
//
// A pull request from an untrusted fork starts nothing: the config is
// read from the base branch, never from the head, only to learn which
// jobs would run, and each gets a pending status saying it waits for
// approval. A repository without a config gets nothing; one with an
// invalid config (for an untrusted fork, the base branch's) gets one
// error status on ConfigContext. Pull request actions other than
// opened, reopened and synchronize start nothing.
//
// With a Superseder, a push or a synchronized pull request that starts
// runs first supersedes the earlier runs of its branch or pull request,
// and a closed pull request cancels its runs.
//
// The error returned joins every failure to reach GitHub or to launch a
// run, each naming its object; runs that could be started are started
// regardless.
func (d *Dispatcher) Handle(ctx context.Context, ev Event) error {
	log := d.logger(ctx, ev).With("repo", ev.Repo.FullName(), "sha", ev.SHA, "event", ev.Kind)

	if closesPullRequest(ev) {
		return d.supersede(ctx, log, ev)
	}
	if !startsRuns(ev) {
		log.Debug("event starts no runs", "action", ev.Action)
		return nil
	}

	trusted := Trusted(ev)
	ref := ev.SHA
	if !trusted {
		// The head is code from someone without write access; even its
		// .yaci.yml is not theirs to decide what runs.
		ref = ev.Branch
	}

	cfg, err := d.readConfig(ctx, log, ev, ref)
	if err != nil || cfg == nil {
		return err
	}

	runs := Plan(ev, cfg)
	if len(runs) == 0 {
		log.Info("no job runs on this event", "ref", ref)
		return nil
	}

	if !trusted {
		return d.awaitApproval(ctx, log, runs)
	}

	// A failure to supersede leaves old runs running to their end; that
	// is no reason to hold back the new ones.
	var superseded error
	if replacesHead(ev) {
		superseded = d.supersede(ctx, log, ev)
	}

	return errors.Join(superseded, d.start(ctx, log, runs))
}

// closesPullRequest reports whether ev closes a pull request, which ends
// its runs.
func closesPullRequest(ev Event) bool {
	return ev.Kind == repoconfig.EventPullRequest && ev.Action == "closed" &&
		ev.PullRequest != nil
}

// replacesHead reports whether ev moves a branch or a pull request to a
// new commit, so that the runs of the one before are no longer wanted.
func replacesHead(ev Event) bool {
	return ev.Kind == repoconfig.EventPush ||
		ev.Kind == repoconfig.EventPullRequest && ev.Action == "synchronize"
}

// supersede asks the Superseder, if there is one, to cancel the runs ev
// makes pointless.
func (d *Dispatcher) supersede(ctx context.Context, log *slog.Logger, ev Event) error {
	if d.Superseder == nil {
		return nil
	}
	if err := d.Superseder.Supersede(ctx, ev); err != nil {
		log.Warn("could not cancel superseded runs", "action", ev.Action, "error", err)
		return fmt.Errorf("supersede runs before %s of %s: %w",
			ev.SHA, ev.Repo.FullName(), err)
	}

	return nil
}

// startsRuns reports whether ev brings a commit to build. Of the pull
// request actions, only those that open a pull request or change its
// head do; the rest (closed, labeled, edited, ...) leave the commit as
// it was.
func startsRuns(ev Event) bool {
	switch ev.Kind {
	case repoconfig.EventPush:
		return true
	case repoconfig.EventPullRequest:
		if ev.PullRequest == nil {
			return false
		}
		switch ev.Action {
		case "opened", "reopened", "synchronize":
			return true
		}
	}

	return false
}

// readConfig reads and parses the config at ref. It returns a nil config
// and a nil error when there is nothing to run: no config file, or an
// invalid one, which it reports to the user on ConfigContext.
func (d *Dispatcher) readConfig(ctx context.Context, log *slog.Logger, ev Event, ref string) (*repoconfig.Config, error) {
	data, err := d.Configs.ReadFile(ctx, ev.InstallationID, ev.Repo.Owner, ev.Repo.Name,
		repoconfig.FileName, ref)
	if errors.Is(err, ErrConfigNotFound) {
		log.Info("no config file, nothing to run", "ref", ref)
		return nil, nil
	}
	var unusable *UnusableConfigError
	if errors.As(err, &unusable) {
		log.Info("unusable config file", "ref", ref, "error", err)
		return nil, d.post(ctx, ev, Status{
			State:       StateError,
			Context:     ConfigContext,
			Description: truncate(repoconfig.FileName+": "+unusable.Reason, maxDescription),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("read %s of %s at %s: %w",
			repoconfig.FileName, ev.Repo.FullName(), ref, err)
	}

	cfg, err := repoconfig.Parse(data)
	if err != nil {
		// A mistake in the user's file is expected, not an error of
		// yaci's: they learn of it from the status.
		log.Info("invalid config file", "ref", ref, "error", err)
		return nil, d.post(ctx, ev, Status{
			State:       StateError,
			Context:     ConfigContext,
			Description: configProblem(err),
		})
	}

	return cfg, nil
}

// awaitApproval tells the author of an untrusted pull request which jobs
// wait for a collaborator, without starting any.
func (d *Dispatcher) awaitApproval(ctx context.Context, log *slog.Logger, runs []Run) error {
	ev := runs[0].Event
	log.Info("pull request from a fork waits for approval",
		"pull", ev.PullRequest.Number, "author", ev.PullRequest.Author,
		"association", ev.PullRequest.AuthorAssociation, "jobs", len(runs))

	var errs []error
	for _, run := range runs {
		errs = append(errs, d.post(ctx, ev, Status{
			State:       StatePending,
			Context:     run.StatusContext(),
			Description: descApproval,
		}))
	}

	return errors.Join(errs...)
}

// start launches every run with one clone token and posts a pending
// status for each run it created. A run that fails to launch gets an
// error status and does not stop the others.
func (d *Dispatcher) start(ctx context.Context, log *slog.Logger, runs []Run) error {
	ev := runs[0].Event

	tok, err := d.Tokens.CloneToken(ctx, ev.InstallationID, ev.Repo.Owner, ev.Repo.Name)
	if err != nil {
		err = fmt.Errorf("clone token for %s: %w", ev.Repo.FullName(), err)
		return errors.Join(err, d.failAll(ctx, runs, "could not get a clone token"))
	}

	var errs []error
	for _, run := range runs {
		errs = append(errs, d.startOne(ctx, log, run, tok))
	}

	return errors.Join(errs...)
}

func (d *Dispatcher) startOne(ctx context.Context, log *slog.Logger, run Run, tok Token) error {
	launched, err := d.Launcher.Launch(ctx, run, tok)
	if err != nil {
		posted := d.post(ctx, run.Event, failedStatus(run, err))
		err = fmt.Errorf("launch %s (job %q): %w", run.Name(), run.Job.Name, err)

		return errors.Join(err, posted)
	}

	// The delivery that created the run posted its pending status; a
	// second one could overwrite a final status posted since.
	if !launched.Created {
		log.Debug("run exists already", "run", launched.Name, "job", run.Job.Name)
		return nil
	}
	log.Info("run started", "run", launched.Name, "job", run.Job.Name,
		"queued", launched.Queued)

	desc := descRunning
	switch {
	case launched.Queued && launched.Ahead > 0:
		desc = fmt.Sprintf("%s, %d ahead", descQueued, launched.Ahead)
	case launched.Queued:
		desc = descQueued
	}

	return d.post(ctx, run.Event, Status{
		State:       StatePending,
		Context:     run.StatusContext(),
		Description: desc,
		TargetURL:   d.runURL(launched.Name),
	})
}

// failAll posts an error status with the same reason on every run.
func (d *Dispatcher) failAll(ctx context.Context, runs []Run, reason string) error {
	var errs []error
	for _, run := range runs {
		errs = append(errs, d.post(ctx, run.Event, Status{
			State:       StateError,
			Context:     run.StatusContext(),
			Description: "could not start: " + reason,
		}))
	}

	return errors.Join(errs...)
}

// failedStatus reports a run that could not be launched. The launcher's
// own message is the short reason: it names the object it failed on and
// the cluster's answer, which is what the user can act on or report.
func failedStatus(run Run, err error) Status {
	return Status{
		State:       StateError,
		Context:     run.StatusContext(),
		Description: truncate("could not start: "+err.Error(), maxDescription),
	}
}

// post sets s on the event's commit.
func (d *Dispatcher) post(ctx context.Context, ev Event, s Status) error {
	err := d.Statuses.SetStatus(ctx, ev.InstallationID, ev.Repo.Owner, ev.Repo.Name, ev.SHA, s)
	if err != nil {
		return fmt.Errorf("set status %s on %s@%s: %w", s.Context, ev.Repo.FullName(), ev.SHA, err)
	}

	return nil
}

func (d *Dispatcher) runURL(name string) string {
	if d.RunURL == nil {
		return ""
	}

	return d.RunURL(name)
}

func (d *Dispatcher) logger(ctx context.Context, ev Event) *slog.Logger {
	if d.Logger == nil {
		return slog.Default().With("delivery", ev.Delivery)
	}

	return d.Logger(ctx)
}

// configProblem describes a parse error in one status description: the
// first problem with its place, and how many more there are, so the user
// knows to look at the whole list (`yaci validate` prints it).
func configProblem(err error) string {
	var pe *repoconfig.ParseError
	if !errors.As(err, &pe) || len(pe.Problems) == 0 {
		return truncate(repoconfig.FileName+": "+err.Error(), maxDescription)
	}

	lines := pe.Format(repoconfig.FileName)

	more := ""
	if len(lines) > 1 {
		more = " (+" + strconv.Itoa(len(lines)-1) + " more)"
	}

	return truncate(lines[0], maxDescription-utf8.RuneCountInString(more)) + more
}

// truncate shortens s to at most n characters, marking a cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}

	runes := []rune(s)

	return string(runes[:n-1]) + "…"
}
