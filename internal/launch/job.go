package launch

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// Names of the two containers of a run's pod. The watcher reads the run
// container's log; the clone container's log explains a failed checkout.
const (
	CloneContainer = "clone"
	RunContainer   = "run"
)

// Paths inside the pod.
const (
	workspaceDir = "/workspace"
	homeDir      = "/tmp"
	tokenDir     = "/var/run/yaci/clone"
)

// SecretTokenKey is the key of the clone token in a run's Secret.
const SecretTokenKey = "token"

// Volume names of a run's pod.
const (
	workspaceVolume = "workspace"
	homeVolume      = "home"
	tokenVolume     = "clone-token"
)

// tokenFileMode is the clone token's file mode. The kubelet makes the file
// root-owned and, because the pod sets fsGroup, gives it that group: the
// non-root clone container reads it through the group bit, and nobody else
// can read it at all.
const tokenFileMode int32 = 0o440

// cloneScript checks out the run's commit into the workspace. It is a
// constant on purpose: every value it needs (URL, commit, ref, paths) comes
// from the environment, so no branch name, title or message can become
// shell text. It fetches the commit by id, which GitHub serves for any
// commit reachable from the repository's refs, pull request heads
// (refs/pull/N/head) of the base repository included; only if that fails
// does it fetch the ref. The safe.directory line goes to $HOME/.gitconfig,
// which the run container shares (HOME is the same emptyDir there), because
// the workspace is owned by root while both containers run as a non-root
// uid.
const cloneScript = `set -eu
case "$YACI_SHA" in
*[!0-9a-f]*) echo "yaci: YACI_SHA is not a commit id" >&2; exit 2 ;;
esac
if [ "${#YACI_SHA}" -ne 40 ]; then
  echo "yaci: YACI_SHA is not a full commit id" >&2; exit 2
fi
git config --global safe.directory "$YACI_WORKSPACE"
git config --global advice.detachedHead false
git config --global init.defaultBranch main
git init -q "$YACI_WORKSPACE"
cd "$YACI_WORKSPACE"
git remote add origin "$YACI_CLONE_URL"
if ! git fetch -q --no-tags --depth=1 origin "$YACI_SHA"; then
  if [ -z "${YACI_CLONE_REF:-}" ]; then
    echo "yaci: cannot fetch $YACI_SHA and no ref to fall back on" >&2; exit 1
  fi
  echo "yaci: fetching $YACI_SHA by id failed; fetching $YACI_CLONE_REF" >&2
  git fetch -q --no-tags origin "+$YACI_CLONE_REF:refs/yaci/head"
fi
git checkout -q --detach "$YACI_SHA"
git log -1 --format='yaci: checked out %H'
`

// credentialHelper answers git's credential requests from the token file.
// It is constant text handed to git through GIT_CONFIG_* variables of the
// clone container only, so the token is read at run time and never appears
// in the Job, a command line or the run container's configuration. GitHub
// accepts an installation token as the password of any user name.
const credentialHelper = `!f() { test "$1" = get || return 0; ` +
	`t=$(cat "$YACI_CLONE_TOKEN_FILE" 2>/dev/null) || return 0; ` +
	`test -n "$t" || return 0; echo username=x-access-token; echo "password=$t"; }; f`

// ErrInvalidRun is wrapped by BuildJob's errors for a run that cannot
// safely become a Job.
var ErrInvalidRun = errors.New("launch: invalid run")

// BuildJob returns the Job that runs run, created suspended: Launch starts
// it only once its clone Secret exists. It fails, wrapping ErrInvalidRun,
// for a run whose commit, clone URL, image or resources are unusable.
func BuildJob(run trigger.Run, o Options) (*batchv1.Job, error) {
	o = o.withDefaults()
	if err := checkRun(run); err != nil {
		return nil, fmt.Errorf("build job %s: %w", run.Name(), err)
	}
	res, err := resources(run.Job.Resources, o)
	if err != nil {
		return nil, fmt.Errorf("build job %s: %w", run.Name(), err)
	}

	labels := labelsFor(run)
	deadline := int64(math.Ceil(o.timeout(run.Job.Timeout).Seconds()))
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        run.Name(),
			Namespace:   o.Namespace,
			Labels:      labels,
			Annotations: annotationsFor(run),
			Finalizers:  []string{Finalizer},
		},
		Spec: batchv1.JobSpec{
			// A CI job that failed is reported, not retried: a retry is
			// a new attempt, asked for by a user.
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To(deadline),
			TTLSecondsAfterFinished: ptr.To(int32(o.TTLAfterFinished.Seconds())),
			Suspend:                 ptr.To(true),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec:       podSpec(run, o, res),
			},
		},
	}

	return job, nil
}

