package deploy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/yaci-ci/yaci/internal/testenv"
)

// access is one thing yaci's ServiceAccount may or may not do.
type access struct {
	verb, group, resource, subresource string
	// ns is "job", "release" or "other", the namespace the access is
	// asked for, or "" for cluster scope.
	ns   string
	name string
	want bool
}

func (a access) String() string {
	res := a.resource
	if a.subresource != "" {
		res += "/" + a.subresource
	}
	if a.group != "" {
		res += "." + a.group
	}
	where := "cluster-wide"
	if a.ns != "" {
		where = "in the " + a.ns + " namespace"
	}
	if a.name != "" {
		res += " " + a.name
	}

	return fmt.Sprintf("%s %s %s", a.verb, res, where)
}

// needs are what yaci does in its Jobs' namespace.
var needs = []access{
	{verb: "create", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "get", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "list", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "watch", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "patch", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "update", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "delete", group: "batch", resource: "jobs", ns: "job", want: true},
	{verb: "update", group: "batch", resource: "jobs", subresource: "finalizers", ns: "job", want: true},
	{verb: "get", resource: "pods", ns: "job", want: true},
	{verb: "list", resource: "pods", ns: "job", want: true},
	{verb: "watch", resource: "pods", ns: "job", want: true},
	{verb: "get", resource: "pods", subresource: "log", ns: "job", want: true},
	{verb: "create", resource: "secrets", ns: "job", want: true},
	{verb: "get", resource: "secrets", ns: "job", name: "yaci-3f2a-clone", want: true},
	{verb: "update", resource: "secrets", ns: "job", name: "yaci-3f2a-clone", want: true},
	{verb: "delete", resource: "secrets", ns: "job", name: "yaci-3f2a-clone", want: true},
	{verb: "create", resource: "events", ns: "job", want: true},
	{verb: "patch", resource: "events", ns: "job", want: true},
	{verb: "create", group: "events.k8s.io", resource: "events", ns: "job", want: true},
	{verb: "patch", group: "events.k8s.io", resource: "events", ns: "job", want: true},
}

// forbidden are things yaci must not be able to do.
var forbidden = []access{
	{verb: "update", group: "batch", resource: "jobs", subresource: "status", ns: "job"},
	{verb: "patch", group: "batch", resource: "jobs", subresource: "status", ns: "job"},
	{verb: "list", resource: "secrets", ns: "job"},
	{verb: "watch", resource: "secrets", ns: "job"},
	{verb: "get", resource: "secrets", ns: "other", name: "yaci-3f2a-clone"},
	{verb: "create", resource: "secrets", ns: "other"},
	{verb: "list", resource: "secrets"},
	{verb: "get", resource: "secrets", name: "anything"},
	{verb: "create", group: "batch", resource: "jobs", ns: "other"},
	{verb: "list", group: "batch", resource: "jobs"},
	{verb: "get", resource: "nodes"},
	{verb: "list", resource: "nodes"},
	{verb: "patch", resource: "nodes", name: "kwok-node-0"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "roles", ns: "job"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", ns: "job"},
	{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles", name: "cluster-admin"},
	{verb: "create", resource: "pods", ns: "job"},
	{verb: "delete", resource: "pods", ns: "job"},
	{verb: "create", resource: "pods", subresource: "exec", ns: "job"},
	{verb: "get", resource: "pods", subresource: "exec", ns: "job"},
	{verb: "create", resource: "pods", subresource: "attach", ns: "job"},
	{verb: "create", resource: "pods", subresource: "portforward", ns: "job"},
	{verb: "create", resource: "serviceaccounts", subresource: "token", ns: "job", name: "default"},
	{verb: "delete", resource: "namespaces", name: "kube-system"},
	{verb: "delete", resource: "namespaces", ns: "job"},
	{verb: "create", resource: "configmaps", ns: "job"},
	{verb: "create", group: "apps", resource: "deployments", ns: "job"},
}

// TestRBAC creates the chart's ServiceAccount, Role and RoleBinding for
// real and asks the API server, with SubjectAccessReviews for the
// ServiceAccount's user and groups, that yaci can do each thing it needs
// and none of the things it must not.
func TestRBAC(t *testing.T) {
	t.Parallel()
	cfg, nsA := testenv.Namespace(t)
	_, nsB := testenv.Namespace(t)
	_, nsC := testenv.Namespace(t)
	cs := kubernetes.NewForConfigOrDie(cfg)

	tests := []struct {
		name string
		// release, job and other name the namespaces of the case.
		release, job, other string
		values              map[string]any
		leaseGranted        bool
	}{
		// Jobs in the release namespace, no leader election.
		{name: "default", release: nsA, job: nsA, other: nsB},
		// Jobs in a namespace of their own, leader election.
		{name: "full", release: nsB, job: nsC, other: nsA, values: fullValues(nsC), leaseGranted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.release, tt.values)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			sa := createRBAC(ctx, t, cs, r)

			namespaces := map[string]string{"job": tt.job, "release": tt.release, "other": tt.other}
			checks := append(append([]access(nil), needs...), forbidden...)
			lease := func(verb, name string, want bool) access {
				return access{verb: verb, group: "coordination.k8s.io", resource: "leases",
					ns: "job", name: name, want: want}
			}
			checks = append(checks,
				lease("create", "", tt.leaseGranted),
				lease("get", "yaci", tt.leaseGranted),
				lease("update", "yaci", tt.leaseGranted),
				// Another Lease, e.g. a controller's, is never in reach.
				lease("update", "kube-scheduler", false),
				lease("list", "", false),
				// yaci reads its own Secret as mounted files, not through
				// the API; only when it shares the Jobs' namespace is
				// it in reach.
				access{verb: "get", resource: "secrets", ns: "release", name: "yaci-github",
					want: tt.release == tt.job},
			)

			waitAllowed(ctx, t, cs, sa, namespaces, needs[0])
			for _, a := range checks {
				allowed, reason := review(ctx, t, cs, sa, namespaces, a)
				if allowed != a.want {
					t.Errorf("%s: allowed=%t, want %t (%s)", a, allowed, a.want, reason)
				}
			}
		})
	}
}

