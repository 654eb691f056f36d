package deploy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/yaci-ci/yaci/internal/github"
	"github.com/yaci-ci/yaci/internal/githubtest"
	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/logs"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/server"
	"github.com/yaci-ci/yaci/internal/testenv"
	"github.com/yaci-ci/yaci/internal/webhook"
)

// manifestPath is the GitHub App manifest people create yaci's App from.
const manifestPath = chartDir + "/github-app-manifest.json"

// appManifest is the JSON GitHub's "create a GitHub App from a manifest"
// flow takes, in the fields yaci's manifest uses.
type appManifest struct {
	Name           string `json:"name"`
	URL            string `json:"url"`
	Description    string `json:"description"`
	HookAttributes struct {
		URL    string `json:"url"`
		Active *bool  `json:"active"`
	} `json:"hook_attributes"`
	RedirectURL        string            `json:"redirect_url"`
	Public             *bool             `json:"public"`
	DefaultPermissions map[string]string `json:"default_permissions"`
	DefaultEvents      []string          `json:"default_events"`
}

// readManifest decodes the manifest, refusing fields it does not know, so
// that a misspelt one ("default_permission") fails here and not silently
// on GitHub.
func readManifest(t *testing.T) appManifest {
	t.Helper()
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m appManifest
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", manifestPath, err)
	}

	return m
}

// Permissions GitHub needs an App to have before it delivers an event to
// it: the "Webhook events" GitHub lists for each App permission.
var eventPermission = map[string]string{
	"push":         "contents",
	"pull_request": "pull_requests",
}

// operationPermission is the App permission each GitHub operation yaci
// makes needs, from GitHub's documentation of each endpoint. Making an
// installation token needs none: the App authenticates with its JWT, and
// the token's own permissions are checked apart.
var operationPermission = map[string][2]string{
	github.OpGetContent:              {"contents", "read"},
	github.OpCreateCommitStatus:      {"statuses", "write"},
	github.OpCreateInstallationToken: {},
}

func TestAppManifestShape(t *testing.T) {
	m := readManifest(t)

	if m.Name == "" || m.Description == "" {
		t.Error("the manifest needs a name and a description")
	}
	if m.Public == nil || *m.Public {
		t.Error(`"public" must be false: anyone could install a public App and run jobs on this cluster`)
	}
	if m.HookAttributes.Active == nil || !*m.HookAttributes.Active {
		t.Error("the webhook must be active: yaci acts on nothing else")
	}
	hook, err := url.Parse(m.HookAttributes.URL)
	if err != nil || hook.Scheme != "https" || hook.Path != "/webhook" {
		t.Errorf("hook_attributes.url %q, want https://<yaci's host>/webhook", m.HookAttributes.URL)
	}
	redirect, err := url.Parse(m.RedirectURL)
	if err != nil || redirect.Scheme != "https" || hook == nil || redirect.Host != hook.Host {
		t.Errorf("redirect_url %q, want an https URL on the webhook's host", m.RedirectURL)
	}
	if u, err := url.Parse(m.URL); err != nil || u.Scheme != "https" {
		t.Errorf("url %q, want the https homepage of the App", m.URL)
	}
	if level := m.DefaultPermissions["metadata"]; level != "read" {
		t.Errorf("metadata permission %q: every App has metadata read, say so", level)
	}
	for _, kind := range []repoconfig.EventKind{repoconfig.EventPush, repoconfig.EventPullRequest} {
		if !slices.Contains(m.DefaultEvents, string(kind)) {
			t.Errorf("jobs can run on %q, but the App does not subscribe to it", kind)
		}
	}

	checkAgainstOpenAPI(t, m)
}

