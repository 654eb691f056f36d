package repoconfig

import (
	"reflect"
	"testing"
)

func TestJobWants(t *testing.T) {
	// job returns a job on the given events, filtered by branches.
	job := func(on []EventKind, branches ...string) Job {
		return Job{On: on, Branches: branches}
	}
	both := []EventKind{EventPush, EventPullRequest}
	push := []EventKind{EventPush}
	pr := []EventKind{EventPullRequest}

	tests := []struct {
		name   string
		job    Job
		kind   EventKind
		branch string
		want   bool
	}{
		{"default runs on push", job(both), EventPush, "main", true},
		{"default runs on pull request", job(both), EventPullRequest, "main", true},
		{"push only skips pull request", job(push), EventPullRequest, "main", false},
		{"pull request only skips push", job(pr), EventPush, "main", false},
		{"exact branch", job(both, "main"), EventPush, "main", true},
		{"other branch", job(both, "main"), EventPush, "dev", false},
		{"glob within a segment", job(both, "release/*"), EventPush, "release/1.2", true},
		{"star stops at slash", job(both, "release/*"), EventPush, "release/1/2", false},
		{"star alone stops at slash", job(both, "*"), EventPush, "feature/x", false},
		{"second pattern", job(both, "main", "v[0-9]*"), EventPush, "v2", true},
		{"escaped star is literal", job(both, `\*`), EventPush, "*", true},
		{"escaped star matches only itself", job(both, `\*`), EventPush, "main", false},
		{"branches ignored for pull request", job(both, "main"), EventPullRequest, "dev", true},
		{"malformed pattern matches nothing", job(both, "[main"), EventPush, "[main", false},
		{"no events", job(nil), EventPush, "main", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.job.Wants(tt.kind, tt.branch); got != tt.want {
				t.Errorf("Wants(%s, %q) = %v, want %v", tt.kind, tt.branch, got, tt.want)
			}
		})
	}
}

func TestConfigJobsFor(t *testing.T) {
	cfg, err := Parse([]byte(`
jobs:
  - {name: unit, image: alpine, run: make}
  - {name: release, image: alpine, run: make, on: push, branches: ["release/*"]}
  - {name: pr, image: alpine, run: make, on: pull_request}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}

	tests := []struct {
		kind   EventKind
		branch string
		want   []string
	}{
		{EventPush, "main", []string{"unit"}},
		{EventPush, "release/2", []string{"unit", "release"}},
		{EventPullRequest, "release/2", []string{"unit", "pr"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+" "+tt.branch, func(t *testing.T) {
			var got []string
			for _, j := range cfg.JobsFor(tt.kind, tt.branch) {
				got = append(got, j.Name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("JobsFor = %q, want %q", got, tt.want)
			}
		})
	}
}
