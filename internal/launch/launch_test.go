package launch_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// testToken is cloneToken as Launch takes it. It has no expiry, as a
// configured token does not; TestLaunchRecordsTokenExpiry checks one that
// has.
var testToken = trigger.Token{Value: cloneToken}

// newClient returns a fake clientset that, like an API server, gives every
// object it creates a UID.
func newClient(t *testing.T, objects ...runtime.Object) *fake.Clientset {
	t.Helper()
	client := fake.NewClientset(objects...)
	var n atomic.Int64
	client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject().(metav1.Object)
		if obj.GetUID() == "" {
			obj.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
		}
		return false, nil, nil
	})

	return client
}

func newLauncher(t *testing.T, client *fake.Clientset, o launch.Options) *launch.Launcher {
	t.Helper()
	l, err := launch.New(client, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	return l
}

// verbs returns "verb resource" for each recorded action.
func verbs(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
	}

	return out
}

func getJob(t *testing.T, client *fake.Clientset, name string) *batchv1.Job {
	t.Helper()
	jobs := client.BatchV1().Jobs(testOptions.Namespace)
	job, err := jobs.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get job %s: %v", name, err)
	}

	return job
}

func TestLaunchOrder(t *testing.T) {
	tests := []struct {
		name      string
		suspend   bool
		wantVerbs []string
	}{
		{"started by launch", false, []string{"create jobs", "create secrets", "patch jobs"}},
		{"left for admission", true, []string{"create jobs", "create secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t)
			o := testOptions
			o.Suspend = tt.suspend
			run := pushRun()

			name, created, err := newLauncher(t, client, o).Launch(t.Context(), run, testToken)
			if err != nil || !created || name != run.Name() {
				t.Fatalf("Launch = %q, %v, %v; want %q, true, nil", name, created, err, run.Name())
			}

			actions := client.Actions()
			if got := verbs(actions); fmt.Sprint(got) != fmt.Sprint(tt.wantVerbs) {
				t.Fatalf("actions = %v, want %v", got, tt.wantVerbs)
			}
			createdJob := actions[0].(k8stesting.CreateAction).GetObject().(*batchv1.Job)
			if !ptr.Deref(createdJob.Spec.Suspend, false) {
				t.Error("job was created unsuspended")
			}

			job := getJob(t, client, name)
			secret := actions[1].(k8stesting.CreateAction).GetObject().(*corev1.Secret)
			refs := secret.OwnerReferences
			if len(refs) != 1 || refs[0].UID != job.UID || refs[0].Name != job.Name ||
				ptr.Deref(refs[0].Controller, true) || !ptr.Deref(refs[0].BlockOwnerDeletion, false) {
				t.Errorf("secret owner references = %+v, want the job %s (uid %s)",
					refs, job.Name, job.UID)
			}
			if string(secret.Data[launch.SecretTokenKey]) != cloneToken {
				t.Error("secret does not hold the token")
			}

			if got := ptr.Deref(job.Spec.Suspend, false); got != tt.suspend {
				t.Errorf("job suspended = %v, want %v", got, tt.suspend)
			}
			queued, err := time.Parse(time.RFC3339Nano, job.Annotations[launch.AnnotationQueuedAt])
			if tt.suspend && (err != nil || time.Since(queued) > time.Minute) {
				t.Errorf("queued-at = %q (%v), want the launch time", job.Annotations[launch.AnnotationQueuedAt], err)
			}
			if tt.suspend {
				return
			}
			patch := actions[2].(k8stesting.PatchAction)
			if string(patch.GetPatch()) != `{"spec":{"suspend":false}}` || patch.GetName() != name {
				t.Errorf("patch %s = %s", patch.GetName(), patch.GetPatch())
			}
		})
	}
}

// TestLaunchRecordsTokenExpiry checks that every clone Secret says when
// its token expires: when the token does, or never for a configured one.
func TestLaunchRecordsTokenExpiry(t *testing.T) {
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name string
		tok  trigger.Token
		want string
	}{
		{"expiring token", trigger.Token{Value: cloneToken, ExpiresAt: expires}, expires.Format(time.RFC3339)},
		{"configured token", testToken, launch.NeverExpires},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t)
			run := pushRun()
			name, created, err := newLauncher(t, client, testOptions).Launch(t.Context(), run, tt.tok)
			if err != nil || !created {
				t.Fatalf("Launch = %v, %v", created, err)
			}

			secret, err := client.CoreV1().Secrets(testOptions.Namespace).Get(t.Context(),
				name+"-clone", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := secret.Annotations[launch.AnnotationTokenExpires]; got != tt.want {
				t.Errorf("token-expires-at = %q, want %q", got, tt.want)
			}
			if string(secret.Data[launch.SecretTokenKey]) != cloneToken {
				t.Error("secret does not hold the token")
			}
		})
	}
}

