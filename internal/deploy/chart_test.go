package deploy

import (
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// goldenNamespace is the release namespace of the golden renders.
const goldenNamespace = "ci"

// fullValues turn on every optional part of the chart: ingress with TLS,
// ServiceMonitor, persistence shared by two replicas with leader election,
// an existing Secret, App auth with the id as a value, and Jobs in their
// own namespace.
func fullValues(jobNamespace string) map[string]any {
	return map[string]any{
		"replicaCount":   2,
		"jobNamespace":   jobNamespace,
		"leaderElection": map[string]any{"enabled": true},
		"github": map[string]any{
			"auth": "app", "appID": 4242, "existingSecret": "yaci-github-app",
		},
		"persistence": map[string]any{
			"enabled": true, "accessModes": []any{"ReadWriteMany"}, "size": "20Gi",
			"storageClass": "shared-nfs",
		},
		"ingress": map[string]any{
			"enabled": true, "className": "nginx", "host": "ci.example.com",
			"tls": map[string]any{"enabled": true, "secretName": "ci-example-com-tls"},
		},
		"metrics": map[string]any{
			"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}},
		},
	}
}

// TestLint runs the Helm SDK's lint, which is "helm lint", with the default
// and the full values: nothing above INFO may come back.
func TestLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"default": nil,
		"full":    fullValues("ci-jobs"),
	} {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = goldenNamespace
			res := lint.Run([]string{chartDir}, values)

			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
			for _, err := range res.Errors {
				t.Errorf("lint error: %v", err)
			}
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("lint: %s", m)
				} else {
					t.Logf("lint: %s", m)
				}
			}
		})
	}
}

// TestLintChecksValues makes sure the lint above checks the values it is
// given, so that its clean result means something: values the schema
// refuses must come back as a lint error. (In lint mode Helm turns the
// templates' fail calls into no-ops; TestRenderRefuses covers those.)
func TestLintChecksValues(t *testing.T) {
	lint := action.NewLint()
	lint.Namespace = goldenNamespace
	res := lint.Run([]string{chartDir}, map[string]any{"replicas": 2})

	var found bool
	for _, err := range res.Errors {
		found = found || strings.Contains(err.Error(), "replicas")
	}
	if !found {
		t.Errorf("lint of the misspelt key replicas gave errors %v, want the schema's refusal", res.Errors)
	}

	res = lint.Run([]string{chartDir}, map[string]any{"goMemLimit": "80 megabytes"})
	found = false
	for _, err := range res.Errors {
		found = found || strings.Contains(err.Error(), "goMemLimit")
	}
	if !found {
		t.Errorf("lint of a goMemLimit Go cannot read gave errors %v, want the schema's refusal", res.Errors)
	}
}

func TestRenderDefault(t *testing.T) {
	r := render(t, goldenNamespace, nil)

	want := []string{"ServiceAccount/yaci", "Role/yaci", "RoleBinding/yaci", "Service/yaci",
		"Deployment/yaci"}
	if got := r.kinds(); !sameSet(got, want) {
		t.Errorf("rendered %v, want %v", got, want)
	}

	var dep appsv1.Deployment
	r.object(t, "Deployment", &dep)
	c := yaciContainer(t, &dep)
	for _, arg := range []string{
		"serve", "--namespace=ci", "--webhook-secret-file=/etc/yaci/github/webhook-secret",
		"--github-app-key-file=/etc/yaci/github/app-key.pem", "--data-dir=/var/lib/yaci",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %q", c.Args, arg)
		}
	}
	// Without github.appID the id comes from the Secret, not a flag.
	if hasArgPrefix(c.Args, "--github-app-id") {
		t.Errorf("args %q pass an App id although github.appID is unset", c.Args)
	}
	id := envVar(c, "YACI_GITHUB_APP_ID")
	if id == nil || id.ValueFrom == nil || id.ValueFrom.SecretKeyRef == nil ||
		id.ValueFrom.SecretKeyRef.Name != "yaci-github" || id.ValueFrom.SecretKeyRef.Key != "app-id" {
		t.Errorf("YACI_GITHUB_APP_ID is %+v, want it from Secret yaci-github, key app-id", id)
	}
	// The soft memory limit keeps the collector's slack small; it must
	// sit below the container's hard limit, or the kernel ends yaci
	// before the runtime reacts.
	lim := envVar(c, "GOMEMLIMIT")
	if lim == nil {
		t.Error("no GOMEMLIMIT in the container's environment")
	} else if soft, err := resource.ParseQuantity(strings.TrimSuffix(lim.Value, "B")); err != nil {
		t.Errorf("GOMEMLIMIT %q: %v", lim.Value, err)
	} else if hard := c.Resources.Limits.Memory(); hard.Cmp(soft) <= 0 {
		t.Errorf("GOMEMLIMIT %s is not below the memory limit %s", lim.Value, hard)
	}
	if v := volume(t, &dep, "data"); v.EmptyDir == nil {
		t.Errorf("data volume %+v, want an emptyDir without persistence", v)
	}

	var role rbacv1.Role
	r.object(t, "Role", &role)
	if ruleFor(role, "coordination.k8s.io", "leases") {
		t.Error("the Role grants Leases although leader election is off")
	}
	if !strings.Contains(r.notes, "Not reachable from GitHub yet") {
		t.Errorf("NOTES do not say the webhook is unreachable without publicURL or ingress:\n%s", r.notes)
	}

	golden(t, "default.golden.yaml", goldenBytes(r))
}