// checkRun rejects what would make a Job unsafe or unusable. Most of it
// cannot happen with events that came from GitHub; it is checked here
// because the clone URL and commit reach git, whatever produced them.
func checkRun(run trigger.Run) error {
	ev := run.Event
	if !IsCommitID(ev.SHA) {
		return fmt.Errorf("commit %q is not a full commit id: %w", ev.SHA, ErrInvalidRun)
	}
	// Only https: git's other transports (ext::, file://, ssh) run
	// commands or read the pod's own files.
	u, err := url.Parse(ev.Repo.CloneURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("clone url %q is not a plain https url: %w",
			ev.Repo.CloneURL, ErrInvalidRun)
	}
	if ev.Repo.Owner == "" || ev.Repo.Name == "" {
		return fmt.Errorf("repository %q has no owner or name: %w",
			ev.Repo.FullName(), ErrInvalidRun)
	}
	if run.Job.Name == "" || run.Job.Image == "" {
		return fmt.Errorf("job %q has no name or image: %w", run.Job.Name, ErrInvalidRun)
	}
	if run.Attempt < 1 {
		return fmt.Errorf("attempt %d is not positive: %w", run.Attempt, ErrInvalidRun)
	}

	switch ev.Kind {
	case repoconfig.EventPush:
	case repoconfig.EventPullRequest:
		if ev.PullRequest == nil || ev.PullRequest.Number < 1 {
			return fmt.Errorf("pull request event without a pull request: %w", ErrInvalidRun)
		}
	default:
		return fmt.Errorf("event kind %q: %w", ev.Kind, ErrInvalidRun)
	}

	return nil
}

// resources returns the job's CPU and memory as both request and limit,
// or the defaults of o for what the job leaves unset.
func resources(r repoconfig.Resources, o Options) (corev1.ResourceRequirements, error) {
	list := corev1.ResourceList{}
	for name, asked := range map[corev1.ResourceName]string{
		corev1.ResourceCPU:    orDefault(r.CPU, o.DefaultCPU),
		corev1.ResourceMemory: orDefault(r.Memory, o.DefaultMemory),
	} {
		q, err := resource.ParseQuantity(asked)
		if err != nil {
			return corev1.ResourceRequirements{}, fmt.Errorf("%s %q: %w",
				name, asked, errors.Join(err, ErrInvalidRun))
		}
		list[name] = q
	}

	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}, nil
}

// orDefault returns asked, or def when asked is empty.
func orDefault(asked, def string) string {
	if asked != "" {
		return asked
	}

	return def
}

// podSpec returns the spec of a run's pod: the clone init container, the
// run container, and the volumes they share.
func podSpec(run trigger.Run, o Options, res corev1.ResourceRequirements) corev1.PodSpec {
	uid := o.RunAsUser

	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		// A CI script has no business with the cluster's API or its
		// services; a job that needs a service starts its own.
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true),
			RunAsUser:    ptr.To(uid),
			RunAsGroup:   ptr.To(uid),
			// fsGroup lets the non-root uid read the root-owned token
			// file (see tokenFileMode) and write the emptyDirs.
			FSGroup:        ptr.To(uid),
			SeccompProfile: runtimeDefault(),
		},
		InitContainers: []corev1.Container{cloneContainer(run, o, res)},
		Containers:     []corev1.Container{runContainer(run, o, res)},
		Volumes: []corev1.Volume{
			{Name: workspaceVolume, VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{},
			}},
			{Name: homeVolume, VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{},
			}},
			{Name: tokenVolume, VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{
					SecretName:  SecretName(run),
					Items:       []corev1.KeyToPath{{Key: SecretTokenKey, Path: SecretTokenKey}},
					DefaultMode: ptr.To(tokenFileMode),
				},
			}},
		},
	}
}

// cloneContainer returns the init container that checks out the commit.
// It gets the run's resources: a pod's request is the larger of its init
// and regular containers', so this costs nothing more and lets a large
// clone use what the job may.
func cloneContainer(run trigger.Run, o Options, res corev1.ResourceRequirements) corev1.Container {
	ev := run.Event
	sc := containerSecurity(o.RunAsUser)
	// git writes only to the two emptyDirs.
	sc.ReadOnlyRootFilesystem = ptr.To(true)

	return corev1.Container{
		Name:       CloneContainer,
		Image:      o.CloneImage,
		Command:    []string{"sh", "-c", cloneScript},
		WorkingDir: homeDir,
		Env: []corev1.EnvVar{
			{Name: "HOME", Value: homeDir},
			{Name: "GIT_TERMINAL_PROMPT", Value: "0"},
			{Name: "GIT_ALLOW_PROTOCOL", Value: "https"},
			// The first, empty helper clears any the image configures.
			{Name: "GIT_CONFIG_COUNT", Value: "2"},
			{Name: "GIT_CONFIG_KEY_0", Value: "credential.helper"},
			{Name: "GIT_CONFIG_VALUE_0", Value: ""},
			{Name: "GIT_CONFIG_KEY_1", Value: "credential.helper"},
			{Name: "GIT_CONFIG_VALUE_1", Value: credentialHelper},
			{Name: "YACI_WORKSPACE", Value: workspaceDir},
			{Name: "YACI_CLONE_TOKEN_FILE", Value: tokenDir + "/" + SecretTokenKey},
			{Name: "YACI_CLONE_URL", Value: ev.Repo.CloneURL},
			{Name: "YACI_SHA", Value: ev.SHA},
			{Name: "YACI_CLONE_REF", Value: ev.Ref},
		},
		Resources: *res.DeepCopy(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: workspaceVolume, MountPath: workspaceDir},
			{Name: homeVolume, MountPath: homeDir},
			{Name: tokenVolume, MountPath: tokenDir, ReadOnly: true},
		},
		SecurityContext: sc,
	}
}