func TestLaunchAlreadyExists(t *testing.T) {
	client := newClient(t)
	l := newLauncher(t, client, testOptions)
	run := prRun()
	if _, created, err := l.Launch(t.Context(), run, testToken); err != nil || !created {
		t.Fatalf("first Launch = %v, %v", created, err)
	}
	client.ClearActions()

	name, created, err := l.Launch(t.Context(), run, trigger.Token{Value: "another-token"})
	if err != nil || created || name != run.Name() {
		t.Fatalf("second Launch = %q, %v, %v; want %q, false, nil", name, created, err, run.Name())
	}
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "secrets" || a.GetVerb() == "patch" {
			t.Errorf("second Launch touched the run: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	secret, err := client.CoreV1().Secrets(testOptions.Namespace).Get(t.Context(),
		launch.SecretName(run), metav1.GetOptions{})
	if err != nil || string(secret.Data[launch.SecretTokenKey]) != cloneToken {
		t.Errorf("secret after second Launch: %v, %v", secret, err)
	}
}

func TestLaunchJobBeingDeleted(t *testing.T) {
	run := pushRun()
	old, err := launch.BuildJob(run, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	old.DeletionTimestamp = ptr.To(metav1.Now())
	old.Finalizers = []string{"foregroundDeletion"}
	client := newClient(t, old)

	_, created, err := newLauncher(t, client, testOptions).Launch(t.Context(), run, testToken)
	if !errors.Is(err, launch.ErrJobDeleting) || created {
		t.Errorf("Launch = %v, %v; want false, ErrJobDeleting", created, err)
	}
}

func TestLaunchSecretFailure(t *testing.T) {
	client := newClient(t)
	denied := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x",
		errors.New("quota"))
	client.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, denied
	})
	run := pushRun()

	_, created, err := newLauncher(t, client, testOptions).Launch(t.Context(), run, testToken)
	if !apierrors.IsForbidden(err) || created {
		t.Fatalf("Launch = %v, %v; want false and the secret's error", created, err)
	}
	checkAbandoned(t, client, run.Name())
}

// checkAbandoned checks that a failed launch deleted its Job, in the
// foreground and only if it was still the Job the launch created.
func checkAbandoned(t *testing.T, client *fake.Clientset, name string) {
	t.Helper()
	var del k8stesting.DeleteAction
	var uid types.UID
	released := false
	for _, a := range client.Actions() {
		switch a := a.(type) {
		case k8stesting.DeleteAction:
			if a.GetResource().Resource == "jobs" {
				del = a
			}
		case k8stesting.PatchAction:
			released = released || del == nil && a.GetPatchType() == types.JSONPatchType &&
				strings.Contains(string(a.GetPatch()), launch.NotStarted)
		case k8stesting.CreateAction:
			if job, ok := a.GetObject().(*batchv1.Job); ok {
				uid = job.UID
			}
		}
	}
	if del == nil || del.GetName() != name {
		t.Fatalf("job %s was not deleted; actions %v", name, verbs(client.Actions()))
	}
	if !released {
		t.Errorf("job %s was not released for deletion before it was deleted", name)
	}
	opts := del.GetDeleteOptions()
	if ptr.Deref(opts.PropagationPolicy, "") != metav1.DeletePropagationForeground {
		t.Errorf("deleted with propagation %v, want Foreground", opts.PropagationPolicy)
	}
	if opts.Preconditions == nil || ptr.Deref(opts.Preconditions.UID, "") == "" {
		t.Errorf("deleted without a UID precondition (job uid %q)", uid)
	}
	jobs := client.BatchV1().Jobs(testOptions.Namespace)
	_, err := jobs.Get(t.Context(), name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("job %s still there: %v", name, err)
	}
}

