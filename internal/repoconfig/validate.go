package repoconfig

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid config")

// Validate checks a Config by the rules Parse applies to a file, for a
// Config built in code rather than parsed (tests, "yaci run" flags). A
// Config returned by Parse always passes. The error wraps
// ErrInvalidConfig and names each job by its position and name.
func (c *Config) Validate() error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}

	switch {
	case len(c.Jobs) == 0:
		fail("no jobs")
	case len(c.Jobs) > MaxJobs:
		fail("%d jobs; at most %d are allowed", len(c.Jobs), MaxJobs)
	}
	if c.Parallel < 0 || c.Parallel > MaxParallel {
		fail("parallel %d is outside 0 to %d", c.Parallel, MaxParallel)
	}
	firstUse := make(map[string]int, len(c.Jobs))
	for i, j := range c.Jobs {
		for _, msg := range j.problems() {
			fail("job %d %s: %s", i+1, quote(j.Name), msg)
		}
		if first, dup := firstUse[j.Name]; dup {
			fail("job %d %s: name is already used by job %d", i+1, quote(j.Name), first)
			continue
		}
		firstUse[j.Name] = i + 1
	}

	return errors.Join(errs...)
}

// problems lists what is wrong with one job on its own.
func (j Job) problems() []string {
	msgs := []string{checkName(j.Name), checkImage(j.Image), checkRun(j.Run)}
	seen := make(map[string]bool, len(j.Env))
	for _, e := range j.Env {
		msgs = append(msgs, checkEnvName(e.Name))
		if seen[e.Name] {
			msgs = append(msgs, fmt.Sprintf("env name %s appears twice", quote(e.Name)))
		}
		seen[e.Name] = true
	}
	if j.Timeout != 0 {
		msgs = append(msgs, checkTimeout(j.Timeout, j.Timeout.String()))
	}
	if len(j.On) == 0 {
		msgs = append(msgs, "on must list at least one event")
	}
	for i, kind := range j.On {
		msgs = append(msgs, checkEvent(string(kind)))
		if slices.Contains(j.On[:i], kind) {
			msgs = append(msgs, fmt.Sprintf("on: event %s appears twice", quote(string(kind))))
		}
	}
	for _, b := range j.Branches {
		msgs = append(msgs, checkBranch(b))
	}
	msgs = append(msgs, checkBranchesNeedPush(j.On, j.Branches))
	if j.Resources.CPU != "" {
		msgs = append(msgs, checkQuantity("cpu", j.Resources.CPU, quantityExample["cpu"]))
	}
	if j.Resources.Memory != "" {
		msgs = append(msgs, checkQuantity("memory", j.Resources.Memory,
			quantityExample["memory"]))
	}

	return slices.DeleteFunc(msgs, func(m string) bool { return m == "" })
}
