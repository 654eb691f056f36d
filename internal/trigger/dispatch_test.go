package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// validConfig has a job for each kind of filter: both events, push only,
// pull requests only, and pushes to main only.
const validConfig = `jobs:
  - name: lint
    image: golang:1.26
    run: go vet ./...
  - name: test
    image: golang:1.26
    run: go test ./...
    on: [push]
  - name: review
    image: alpine:3
    run: echo review
    on: [pull_request]
  - name: deploy
    image: alpine:3
    run: ./deploy
    on: [push]
    branches: [main]
`

// headConfig is what an untrusted fork puts at its head: it must never
// be read.
const headConfig = `jobs:
  - name: steal
    image: alpine:3
    run: env
`

// prOnlyConfig has no job for pushes.
const prOnlyConfig = `jobs:
  - name: review
    image: alpine:3
    run: echo review
    on: [pull_request]
`

const (
	testToken = "clone-token"
	publicURL = "https://ci.example/"
)

var (
	errGitHub = errors.New("github: 502 bad gateway")
	errQuota  = errors.New(`jobs.batch is forbidden: exceeded quota "ci"`)
)

type handleCase struct {
	name string
	ev   Event
	// files maps a ref to the config at that ref.
	files     map[string]string
	readErr   error
	tokenErr  error
	statusErr error
	existing  map[string]bool
	fail      map[string]error
	queued    bool
	ahead     int

	wantReads    []readCall
	wantTokens   []tokenCall
	wantLaunches []launchCall
	wantStatuses []statusCall
	// wantErr lists what the returned error must wrap; empty means nil.
	wantErr []error
	// wantErrText lists names the returned error must mention.
	wantErrText []string
}