// createRBAC creates the rendered ServiceAccount, Role and RoleBinding and
// returns the ServiceAccount.
func createRBAC(ctx context.Context, t *testing.T, cs kubernetes.Interface,
	r rendered) *corev1.ServiceAccount {
	t.Helper()
	var (
		sa   corev1.ServiceAccount
		role rbacv1.Role
		rb   rbacv1.RoleBinding
	)
	r.object(t, "ServiceAccount", &sa)
	r.object(t, "Role", &role)
	r.object(t, "RoleBinding", &rb)

	made, err := cs.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, &sa, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service account: %v", err)
	}
	if _, err := cs.RbacV1().Roles(role.Namespace).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := cs.RbacV1().RoleBindings(rb.Namespace).Create(ctx, &rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}

	return made
}

// review asks the API server whether sa may do a.
func review(ctx context.Context, t *testing.T, cs kubernetes.Interface, sa *corev1.ServiceAccount,
	namespaces map[string]string, a access) (bool, string) {
	t.Helper()
	attrs := &authorizationv1.ResourceAttributes{
		Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
		Name: a.name,
	}
	if a.ns != "" {
		attrs.Namespace = namespaces[a.ns]
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "system:serviceaccount:" + sa.Namespace + ":" + sa.Name,
		// The groups a ServiceAccount's token authenticates with, so that
		// whatever is granted to them counts too.
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace,
			"system:authenticated"},
		UID:                string(sa.UID),
		ResourceAttributes: attrs,
	}}
	res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("subject access review for %s: %v", a, err)
	}

	return res.Status.Allowed, res.Status.Reason + res.Status.EvaluationError
}

// waitAllowed waits until the authorizer, whose cache of roles lags
// behind what was just created, allows a.
func waitAllowed(ctx context.Context, t *testing.T, cs kubernetes.Interface, sa *corev1.ServiceAccount,
	namespaces map[string]string, a access) {
	t.Helper()
	for {
		if ok, _ := review(ctx, t, cs, sa, namespaces, a); ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s was never allowed: the Role or RoleBinding did not take effect", a)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRoleGrantsOnlyNeeds checks the other direction from TestRBAC: every
// verb on every resource the rendered Role names is one yaci needs, so
// that nothing is granted that the table above does not justify.
func TestRoleGrantsOnlyNeeds(t *testing.T) {
	allowed := map[string]bool{}
	for _, a := range needs {
		allowed[grant(a.verb, a.group, a.resource, a.subresource)] = true
	}
	for _, verb := range []string{"create", "get", "update"} {
		allowed[grant(verb, "coordination.k8s.io", "leases", "")] = true
	}

	var role rbacv1.Role
	render(t, goldenNamespace, fullValues("j")).object(t, "Role", &role)
	for _, rule := range role.Rules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, verb := range rule.Verbs {
					resource, sub, _ := strings.Cut(res, "/")
					if !allowed[grant(verb, group, resource, sub)] {
						t.Errorf("the Role grants %s on %s in group %q, which yaci does not need",
							verb, res, group)
					}
				}
			}
		}
	}
}

func grant(verb, group, resource, subresource string) string {
	return verb + " " + group + "/" + resource + "/" + subresource
}
