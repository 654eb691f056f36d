package launch_test

import (
	"testing"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// TestRunEnv checks that RunEnv is exactly the run container's
// environment, for both kinds of event, so "yaci run" cannot drift from
// what the cluster gives a job.
func TestRunEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  trigger.Run
	}{{"push", pushRun()}, {"pull request", prRun()}} {
		t.Run(tt.name, func(t *testing.T) {
			job, err := launch.BuildJob(tt.run, testOptions)
			if err != nil {
				t.Fatal(err)
			}
			want := container(t, job, launch.RunContainer).Env

			got := launch.RunEnv(tt.run)
			if len(got) != len(want) {
				t.Fatalf("RunEnv has %d variables, the run container %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Name != want[i].Name || got[i].Value != want[i].Value {
					t.Errorf("variable %d = %s=%q, container has %s=%q",
						i, got[i].Name, got[i].Value, want[i].Name, want[i].Value)
				}
			}
		})
	}
}