func TestRenderFull(t *testing.T) {
	r := render(t, goldenNamespace, fullValues("ci-jobs"))

	want := []string{"ServiceAccount/yaci", "PersistentVolumeClaim/yaci", "Role/yaci",
		"RoleBinding/yaci", "Service/yaci", "Deployment/yaci", "Ingress/yaci", "ServiceMonitor/yaci"}
	if got := r.kinds(); !sameSet(got, want) {
		t.Errorf("rendered %v, want %v", got, want)
	}
	for _, o := range r.objects {
		wantNS := goldenNamespace
		if o.GetKind() == "Role" || o.GetKind() == "RoleBinding" {
			wantNS = "ci-jobs"
		}
		if o.GetNamespace() != wantNS {
			t.Errorf("%s/%s is in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), wantNS)
		}
	}

	var dep appsv1.Deployment
	r.object(t, "Deployment", &dep)
	if *dep.Spec.Replicas != 2 || dep.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %q: want 2 rolling, as the claim is ReadWriteMany",
			*dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	c := yaciContainer(t, &dep)
	for _, arg := range []string{"--namespace=ci-jobs", "--github-app-id=4242",
		"--public-url=https://ci.example.com"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %q", c.Args, arg)
		}
	}
	if envVar(c, "YACI_GITHUB_APP_ID") != nil {
		t.Error("YACI_GITHUB_APP_ID is set although github.appID is given")
	}
	if e := envVar(c, "YACI_LEADER_ELECT"); e == nil || e.Value != "true" {
		t.Errorf("YACI_LEADER_ELECT is %+v, want true", e)
	}

	var rb rbacv1.RoleBinding
	r.object(t, "RoleBinding", &rb)
	if s := rb.Subjects; len(s) != 1 || s[0].Namespace != goldenNamespace || s[0].Name != "yaci" {
		t.Errorf("RoleBinding subjects %+v, want ServiceAccount yaci of %s", s, goldenNamespace)
	}
	var role rbacv1.Role
	r.object(t, "Role", &role)
	if !ruleFor(role, "coordination.k8s.io", "leases") {
		t.Error("the Role lacks Leases although leader election is on")
	}
	if !strings.Contains(r.notes, "https://ci.example.com/webhook") {
		t.Errorf("NOTES do not give the webhook URL https://ci.example.com/webhook:\n%s", r.notes)
	}

	golden(t, "full.golden.yaml", goldenBytes(r))
}

// TestPodSecurity checks the pod meets the restricted Pod Security Standard
// in every render; the dry-run apply test has the API server check it too.
func TestPodSecurity(t *testing.T) {
	for name, values := range map[string]map[string]any{"default": nil, "full": fullValues("j")} {
		t.Run(name, func(t *testing.T) {
			var dep appsv1.Deployment
			render(t, goldenNamespace, values).object(t, "Deployment", &dep)
			pod := dep.Spec.Template.Spec
			c := yaciContainer(t, &dep)

			psc, sc := pod.SecurityContext, c.SecurityContext
			switch {
			case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
				t.Error("pod does not require runAsNonRoot")
			case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Error("pod's seccomp profile is not RuntimeDefault")
			case sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Error("container allows privilege escalation")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Error("container's root filesystem is writable")
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
				len(sc.Capabilities.Add) > 0:
				t.Errorf("container capabilities %+v, want drop ALL, add none", sc.Capabilities)
			}
			if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
				t.Error("yaci's pod does not mount its token, without which it cannot reach the API server")
			}
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					t.Errorf("volume %s is a hostPath", v.Name)
				}
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
				c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Error("probes are not /healthz (liveness) and /readyz (readiness)")
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 ||
				!slices.Contains(c.Args, "--listen=:8080") {
				t.Errorf("container port %+v and --listen disagree", c.Ports)
			}
		})
	}
}

