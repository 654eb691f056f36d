package launch

import (
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// RunEnv returns the environment of a run's script, in the order the run
// container gets it: the job's own variables (less any name yaci
// reserves), then CI, HOME, YACI and the YACI_* variables that describe
// the event. "yaci run" starts from it so a job sees the same names on a
// laptop as in the cluster; HOME is the pod's path, for the caller to
// replace.
func RunEnv(run trigger.Run) []repoconfig.EnvVar {
	vars := runEnv(run)
	env := make([]repoconfig.EnvVar, len(vars))
	for i, v := range vars {
		env[i] = repoconfig.EnvVar{Name: v.Name, Value: v.Value}
	}

	return env
}
