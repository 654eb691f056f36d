package repoconfig

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := func() Job {
		return Job{Name: "test", Image: "alpine", Run: "make", On: []EventKind{EventPush}}
	}
	with := func(change func(*Job)) *Config {
		j := good()
		change(&j)
		return &Config{Jobs: []Job{j}}
	}

	many := func(n int) *Config {
		cfg := &Config{}
		for i := range n {
			j := good()
			j.Name = fmt.Sprintf("job-%d", i)
			cfg.Jobs = append(cfg.Jobs, j)
		}
		return cfg
	}

	tests := []struct {
		name string
		cfg  *Config
		want []string // each line of the error, "" for none
	}{
		{"valid", with(func(*Job) {}), nil},
		{"no jobs", &Config{}, []string{"invalid config: no jobs"}},
		{"too many jobs", many(MaxJobs + 1), []string{"invalid config: 33 jobs; at most 32 are allowed"}},
		{"MaxJobs jobs", many(MaxJobs), nil},
		{"bad name", with(func(j *Job) { j.Name = "Test" }),
			[]string{`invalid config: job 1 "Test": name "Test" is not a DNS label: use lowercase letters, digits and '-', starting and ending with a letter or digit`}},
		{"duplicate name", &Config{Jobs: []Job{good(), good()}},
			[]string{`invalid config: job 2 "test": name is already used by job 1`}},
		{"no image", with(func(j *Job) { j.Image = "" }),
			[]string{`invalid config: job 1 "test": image must not be empty`}},
		{"blank run", with(func(j *Job) { j.Run = " " }),
			[]string{`invalid config: job 1 "test": run must not be empty`}},
		{"env", with(func(j *Job) { j.Env = []EnvVar{{"HOME", "/"}, {"A", "1"}, {"A", "2"}} }),
			[]string{
				`invalid config: job 1 "test": env name "HOME" is reserved: yaci sets it`,
				`invalid config: job 1 "test": env name "A" appears twice`,
			}},
		{"timeout", with(func(j *Job) { j.Timeout = -time.Second }),
			[]string{`invalid config: job 1 "test": timeout "-1s" must be positive`}},
		{"no events", with(func(j *Job) { j.On = nil }),
			[]string{`invalid config: job 1 "test": on must list at least one event`}},
		{"repeated event", with(func(j *Job) { j.On = []EventKind{EventPush, EventPush} }),
			[]string{`invalid config: job 1 "test": on: event "push" appears twice`}},
		{"unknown event", with(func(j *Job) { j.On = []EventKind{"tag"} }),
			[]string{`invalid config: job 1 "test": on: unknown event "tag"; want push or pull_request`}},
		{"branches without push", with(func(j *Job) {
			j.On, j.Branches = []EventKind{EventPullRequest}, []string{"main"}
		}), []string{`invalid config: job 1 "test": branches filters push events only, but on does not include push`}},
		{"bad resources", with(func(j *Job) { j.Resources = Resources{CPU: "x", Memory: "0"} }),
			[]string{
				`invalid config: job 1 "test": resources: cpu "x" is not a Kubernetes quantity like 500m or 2`,
				`invalid config: job 1 "test": resources: memory "0" must be positive`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want an error wrapping ErrInvalidConfig", err)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Validate:\n got %s\nwant %s", got, want)
			}
		})
	}
}