// TestRenderVariants renders values that change a part of the chart and
// checks that part.
func TestRenderVariants(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, r rendered)
	}{{
		name: "token auth from inline values",
		values: map[string]any{"github": map[string]any{
			"auth": "token", "token": "ghp_x", "webhookSecret": "s3cret",
		}},
		check: func(t *testing.T, r rendered) {
			var sec corev1.Secret
			r.object(t, "Secret", &sec)
			if string(sec.Data["token"]) != "ghp_x" || string(sec.Data["webhook-secret"]) != "s3cret" ||
				len(sec.Data) != 2 {
				t.Errorf("secret entries %v, want token and webhook-secret", keys(sec.Data))
			}
			var dep appsv1.Deployment
			r.object(t, "Deployment", &dep)
			c := yaciContainer(t, &dep)
			if !slices.Contains(c.Args, "--github-token-file=/etc/yaci/github/token") ||
				hasArgPrefix(c.Args, "--github-app") || envVar(c, "YACI_GITHUB_APP_ID") != nil {
				t.Errorf("args %q: want token auth only", c.Args)
			}
			if dep.Spec.Template.Annotations["checksum/github-secret"] == "" {
				t.Error("no checksum of the chart's Secret: yaci would not restart when it changes")
			}
			for _, e := range c.Env {
				if strings.Contains(e.Value, "ghp_x") || strings.Contains(e.Value, "s3cret") {
					t.Errorf("environment variable %s holds a secret", e.Name)
				}
			}
			for _, a := range c.Args {
				if strings.Contains(a, "ghp_x") || strings.Contains(a, "s3cret") {
					t.Errorf("argument %q holds a secret", a)
				}
			}
		},
	}, {
		name: "persistence read-write-once recreates",
		values: map[string]any{"persistence": map[string]any{
			"enabled": true, "storageClass": "-", "keepOnUninstall": false,
		}},
		check: func(t *testing.T, r rendered) {
			var dep appsv1.Deployment
			r.object(t, "Deployment", &dep)
			if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("strategy %q, want Recreate with a ReadWriteOnce claim", dep.Spec.Strategy.Type)
			}
			var pvc corev1.PersistentVolumeClaim
			r.object(t, "PersistentVolumeClaim", &pvc)
			if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "" {
				t.Errorf("storageClassName %v, want \"\" for storageClass \"-\"", pvc.Spec.StorageClassName)
			}
			if _, kept := pvc.Annotations["helm.sh/resource-policy"]; kept {
				t.Error("claim kept on uninstall although keepOnUninstall is false")
			}
		},
	}, {
		name: "existing claim is not created",
		values: map[string]any{"persistence": map[string]any{
			"enabled": true, "existingClaim": "logs",
		}},
		check: func(t *testing.T, r rendered) {
			for _, o := range r.objects {
				if o.GetKind() == "PersistentVolumeClaim" {
					t.Error("a claim is created although existingClaim is set")
				}
			}
			var dep appsv1.Deployment
			r.object(t, "Deployment", &dep)
			if v := volume(t, &dep, "data"); v.PersistentVolumeClaim == nil ||
				v.PersistentVolumeClaim.ClaimName != "logs" {
				t.Errorf("data volume %+v, want claim logs", v)
			}
		},
	}, {
		name: "no rbac, existing service account",
		values: map[string]any{
			"rbac":           map[string]any{"create": false},
			"serviceAccount": map[string]any{"create": false, "name": "ci-bot"},
		},
		check: func(t *testing.T, r rendered) {
			want := []string{"Service/yaci", "Deployment/yaci"}
			if got := r.kinds(); !sameSet(got, want) {
				t.Errorf("rendered %v, want %v", got, want)
			}
			var dep appsv1.Deployment
			r.object(t, "Deployment", &dep)
			if dep.Spec.Template.Spec.ServiceAccountName != "ci-bot" {
				t.Errorf("service account %q, want ci-bot", dep.Spec.Template.Spec.ServiceAccountName)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, render(t, goldenNamespace, tt.values))
		})
	}
}

