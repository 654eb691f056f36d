package localrun

import (
	"crypto/rand"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// gitRepoVars tell git which repository to use. Inherited from a hook or
// a shell that set them, they would point yaci's git commands, and a
// job's, at another repository than the job's checkout.
var gitRepoVars = []string{
	"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
}

// notInherited are the names a job never gets from this machine: those
// yaci sets (with every YACI* name), and the shell's idea of the current
// folder, which is the job's own.
var notInherited = []string{"CI", "HOME", "PWD", "OLDPWD"}

// gitEnv returns environ without git's repository variables: the
// environment of yaci's own git commands.
func gitEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(gitRepoVars, name) {
			env = append(env, kv)
		}
	}

	return env
}

// baseEnv returns what a job inherits from this machine: environ less
// git's repository variables and notInherited, plus where this user's
// caches and Go settings are. A job's HOME is fresh and empty, as in the
// cluster, so that no dotfile (a .gitconfig, a .netrc) leaks in; but a
// cold build cache would make every local run a full rebuild, and the
// caches are shared safely. Locations environ sets already are kept.
func baseEnv(environ []string) []string {
	var env []string
	set := make(map[string]bool)
	for _, kv := range gitEnv(environ) {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(notInherited, name) && !strings.HasPrefix(name, "YACI") {
			env = append(env, kv)
			set[name] = true
		}
	}

	for _, loc := range sharedLocations() {
		if !set[loc.name] && loc.value != "" {
			env = append(env, loc.name+"="+loc.value)
		}
	}

	return env
}

// sharedLocations returns, for this process's user, the cache and
// settings locations that would otherwise follow HOME: the XDG cache
// (most tools' caches), Go's build cache, GOPATH (its module cache) and
// Go's settings file (go env -w). A location that cannot be worked out
// is left empty.
func sharedLocations() []envVar {
	var cache, goCache, goEnv string
	if dir, err := os.UserCacheDir(); err == nil {
		cache, goCache = dir, filepath.Join(dir, "go-build")
	}
	if dir, err := os.UserConfigDir(); err == nil {
		goEnv = filepath.Join(dir, "go", "env")
	}

	return []envVar{
		{"XDG_CACHE_HOME", cache},
		{"GOCACHE", goCache},
		{"GOPATH", build.Default.GOPATH},
		{"GOENV", goEnv},
	}
}

// envVar is one name and value of an environment.
type envVar struct{ name, value string }

// jobEnv returns the environment of one job's script: base, then the
// variables the cluster sets (the job's env and yaci's), with HOME the
// job's own fresh folder and PWD the folder it runs in. A later name
// replaces an earlier one in place.
func jobEnv(base []string, vars []repoconfig.EnvVar, dir, home, repoName string) []string {
	env := append([]string(nil), base...)
	index := make(map[string]int, len(env))
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		index[name] = i
	}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			env[i] = name + "=" + value
			return
		}
		index[name] = len(env)
		env = append(env, name+"="+value)
	}

	for _, v := range vars {
		set(v.Name, v.Value)
	}
	set("HOME", home)
	set("PWD", dir)
	// The cluster's YACI_REPO is always owner/name; a local repository
	// may have no owner.
	set("YACI_REPO", repoName)

	return env
}

// clusterVars returns the variables the cluster gives the job's script.
func clusterVars(repo repository, job repoconfig.Job, delivery string) []repoconfig.EnvVar {
	return launch.RunEnv(repo.run(job, delivery))
}

// newDelivery returns a random id in the GUID form of GitHub's delivery
// ids, the YACI_DELIVERY of every job of one local run.
func newDelivery() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80

	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