// runContainer returns the container that runs the job's script.
func runContainer(run trigger.Run, o Options, res corev1.ResourceRequirements) corev1.Container {
	return corev1.Container{
		Name:  RunContainer,
		Image: run.Job.Image,
		// The script is the repository's own config; event data reaches
		// it only through the environment.
		Command:    []string{"sh", "-e", "-c", run.Job.Run},
		WorkingDir: workspaceDir,
		Env:        runEnv(run),
		Resources:  *res.DeepCopy(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: workspaceVolume, MountPath: workspaceDir},
			{Name: homeVolume, MountPath: homeDir},
		},
		SecurityContext: containerSecurity(o.RunAsUser),
	}
}

// runEnv returns the run container's environment: the job's own variables,
// then yaci's. A job variable with a name yaci reserves (CI, HOME, YACI*)
// is dropped rather than listed twice, so yaci's value is the only one.
// Event data (branch names, titles, messages) appears here as values only.
func runEnv(run trigger.Run) []corev1.EnvVar {
	ev := run.Event
	var env []corev1.EnvVar
	for _, v := range run.Job.Env {
		if !repoconfig.ReservedEnv(v.Name) {
			env = append(env, corev1.EnvVar{Name: v.Name, Value: v.Value})
		}
	}

	env = append(env,
		corev1.EnvVar{Name: "CI", Value: "true"},
		corev1.EnvVar{Name: "HOME", Value: homeDir},
		corev1.EnvVar{Name: "YACI", Value: "true"},
		corev1.EnvVar{Name: "YACI_REPO", Value: ev.Repo.FullName()},
		corev1.EnvVar{Name: "YACI_SHA", Value: ev.SHA},
		corev1.EnvVar{Name: "YACI_REF", Value: ev.Ref},
		corev1.EnvVar{Name: "YACI_BRANCH", Value: ev.Branch},
		corev1.EnvVar{Name: "YACI_EVENT", Value: string(ev.Kind)},
		corev1.EnvVar{Name: "YACI_JOB", Value: run.Job.Name},
		corev1.EnvVar{Name: "YACI_RUN", Value: run.Name()},
		corev1.EnvVar{Name: "YACI_DELIVERY", Value: ev.Delivery},
	)
	if pr := ev.PullRequest; ev.Kind == repoconfig.EventPullRequest && pr != nil {
		env = append(env,
			corev1.EnvVar{Name: "YACI_PR_NUMBER", Value: strconv.Itoa(pr.Number)},
			corev1.EnvVar{Name: "YACI_PR_TITLE", Value: pr.Title},
			corev1.EnvVar{Name: "YACI_PR_HEAD_REF", Value: pr.HeadRef},
		)
	}
	if ev.Kind == repoconfig.EventPush {
		env = append(env, corev1.EnvVar{Name: "YACI_COMMIT_MESSAGE", Value: ev.Message})
	}

	return env
}

// containerSecurity returns a container security context that meets the
// restricted Pod Security Standard on its own, whatever the pod sets.
func containerSecurity(uid int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(uid),
		RunAsGroup:               ptr.To(uid),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           runtimeDefault(),
	}
}

// runtimeDefault returns the container runtime's default seccomp profile,
// which the restricted standard asks for.
func runtimeDefault() *corev1.SeccompProfile {
	return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
}

// SecretName returns the name of a run's clone Secret.
func SecretName(run trigger.Run) string {
	return run.Name() + "-clone"
}

// BuildSecret returns the Secret that holds run's clone token, owned by
// job (which must carry the UID the API server gave it) so that deleting
// the Job, or its TTL running out, deletes the token too. Its
// AnnotationTokenExpires says when the token expires.
func BuildSecret(run trigger.Run, tok trigger.Token, job *batchv1.Job, o Options) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        SecretName(run),
			Namespace:   o.Namespace,
			Labels:      labelsFor(run),
			Annotations: tokenAnnotations(tok),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion:         "batch/v1",
				Kind:               "Job",
				Name:               job.Name,
				UID:                job.UID,
				Controller:         ptr.To(false),
				BlockOwnerDeletion: ptr.To(true),
			}},
		},
		// Immutable: the kubelet need not watch it, and nobody can swap
		// the token of a running clone.
		Immutable: ptr.To(true),
		Type:      corev1.SecretTypeOpaque,
		Data:      map[string][]byte{SecretTokenKey: []byte(tok.Value)},
	}
}