// TestRenderRefuses checks that values that would deploy a yaci that cannot
// work fail to render, with a message that says what to change.
func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"two replicas without leader election",
			map[string]any{"replicaCount": 2, "persistence": map[string]any{
				"enabled": true, "accessModes": []any{"ReadWriteMany"}}},
			"more than one replica needs leaderElection.enabled=true"},
		{"two replicas without a shared archive",
			map[string]any{"replicaCount": 3, "leaderElection": map[string]any{"enabled": true}},
			"more than one replica needs a shared log archive"},
		{"two replicas on a read-write-once claim",
			map[string]any{"replicaCount": 2, "leaderElection": map[string]any{"enabled": true},
				"persistence": map[string]any{"enabled": true}},
			"more than one replica needs a shared log archive"},
		{"inline secret without the App key",
			map[string]any{"github": map[string]any{"appID": 1, "webhookSecret": "s"}},
			"set github.appKey"},
		{"inline App secret without the App id",
			map[string]any{"github": map[string]any{"webhookSecret": "s", "appKey": "k"}},
			"set github.appID"},
		{"inline credential without a webhook secret",
			map[string]any{"github": map[string]any{"auth": "token", "token": "t"}},
			"set github.webhookSecret too"},
		{"existing secret and inline values",
			map[string]any{"github": map[string]any{"existingSecret": "x", "webhookSecret": "s"}},
			"leave github.webhookSecret, github.appKey and github.token empty"},
		{"ingress without host",
			map[string]any{"ingress": map[string]any{"enabled": true}},
			"set ingress.host"},
		{"no service account to run as",
			map[string]any{"serviceAccount": map[string]any{"create": false}},
			"set serviceAccount.name"},
		{"s3 archive without a bucket",
			map[string]any{"archive": map[string]any{"s3": map[string]any{"enabled": true}}},
			"set archive.s3.bucket"},
		{"misspelt top-level key", map[string]any{"replicas": 2}, "replicas"},
		{"unknown auth", map[string]any{"github": map[string]any{"auth": "oauth"}}, "auth"},
		{"timeout without unit", map[string]any{"config": map[string]any{"maxTimeout": "90"}}, "maxTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderChart(goldenNamespace, tt.values)
			if err == nil {
				t.Fatalf("rendered; want an error saying %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// goldenBytes is what a golden file holds: the manifest, then the NOTES as
// comments.
func goldenBytes(r rendered) []byte {
	var b strings.Builder
	b.WriteString(r.manifest)
	b.WriteString("\n# NOTES.txt:\n")
	for line := range strings.Lines(r.notes) {
		b.WriteString(strings.TrimRight("# "+line, " \n") + "\n")
	}

	return []byte(b.String())
}

func yaciContainer(t *testing.T, dep *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range dep.Spec.Template.Spec.Containers {
		if c.Name == "yaci" {
			return c
		}
	}
	t.Fatalf("deployment %s has no container yaci", dep.Name)

	return corev1.Container{}
}

func volume(t *testing.T, dep *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("deployment %s has no volume %s", dep.Name, name)

	return corev1.Volume{}
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}

	return nil
}

func hasArgPrefix(args []string, prefix string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, prefix) })
}

// ruleFor reports whether a rule of role names resource in group.
func ruleFor(role rbacv1.Role, group, resource string) bool {
	return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource)
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)

	return slices.Equal(a, b)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)

	return out
}

// TestRenderS3Archive checks that an S3 archive counts as the shared
// archive several replicas need, and reaches yaci as flags and key files.
func TestRenderS3Archive(t *testing.T) {
	r := render(t, goldenNamespace, map[string]any{
		"replicaCount":   2,
		"leaderElection": map[string]any{"enabled": true},
		"archive": map[string]any{"s3": map[string]any{
			"enabled": true, "bucket": "ci-logs", "endpoint": "https://s3.example.com",
			"pathStyle": true, "existingSecret": "yaci-s3",
		}},
	})
	var d appsv1.Deployment
	r.object(t, "Deployment", &d)
	c := d.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{
		"--archive=s3", "--s3-bucket=ci-logs", "--s3-endpoint=https://s3.example.com",
		"--s3-path-style", "--s3-access-key-file=/etc/yaci/s3/access-key",
		"--s3-secret-key-file=/etc/yaci/s3/secret-key",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || m.Name == "s3" && m.MountPath == "/etc/yaci/s3" && m.ReadOnly
	}
	fromSecret := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		fromSecret = fromSecret || v.Name == "s3" && v.Secret != nil && v.Secret.SecretName == "yaci-s3"
	}
	if !mounted || !fromSecret {
		t.Errorf("the S3 keys are not mounted from yaci-s3 (mount %v, volume %v)", mounted, fromSecret)
	}
}