func TestLaunchStartFailure(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantPatches int32
	}{
		{"transient errors are retried", apierrors.NewInternalError(errors.New("etcd")), 4},
		{"a refusal is not", apierrors.NewForbidden(schema.GroupResource{Resource: "jobs"}, "x",
			errors.New("no")), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t)
			var patches atomic.Int32
			client.PrependReactor("patch", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
				// Only starts count; abandon's release is one more patch.
				if a.(k8stesting.PatchAction).GetPatchType() == types.MergePatchType {
					patches.Add(1)
				}
				return true, nil, tt.err
			})
			run := pushRun()

			_, created, err := newLauncher(t, client, testOptions).Launch(t.Context(), run, testToken)
			if !errors.Is(err, tt.err) || created {
				t.Fatalf("Launch = %v, %v; want false and the patch error", created, err)
			}
			if got := patches.Load(); got != tt.wantPatches {
				t.Errorf("patched %d times, want %d", got, tt.wantPatches)
			}
			checkAbandoned(t, client, run.Name())
		})
	}
}

// TestLaunchStaleSecret covers a run launched again after its earlier Job
// was deleted but before the garbage collector deleted that Job's Secret.
func TestLaunchStaleSecret(t *testing.T) {
	run := pushRun()
	stale := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: launch.SecretName(run), Namespace: testOptions.Namespace, UID: "stale-secret",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "batch/v1", Kind: "Job", Name: run.Name(), UID: "deleted-job",
		}},
	}, Data: map[string][]byte{launch.SecretTokenKey: []byte("old")}}
	client := newClient(t, stale)

	_, created, err := newLauncher(t, client, testOptions).Launch(t.Context(), run, testToken)
	if err != nil || !created {
		t.Fatalf("Launch = %v, %v", created, err)
	}
	job := getJob(t, client, run.Name())
	secret, err := client.CoreV1().Secrets(testOptions.Namespace).Get(t.Context(),
		launch.SecretName(run), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs := secret.OwnerReferences; len(refs) != 1 || refs[0].UID != job.UID {
		t.Errorf("secret owners = %+v, want job uid %s", refs, job.UID)
	}
	if string(secret.Data[launch.SecretTokenKey]) != cloneToken {
		t.Error("secret still holds the old token")
	}
}

func TestLaunchConcurrent(t *testing.T) {
	client := newClient(t)
	l := newLauncher(t, client, testOptions)
	run := pushRun()

	const callers = 50
	var wg sync.WaitGroup
	var createdCount atomic.Int32
	errs := make(chan error, callers)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			_, created, err := l.Launch(t.Context(), run, testToken)
			if err != nil {
				errs <- err
			}
			if created {
				createdCount.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)

	for err := range errs {
		t.Errorf("Launch: %v", err)
	}
	if n := createdCount.Load(); n != 1 {
		t.Errorf("%d callers created the run, want exactly 1", n)
	}
	var secretCreates int
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "secrets" {
			secretCreates++
		}
	}
	if secretCreates != 1 {
		t.Errorf("%d secret creates, want 1", secretCreates)
	}
}

func TestLaunchInvalidRun(t *testing.T) {
	client := newClient(t)
	run := pushRun()
	run.Event.SHA = "main"

	_, created, err := newLauncher(t, client, testOptions).Launch(t.Context(), run, testToken)
	if !errors.Is(err, launch.ErrInvalidRun) || created {
		t.Errorf("Launch = %v, %v; want false, ErrInvalidRun", created, err)
	}
	if n := len(client.Actions()); n != 0 {
		t.Errorf("%d calls to the API server for an invalid run", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    launch.Options
		ok   bool
	}{
		{"defaults", launch.Options{Namespace: "ci"}, true},
		{"no namespace", launch.Options{}, false},
		{"bad namespace", launch.Options{Namespace: "CI Runs"}, false},
		{"default above max", launch.Options{Namespace: "ci", DefaultTimeout: 3 * time.Hour}, false},
		{"negative ttl", launch.Options{Namespace: "ci", TTLAfterFinished: -time.Second}, false},
		{"negative uid", launch.Options{Namespace: "ci", RunAsUser: -1}, false},
		{"bad memory", launch.Options{Namespace: "ci", DefaultMemory: "much"}, false},
		{"all set", launch.Options{Namespace: "ci", CloneImage: "git:1", DefaultTimeout: time.Minute,
			MaxTimeout: time.Hour, RunAsUser: 1000, DefaultCPU: "1", DefaultMemory: "1Gi"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, launch.ErrBadOptions)) {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if _, err := launch.New(newClient(t), tt.o); tt.ok != (err == nil) {
				t.Errorf("New = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