func TestHandle(t *testing.T) {
	pushEv := push("main")
	featureEv := push("feature")
	prEv := pullRequest("main")
	collabEv := fork("COLLABORATOR")
	strangerEv := fork("CONTRIBUTOR")
	closedEv := pullRequest("main")
	closedEv.Action = "closed"
	labeledEv := pullRequest("main")
	labeledEv.Action = "labeled"

	atSHA := func(ev Event) map[string]string {
		return map[string]string{ev.SHA: validConfig}
	}
	waiting := func(ev Event, job string) statusCall {
		return status(ev, StatePending, "yaci/pr/"+job, descApproval, "")
	}

	tests := []handleCase{{
		name:         "push starts the jobs that want it",
		ev:           pushEv,
		files:        atSHA(pushEv),
		wantReads:    []readCall{read(pushEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(pushEv, "lint", "test", "deploy"),
		wantStatuses: []statusCall{
			running(pushEv, "lint", "running"),
			running(pushEv, "test", "running"),
			running(pushEv, "deploy", "running"),
		},
	}, {
		name:         "push to another branch skips the branch-filtered job",
		ev:           featureEv,
		files:        atSHA(featureEv),
		wantReads:    []readCall{read(featureEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(featureEv, "lint", "test"),
		wantStatuses: []statusCall{
			running(featureEv, "lint", "running"),
			running(featureEv, "test", "running"),
		},
	}, {
		name:         "pull request from the same repository",
		ev:           prEv,
		files:        atSHA(prEv),
		wantReads:    []readCall{read(prEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(prEv, "lint", "review"),
		wantStatuses: []statusCall{
			running(prEv, "lint", "running"),
			running(prEv, "review", "running"),
		},
	}, {
		name:         "fork by a collaborator reads the head",
		ev:           collabEv,
		files:        atSHA(collabEv),
		wantReads:    []readCall{read(collabEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(collabEv, "lint", "review"),
		wantStatuses: []statusCall{
			running(collabEv, "lint", "running"),
			running(collabEv, "review", "running"),
		},
	}, {
		name:         "second delivery posts no second pending",
		ev:           pushEv,
		files:        atSHA(pushEv),
		existing:     map[string]bool{"lint": true, "deploy": true},
		wantReads:    []readCall{read(pushEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(pushEv, "lint", "test", "deploy"),
		wantStatuses: []statusCall{running(pushEv, "test", "running")},
	}, {
		name:         "queued runs say so",
		ev:           prEv,
		files:        atSHA(prEv),
		queued:       true,
		wantReads:    []readCall{read(prEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(prEv, "lint", "review"),
		wantStatuses: []statusCall{
			running(prEv, "lint", "queued"),
			running(prEv, "review", "queued"),
		},
	}, {
		name:         "queued runs say how many go first",
		ev:           prEv,
		files:        atSHA(prEv),
		queued:       true,
		ahead:        4,
		wantReads:    []readCall{read(prEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(prEv, "lint", "review"),
		wantStatuses: []statusCall{
			running(prEv, "lint", "queued, 4 ahead"),
			running(prEv, "review", "queued, 4 ahead"),
		},
	}, {
		name:      "no config file runs nothing",
		ev:        pushEv,
		wantReads: []readCall{read(pushEv.SHA)},
	}, {
		name:      "no job wants the event",
		ev:        pushEv,
		files:     map[string]string{pushEv.SHA: prOnlyConfig},
		wantReads: []readCall{read(pushEv.SHA)},
	}, {
		name: "untrusted fork waits for approval",
		ev:   strangerEv,
		files: map[string]string{
			"main":         validConfig,
			strangerEv.SHA: headConfig,
		},
		wantReads: []readCall{read("main")},
		wantStatuses: []statusCall{
			waiting(strangerEv, "lint"),
			waiting(strangerEv, "review"),
		},
	}, {
		name:      "untrusted fork with no config on the base branch",
		ev:        strangerEv,
		files:     map[string]string{strangerEv.SHA: validConfig},
		wantReads: []readCall{read("main")},
	}, {
		name:         "a failed launch reports that job and starts the others",
		ev:           pushEv,
		files:        atSHA(pushEv),
		fail:         map[string]error{"test": fmt.Errorf("create job: %w", errQuota)},
		wantReads:    []readCall{read(pushEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(pushEv, "lint", "test", "deploy"),
		wantStatuses: []statusCall{
			running(pushEv, "lint", "running"),
			status(pushEv, StateError, "yaci/push/test",
				"could not start: create job: "+errQuota.Error(), ""),
			running(pushEv, "deploy", "running"),
		},
		wantErr:     []error{errQuota},
		wantErrText: []string{runName(pushEv, "test")},
	}, {
		name:       "no clone token starts nothing and says so",
		ev:         prEv,
		files:      atSHA(prEv),
		tokenErr:   errGitHub,
		wantReads:  []readCall{read(prEv.SHA)},
		wantTokens: []tokenCall{{42, "octo", "app"}},
		wantStatuses: []statusCall{
			status(prEv, StateError, "yaci/pr/lint",
				"could not start: could not get a clone token", ""),
			status(prEv, StateError, "yaci/pr/review",
				"could not start: could not get a clone token", ""),
		},
		wantErr:     []error{errGitHub},
		wantErrText: []string{"octo/app"},
	}, {
		name:        "reading the config fails",
		ev:          pushEv,
		readErr:     errGitHub,
		wantReads:   []readCall{read(pushEv.SHA)},
		wantErr:     []error{errGitHub},
		wantErrText: []string{".yaci.yml", "octo/app", pushEv.SHA},
	}, {
		name:         "posting a status fails",
		ev:           prEv,
		files:        atSHA(prEv),
		statusErr:    errGitHub,
		wantReads:    []readCall{read(prEv.SHA)},
		wantTokens:   []tokenCall{{42, "octo", "app"}},
		wantLaunches: launches(prEv, "lint", "review"),
		wantStatuses: []statusCall{
			running(prEv, "lint", "running"),
			running(prEv, "review", "running"),
		},
		wantErr:     []error{errGitHub},
		wantErrText: []string{"yaci/pr/lint", "yaci/pr/review"},
	}, {
		name:  "closed pull request does nothing",
		ev:    closedEv,
		files: atSHA(closedEv),
	}, {
		name:  "pull request event without its pull request does nothing",
		ev:    Event{Kind: repoconfig.EventPullRequest, Action: "opened", SHA: prEv.SHA},
		files: atSHA(prEv),
	}, {
		name:  "labeled pull request does nothing",
		ev:    labeledEv,
		files: atSHA(labeledEv),
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, rec := newDispatcher(tt)

			err := d.Handle(t.Context(), tt.ev)

			checkErr(t, err, tt.wantErr, tt.wantErrText)
			checkCalls(t, "ReadFile", rec.configs.calls, tt.wantReads)
			checkCalls(t, "CloneToken", rec.tokens.calls, tt.wantTokens)
			checkCalls(t, "Launch", rec.launcher.calls, tt.wantLaunches)
			checkCalls(t, "SetStatus", rec.statuses.calls, tt.wantStatuses)
		})
	}
}

// TestHandlePassesTokenExpiry checks that the clone token's expiry reaches
// the launcher with it, so that a queued run's token can be renewed in
// time, and that a token that does not expire goes with a zero expiry.
func TestHandlePassesTokenExpiry(t *testing.T) {
	ev := push("main")
	tests := []struct {
		name    string
		expires time.Time
	}{
		{"expiring token", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"configured token", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, rec := newDispatcher(handleCase{files: map[string]string{ev.SHA: validConfig}})
			rec.tokens.expires = tt.expires

			if err := d.Handle(t.Context(), ev); err != nil {
				t.Fatal(err)
			}

			checkCalls(t, "CloneToken", rec.tokens.calls, []tokenCall{{42, "octo", "app"}})
			want := launches(ev, "lint", "test", "deploy")
			for i := range want {
				want[i].Expires = tt.expires
			}
			checkCalls(t, "Launch", rec.launcher.calls, want)
		})
	}
}

// TestTokenIsRedacted checks that a Token printed or logged by mistake
// does not show its value.
func TestTokenIsRedacted(t *testing.T) {
	tok := Token{Value: "ghs_SECRETVALUE", ExpiresAt: time.Now()}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("token", "tok", tok)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("token", "tok", tok)
	out := fmt.Sprintf("%v %+v %#v %s %q", tok, tok, tok, tok, tok) + logged.String()

	if strings.Contains(out, "SECRET") {
		t.Errorf("the token shows in %s", out)
	}
	if !strings.Contains(logged.String(), "expires_at") {
		t.Errorf("the log does not say when the token expires: %s", logged.String())
	}
}

func TestHandleSupersedes(t *testing.T) {
	pushEv := push("main")
	syncEv := pullRequest("main")
	syncEv.Action = "synchronize"
	openedEv := pullRequest("main")
	closedEv := pullRequest("main")
	closedEv.Action = "closed"
	strangerEv := fork("CONTRIBUTOR")
	errCluster := errors.New("jobs.batch is forbidden")

	before := func(ev Event) []supersedeCall {
		return []supersedeCall{{ev.Delivery, ev.SHA, ev.Action, 0}}
	}

	tests := []struct {
		name  string
		ev    Event
		files map[string]string
		err   error

		wantCalls    []supersedeCall
		wantLaunches int
		wantErr      []error
	}{{
		name:         "push supersedes before it launches",
		ev:           pushEv,
		files:        map[string]string{pushEv.SHA: validConfig},
		wantCalls:    before(pushEv),
		wantLaunches: 3,
	}, {
		name:         "synchronize supersedes before it launches",
		ev:           syncEv,
		files:        map[string]string{syncEv.SHA: validConfig},
		wantCalls:    before(syncEv),
		wantLaunches: 2,
	}, {
		name:         "opened supersedes nothing",
		ev:           openedEv,
		files:        map[string]string{openedEv.SHA: validConfig},
		wantLaunches: 2,
	}, {
		name:      "closed cancels and starts nothing",
		ev:        closedEv,
		files:     map[string]string{closedEv.SHA: validConfig},
		wantCalls: before(closedEv),
	}, {
		name:      "closed reports a failure to cancel",
		ev:        closedEv,
		err:       errCluster,
		wantCalls: before(closedEv),
		wantErr:   []error{errCluster},
	}, {
		name:  "untrusted fork supersedes nothing",
		ev:    strangerEv,
		files: map[string]string{"main": validConfig},
	}, {
		name: "push without a config supersedes nothing",
		ev:   pushEv,
	}, {
		name:         "a failure to supersede still launches",
		ev:           pushEv,
		files:        map[string]string{pushEv.SHA: validConfig},
		err:          errCluster,
		wantCalls:    before(pushEv),
		wantLaunches: 3,
		wantErr:      []error{errCluster},
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, rec := newDispatcher(handleCase{files: tt.files})
			sup := &fakeSuperseder{launcher: rec.launcher, err: tt.err}
			d.Superseder = sup

			err := d.Handle(t.Context(), tt.ev)

			checkErr(t, err, tt.wantErr, nil)
			checkCalls(t, "Supersede", sup.calls, tt.wantCalls)
			if got := len(rec.launcher.calls); got != tt.wantLaunches {
				t.Errorf("launched %d runs, want %d", got, tt.wantLaunches)
			}
		})
	}
}

func TestHandleInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		file string
		// wantPrefix is the place the description must start with and
		// wantWord what it must name there; the wording is repoconfig's.
		// wantMore is the count it must end with, 0 for none.
		wantPrefix string
		wantWord   string
		wantMore   int
	}{{
		name: "one problem",
		file: "jobs:\n  - name: lint\n    imgae: golang:1.26\n" +
			"    image: golang:1.26\n    run: go vet\n",
		wantPrefix: ".yaci.yml:3:5: ",
		wantWord:   `"imgae"`,
	}, {
		name:       "several problems name the first",
		file:       "jobs:\n  - name: lint\n    imgae: golang:1.26\n    run: go vet\n",
		wantPrefix: ".yaci.yml:2:5: ",
		wantWord:   "image",
		wantMore:   1,
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := push("main")
			d, rec := newDispatcher(handleCase{files: map[string]string{ev.SHA: tt.file}})

			if err := d.Handle(t.Context(), ev); err != nil {
				t.Fatalf("Handle() = %v, want nil: a bad file is the user's, not an error", err)
			}

			checkCalls(t, "ReadFile", rec.configs.calls, []readCall{read(ev.SHA)})
			checkCalls(t, "CloneToken", rec.tokens.calls, nil)
			checkCalls(t, "Launch", rec.launcher.calls, nil)
			if len(rec.statuses.calls) != 1 {
				t.Fatalf("SetStatus calls = %+v, want one", rec.statuses.calls)
			}
			got := rec.statuses.calls[0]
			want := status(ev, StateError, ConfigContext, got.Status.Description, "")
			if got != want {
				t.Errorf("SetStatus = %+v, want %+v", got, want)
			}
			desc := got.Status.Description
			if !strings.HasPrefix(desc, tt.wantPrefix) {
				t.Errorf("description %q does not start with %q", desc, tt.wantPrefix)
			}
			if !strings.Contains(desc, tt.wantWord) {
				t.Errorf("description %q does not name %s", desc, tt.wantWord)
			}
			more := fmt.Sprintf(" (+%d more)", tt.wantMore)
			if hasMore := strings.HasSuffix(desc, more); hasMore != (tt.wantMore > 0) {
				t.Errorf("description %q: ends with %q = %v, want %v",
					desc, more, hasMore, tt.wantMore > 0)
			}
			if n := utf8.RuneCountInString(desc); n > maxDescription {
				t.Errorf("description is %d characters, GitHub takes %d", n, maxDescription)
			}
		})
	}
}

// TestHandleLogsUntrusted checks that holding back a fork's pull request
// is logged at Info naming the delivery once, whether the logger comes
// from ctx (intake's names the delivery) or is the default one.
func TestHandleLogsUntrusted(t *testing.T) {
	ev := fork("NONE")

	tests := []struct {
		name  string
		setup func(d *Dispatcher, w io.Writer)
	}{{
		name: "logger from ctx",
		setup: func(d *Dispatcher, w io.Writer) {
			d.Logger = func(context.Context) *slog.Logger {
				return slog.New(slog.NewJSONHandler(w, nil)).With("delivery", ev.Delivery)
			}
		},
	}, {
		name: "default logger",
		setup: func(d *Dispatcher, w io.Writer) {
			d.Logger = nil
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewJSONHandler(w, nil)))
			t.Cleanup(func() { slog.SetDefault(prev) })
		},
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			d, _ := newDispatcher(handleCase{files: map[string]string{"main": validConfig}})
			tt.setup(d, &buf)

			if err := d.Handle(t.Context(), ev); err != nil {
				t.Fatalf("Handle() = %v", err)
			}

			if !loggedApproval(t, buf.Bytes(), ev.Delivery) {
				t.Errorf("no Info line about approval naming delivery %q once in:\n%s",
					ev.Delivery, &buf)
			}
		})
	}
}

// loggedApproval reports whether the JSON log holds an Info line about
// approval that names delivery exactly once.
func loggedApproval(t *testing.T, log []byte, delivery string) bool {
	t.Helper()

	for line := range bytes.Lines(log) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		if rec["level"] == "INFO" && strings.Contains(msg, "approval") &&
			rec["delivery"] == delivery && bytes.Count(line, []byte(`"delivery"`)) == 1 {
			return true
		}
	}

	return false
}

func TestConfigProblem(t *testing.T) {
	long := strings.Repeat("é", 200)

	tests := []struct {
		name string
		err  error
		want string
	}{{
		name: "one problem",
		err: &repoconfig.ParseError{Problems: []repoconfig.Problem{
			{Line: 4, Column: 5, Message: "bad"},
		}},
		want: ".yaci.yml:4:5: bad",
	}, {
		name: "counts the rest",
		err: &repoconfig.ParseError{Problems: []repoconfig.Problem{
			{Line: 2, Column: 1, Message: "first"},
			{Line: 3, Column: 1, Message: "second"},
			{Line: 9, Column: 3, Message: "third"},
		}},
		want: ".yaci.yml:2:1: first (+2 more)",
	}, {
		name: "wrapped",
		err: fmt.Errorf("parse: %w", &repoconfig.ParseError{
			Problems: []repoconfig.Problem{{Line: 1, Column: 1, Message: "x"}}}),
		want: ".yaci.yml:1:1: x",
	}, {
		name: "long problem keeps its count",
		err: &repoconfig.ParseError{Problems: []repoconfig.Problem{
			{Line: 1, Column: 1, Message: long}, {Line: 2, Column: 1, Message: "y"},
		}},
		want: ".yaci.yml:1:1: " + strings.Repeat("é", 140-len(" (+1 more)")-16) + "… (+1 more)",
	}, {
		name: "other error",
		err:  errors.New("not yaml"),
		want: ".yaci.yml: not yaml",
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := configProblem(tt.err)
			if got != tt.want {
				t.Errorf("configProblem() = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > maxDescription {
				t.Errorf("configProblem() is %d characters, want at most %d", n, maxDescription)
			}
		})
	}
}

func TestPublicRunURL(t *testing.T) {
	for _, base := range []string{"https://ci.example", "https://ci.example/"} {
		if got, want := PublicRunURL(base)("yaci-x-1"), "https://ci.example/runs/yaci-x-1"; got != want {
			t.Errorf("PublicRunURL(%q) = %q, want %q", base, got, want)
		}
	}
}

// recorder gives a test the fakes behind a Dispatcher.
type recorder struct {
	configs  *fakeConfigs
	statuses *fakeStatuses
	tokens   *fakeTokens
	launcher *fakeLauncher
}

func newDispatcher(tt handleCase) (*Dispatcher, recorder) {
	rec := recorder{
		configs:  &fakeConfigs{files: tt.files, err: tt.readErr},
		statuses: &fakeStatuses{err: tt.statusErr},
		tokens:   &fakeTokens{token: testToken, err: tt.tokenErr},
		launcher: &fakeLauncher{existing: tt.existing, fail: tt.fail, queued: tt.queued, ahead: tt.ahead},
	}
	d := &Dispatcher{
		Configs:  rec.configs,
		Statuses: rec.statuses,
		Tokens:   rec.tokens,
		Launcher: rec.launcher,
		RunURL:   PublicRunURL(publicURL),
		Logger: func(context.Context) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		},
	}

	return d, rec
}

// fork returns a pull request into main from another repository, by an
// author with the given association.
func fork(association string) Event {
	ev := pullRequest("main")
	ev.Delivery = "d-fork-" + strings.ToLower(association)
	ev.SHA = "3333333333333333333333333333333333333333"
	ev.PullRequest.HeadRepo = Repo{Owner: "stranger", Name: "app"}
	ev.PullRequest.AuthorAssociation = association

	return ev
}

func read(ref string) readCall {
	return readCall{Inst: 42, Owner: "octo", Repo: "app", Path: ".yaci.yml", Ref: ref}
}

func runName(ev Event, job string) string {
	return Run{Event: ev, Job: repoconfig.Job{Name: job}, Attempt: 1}.Name()
}

func launches(ev Event, jobs ...string) []launchCall {
	var calls []launchCall
	for _, job := range jobs {
		calls = append(calls, launchCall{
			Name:    runName(ev, job),
			Job:     job,
			Repo:    "octo/app",
			SHA:     ev.SHA,
			Kind:    string(ev.Kind),
			Attempt: 1,
			Token:   testToken,
		})
	}

	return calls
}

func status(ev Event, state State, context, desc, url string) statusCall {
	return statusCall{
		Inst:  42,
		Owner: "octo",
		Repo:  "app",
		SHA:   ev.SHA,
		Status: Status{
			State:       state,
			Context:     context,
			Description: desc,
			TargetURL:   url,
		},
	}
}

// running is the pending status of a started run, linking to its page.
func running(ev Event, job, desc string) statusCall {
	kind := "push"
	if ev.Kind == repoconfig.EventPullRequest {
		kind = "pr"
	}

	return status(ev, StatePending, "yaci/"+kind+"/"+job, desc,
		"https://ci.example/runs/"+runName(ev, job))
}

func checkCalls[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()

	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s calls differ:\ngot:\n%s\nwant:\n%s", what, lines(got), lines(want))
}

func lines[T any](calls []T) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\t%+v\n", c)
	}
	if len(calls) == 0 {
		b.WriteString("\t(none)\n")
	}

	return b.String()
}

func checkErr(t *testing.T, err error, wantIs []error, wantText []string) {
	t.Helper()

	if len(wantIs) == 0 && len(wantText) == 0 {
		if err != nil {
			t.Errorf("Handle() = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Handle() = nil, want an error wrapping %v", wantIs)
	}
	for _, target := range wantIs {
		if !errors.Is(err, target) {
			t.Errorf("Handle() = %v, does not wrap %v", err, target)
		}
	}
	for _, text := range wantText {
		if !strings.Contains(err.Error(), text) {
			t.Errorf("Handle() = %v, does not name %q", err, text)
		}
	}
}

// unusableConfigs stands in for a reader that found a file it cannot
// return, such as one over the size limit.
type unusableConfigs struct{ fakeConfigs }

func (f *unusableConfigs) ReadFile(_ context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	f.calls = append(f.calls, readCall{inst, owner, repo, path, ref})
	return nil, fmt.Errorf("read %s: %w", path, &UnusableConfigError{Reason: "file is larger than 64 KiB"})
}

func TestHandleUnusableConfig(t *testing.T) {
	ev := push("main")
	d, rec := newDispatcher(handleCase{})
	configs := &unusableConfigs{}
	d.Configs = configs

	if err := d.Handle(t.Context(), ev); err != nil {
		t.Fatalf("Handle() = %v, want nil: an oversized file is the user's to fix", err)
	}

	checkCalls(t, "ReadFile", configs.calls, []readCall{read(ev.SHA)})
	checkCalls(t, "Launch", rec.launcher.calls, nil)
	checkCalls(t, "SetStatus", rec.statuses.calls, []statusCall{
		status(ev, StateError, ConfigContext, ".yaci.yml: file is larger than 64 KiB", ""),
	})
}
