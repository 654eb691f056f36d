package trigger

import (
	"slices"
	"testing"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

func TestPlan(t *testing.T) {
	both := []repoconfig.EventKind{repoconfig.EventPush, repoconfig.EventPullRequest}
	pushOnly := []repoconfig.EventKind{repoconfig.EventPush}
	prOnly := []repoconfig.EventKind{repoconfig.EventPullRequest}

	cfg := &repoconfig.Config{Jobs: []repoconfig.Job{
		{Name: "lint", On: both},
		{Name: "deploy", On: pushOnly, Branches: []string{"main"}},
		{Name: "release", On: both, Branches: []string{"release/*", "v[0-9]*"}},
		{Name: "review", On: prOnly},
		{Name: "bad-glob", On: pushOnly, Branches: []string{"[main"}},
	}}

	tests := []struct {
		name string
		ev   Event
		want []string
	}{
		{"push to main", push("main"), []string{"lint", "deploy"}},
		{"push to a feature branch", push("feature"), []string{"lint"}},
		{"push matching a directory glob", push("release/1.2"),
			[]string{"lint", "release"}},
		{"star stops at a slash", push("release/1.2/hotfix"), []string{"lint"}},
		{"push matching a class glob", push("v2"), []string{"lint", "release"}},
		{"globs are case-sensitive", push("Main"), []string{"lint"}},
		{"pull request ignores branch globs", pullRequest("feature"),
			[]string{"lint", "release", "review"}},
		{"unknown kind runs nothing", Event{Kind: "issues", Branch: "main"}, nil},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := Plan(tt.ev, cfg)

			var got []string
			for _, r := range runs {
				got = append(got, r.Job.Name)
				if r.Attempt != 1 {
					t.Errorf("run %s: attempt = %d, want 1", r.Job.Name, r.Attempt)
				}
				if r.Event.SHA != tt.ev.SHA || r.Event.Kind != tt.ev.Kind {
					t.Errorf("run %s: event = %+v, want %+v", r.Job.Name, r.Event, tt.ev)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Plan() jobs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPlanNilConfig(t *testing.T) {
	if runs := Plan(push("main"), nil); runs != nil {
		t.Errorf("Plan(nil config) = %v, want nil", runs)
	}
}

func TestPlanKeepsJobFields(t *testing.T) {
	job := repoconfig.Job{
		Name:  "test",
		Image: "golang:1.26",
		Run:   "go test ./...",
		On:    []repoconfig.EventKind{repoconfig.EventPush},
		Env:   []repoconfig.EnvVar{{Name: "CGO_ENABLED", Value: "0"}},
	}

	runs := Plan(push("main"), &repoconfig.Config{Jobs: []repoconfig.Job{job}})
	if len(runs) != 1 {
		t.Fatalf("Plan() = %d runs, want 1", len(runs))
	}
	if got := runs[0]; got.Job.Image != job.Image || got.Job.Run != job.Run ||
		!slices.Equal(got.Job.Env, job.Env) {
		t.Errorf("Plan() job = %+v, want %+v", got.Job, job)
	}
}

// push returns a push event to branch on a fixed repository and commit.
func push(branch string) Event {
	return Event{
		Delivery:       "d-push",
		Kind:           repoconfig.EventPush,
		Repo:           Repo{Owner: "octo", Name: "app"},
		InstallationID: 42,
		SHA:            "1111111111111111111111111111111111111111",
		Ref:            "refs/heads/" + branch,
		Branch:         branch,
	}
}

// pullRequest returns an "opened" pull request event from a branch of the
// base repository into base.
func pullRequest(base string) Event {
	repo := Repo{Owner: "octo", Name: "app"}

	return Event{
		Delivery:       "d-pr",
		Kind:           repoconfig.EventPullRequest,
		Action:         "opened",
		Repo:           repo,
		InstallationID: 42,
		SHA:            "2222222222222222222222222222222222222222",
		Ref:            "refs/pull/7/head",
		Branch:         base,
		PullRequest: &PullRequest{
			Number:            7,
			HeadRepo:          repo,
			HeadRef:           "topic",
			BaseRef:           base,
			Author:            "octocat",
			AuthorAssociation: "CONTRIBUTOR",
		},
	}
}

// TestPlanCarriesParallel checks that the config's limit on runs at once
// reaches every run, without changing the runs' names.
func TestPlanCarriesParallel(t *testing.T) {
	ev := Event{Kind: repoconfig.EventPush, Repo: Repo{Owner: "o", Name: "r"}, SHA: "abc", Branch: "main"}
	job := repoconfig.Job{Name: "a", Image: "x", Run: "y",
		On: []repoconfig.EventKind{repoconfig.EventPush}}
	limited := Plan(ev, &repoconfig.Config{Jobs: []repoconfig.Job{job}, Parallel: 2})
	plain := Plan(ev, &repoconfig.Config{Jobs: []repoconfig.Job{job}})
	if len(limited) != 1 || limited[0].Parallel != 2 || plain[0].Parallel != 0 {
		t.Fatalf("Parallel = %+v / %+v, want 2 and 0", limited, plain)
	}
	if limited[0].Name() != plain[0].Name() {
		t.Error("the limit changed the run's name")
	}
}