// checkAgainstOpenAPI checks the permission names and levels against the
// app-permissions schema of GitHub's OpenAPI description, when the shared
// tree that holds it is present.
func checkAgainstOpenAPI(t *testing.T, m appManifest) {
	t.Helper()
	path := os.Getenv(githubtest.EnvOpenAPI)
	if path == "" {
		path = filepath.Join(moduleRoot, "..", "shared", "testdata", "github", "api",
			"github-rest.openapi.json")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("no GitHub OpenAPI description at %s: permission names not checked", path)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				AppPermissions struct {
					Properties map[string]struct {
						Enum []string `json:"enum"`
					} `json:"properties"`
				} `json:"app-permissions"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	props := doc.Components.Schemas.AppPermissions.Properties
	if len(props) == 0 {
		t.Fatalf("%s has no app-permissions schema", path)
	}
	for name, level := range m.DefaultPermissions {
		p, ok := props[name]
		if !ok {
			t.Errorf("permission %q is not one of GitHub's App permissions", name)
			continue
		}
		if !slices.Contains(p.Enum, level) {
			t.Errorf("permission %s: level %q is not one of %q", name, level, p.Enum)
		}
	}
}

// TestAppManifestMatchesYaci runs yaci's server, as a GitHub App with a
// real control plane behind it, delivers each event the manifest subscribes
// to at the manifest's webhook path, and then compares the manifest's
// permissions with what yaci did: each GitHub operation it made, each
// permission it asked its clone tokens for, and each event it must
// receive. The manifest must grant exactly those, so that neither a new
// call nor a stale permission goes unnoticed.
func TestAppManifestMatchesYaci(t *testing.T) {
	t.Parallel()
	m := readManifest(t)
	hook, err := url.Parse(m.HookAttributes.URL)
	if err != nil {
		t.Fatal(err)
	}

	y := startYaci(t)
	for _, event := range m.DefaultEvents {
		body, sha, ok := delivery(t, event)
		if !ok {
			t.Errorf("the manifest subscribes to %q, which this test cannot deliver: add a delivery "+
				"and make sure yaci acts on it", event)
			continue
		}
		y.gh.SetFile(appOwner, appRepo, sha, ".yaci.yml", []byte(oneJob))
		code, answer := y.deliver(t, hook.Path, event, body)
		if code != http.StatusAccepted || answer != "queued" {
			t.Errorf("delivery of %s to %s: %d %q, want 202 queued: yaci does not act on it",
				event, hook.Path, code, answer)
			continue
		}
		y.waitStatus(t, sha)
	}

	need := map[string]string{"metadata": "read"}
	add := func(perm, level, why string) {
		if !grants(need[perm], level) {
			need[perm] = level
		}
		t.Logf("needs %s:%s for %s", perm, level, why)
	}
	for _, event := range m.DefaultEvents {
		if perm, ok := eventPermission[event]; ok {
			add(perm, "read", "the "+event+" event")
		} else {
			t.Errorf("no permission known for receiving %q events", event)
		}
	}
	for _, op := range y.operations() {
		perm, ok := operationPermission[op]
		switch {
		case !ok:
			t.Errorf("yaci made GitHub operation %q, whose permission this test does not know", op)
		case perm[0] != "":
			add(perm[0], perm[1], op)
		}
	}
	for _, tok := range y.gh.IssuedTokens() {
		for perm, level := range tok.Permissions {
			add(perm, level, "a token yaci asked for")
		}
	}

	for perm, level := range need {
		if !grants(m.DefaultPermissions[perm], level) {
			t.Errorf("yaci needs %s:%s, the manifest grants %q", perm, level, m.DefaultPermissions[perm])
		}
	}
	for perm, level := range m.DefaultPermissions {
		if need[perm] != level {
			t.Errorf("the manifest grants %s:%s, yaci needs %q", perm, level, need[perm])
		}
	}
}

// grants reports whether an App's level of a permission allows level.
func grants(have, want string) bool {
	return have == want || have == "write" && want == "read"
}

// Where the deliveries of the manifest test come from.
const (
	appOwner = "octo"
	appRepo  = "app"
	appID    = 4242
	appInst  = 77
	appHook  = "manifest-test-webhook-secret"
	oneJob   = "jobs:\n  - name: test\n    image: golang:1.26\n    run: go test ./...\n"
)

// yaci is a running yaci server for the manifest test.
type yaci struct {
	gh  *githubtest.Server
	url string

	mu  sync.Mutex
	ops []string
}

func startYaci(t *testing.T) *yaci {
	t.Helper()
	cfg, ns := testenv.Namespace(t)
	y := &yaci{gh: githubtest.NewServer(t)}
	keyPEM := rsaKeyPEM(t)
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	y.gh.SetAppKey(appID, &key.PublicKey)

	client, err := github.New(github.Options{
		BaseURL: y.gh.URL, AppID: appID, AppKey: github.Secret(keyPEM),
		Observe: func(o github.Observation) {
			y.mu.Lock()
			defer y.mu.Unlock()
			y.ops = append(y.ops, o.Operation)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := logs.NewSigner([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	store, err := logs.NewDirStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		WebhookSecret: []byte(appHook),
		GitHub:        client,
		Kube:          kubernetes.NewForConfigOrDie(cfg),
		Launch:        launch.Options{Namespace: ns},
		Signer:        signer,
		Store:         store,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})
	y.url = hs.URL

	return y
}

func (y *yaci) operations() []string {
	y.mu.Lock()
	defer y.mu.Unlock()

	return slices.Clone(y.ops)
}

// deliver posts a signed delivery and returns yaci's answer.
func (y *yaci) deliver(t *testing.T, path, event string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, y.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", "manifest-"+event)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(appHook), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)

	return resp.StatusCode, strings.TrimSpace(string(answer))
}

// waitStatus waits up to a minute for yaci to post a status on sha.
func (y *yaci) waitStatus(t *testing.T, sha string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(y.gh.Statuses(appOwner, appRepo, sha)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no status on %s within a minute", sha)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// delivery returns a payload of event that yaci acts on, from the App's
// installation, and the commit it runs; ok is false for an event this test
// has no payload for.
func delivery(t *testing.T, event string) (body []byte, sha string, ok bool) {
	t.Helper()
	sum := sha1.Sum([]byte(t.Name() + "/" + event))
	sha = hex.EncodeToString(sum[:])
	repo := map[string]any{
		"name": appRepo, "full_name": appOwner + "/" + appRepo,
		"owner":     map[string]string{"login": appOwner},
		"clone_url": "https://github.com/" + appOwner + "/" + appRepo + ".git",
	}
	inst := map[string]any{"id": appInst}

	var payload map[string]any
	switch event {
	case "push":
		payload = map[string]any{
			"ref": "refs/heads/main", "before": strings.Repeat("1", 40), "after": sha,
			"repository": repo, "installation": inst,
			"head_commit": map[string]any{"id": sha, "message": "change"},
			"sender":      map[string]string{"login": appOwner},
		}
	case "pull_request":
		payload = map[string]any{
			"action": "opened", "number": 1,
			"pull_request": map[string]any{
				"number": 1, "title": "change", "author_association": "OWNER",
				"user": map[string]string{"login": appOwner},
				"head": map[string]any{"sha": sha, "ref": "feature", "repo": repo},
				"base": map[string]any{"sha": strings.Repeat("2", 40), "ref": "main", "repo": repo},
			},
			"repository": repo, "installation": inst,
			"sender": map[string]string{"login": appOwner},
		}
	default:
		return nil, "", false
	}
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}

	return body, sha, true
}
