package webhook

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenDecoded is what a golden file records of a decoded payload.
type goldenDecoded struct {
	Ignore string         `json:"ignore,omitempty"`
	Event  *trigger.Event `json:"event,omitempty"`
}

// TestDecodeGolden decodes each of the project's push and pull_request
// fixtures and compares the result with testdata/golden/<fixture>.
func TestDecodeGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}

	var n int
	for _, path := range files {
		name := filepath.Base(path)
		kind, _, _ := strings.Cut(strings.TrimSuffix(name, ".json"), "-")
		if kind != "push" && kind != "pull_request" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			d, err := decodePayload(kind, fixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			g := goldenDecoded{Ignore: d.ignore}
			if d.ignore == "" {
				g.Event = &d.event
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')

			compareGolden(t, filepath.Join("testdata", "golden", name), got)
		})
	}
	if n < 4 {
		t.Fatalf("found %d push and pull_request fixtures, want at least 4", n)
	}
}

// compareGolden compares got with the golden file at path, or rewrites the
// file when -update is set.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}

	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decoded payload differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestDecodeSharedPayloads decodes GitHub's published payloads and checks
// each field against the payload read as plain JSON, so that a field taken
// from the wrong place in the library's types shows up. Each payload also
// goes through ServeHTTP to check its answer.
func TestDecodeSharedPayloads(t *testing.T) {
	dir := filepath.Join(sharedDir, "webhooks")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no published payloads: %v", err)
	}

	// What SOURCES.md says of these files, known apart from any decoding.
	wantIgnored := map[string]bool{
		"push/tag-deleted.json":      true,
		"pull_request/labeled.json":  true,
		"push/branch-created.json":   false,
		"push/branch-updated.json":   false,
		"pull_request/opened.json":   false,
		"pull_request/closed.json":   false,
		"pull_request/reopened.json": false,
	}

	var n int
	for _, kind := range []string{"push", "pull_request", "ping"} {
		files, err := filepath.Glob(filepath.Join(dir, kind, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			n++
			name := kind + "/" + filepath.Base(path)
			t.Run(name, func(t *testing.T) {
				body, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if kind != "ping" {
					d := checkDecoded(t, kind, body)
					if known, ok := wantIgnored[name]; ok && (d.ignore != "") != known {
						t.Errorf("ignored %q, but its source says ignored is %v", d.ignore, known)
					}
				}
				checkServed(t, kind, body)
			})
		}
	}
	if n == 0 {
		t.Fatal("no payloads found")
	}
}

// checkDecoded decodes body, compares the event with expectFromJSON and
// returns what it decoded.
func checkDecoded(t *testing.T, kind string, body []byte) decoded {
	t.Helper()
	d, err := decodePayload(kind, body)
	if err != nil {
		t.Fatal(err)
	}

	want, wantIgnore := expectFromJSON(t, kind, body)
	if (d.ignore != "") != wantIgnore {
		t.Fatalf("ignored %q, want ignored %v", d.ignore, wantIgnore)
	}
	if wantIgnore {
		return d
	}
	if !reflect.DeepEqual(d.event, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", d.event, want)
		if d.event.PullRequest != nil && want.PullRequest != nil {
			t.Errorf("pull request\n%+v\nwant\n%+v", *d.event.PullRequest, *want.PullRequest)
		}
	}

	return d
}

// checkServed sends body, signed, through the intake and checks the answer
// for its kind.
func checkServed(t *testing.T, kind string, body []byte) {
	t.Helper()
	_, srv := newIntake(t, Options{}, newRecorder(nil))

	got := send(t, srv.Client(), srv.URL, delivery{event: kind, guid: "shared", body: body,
		sign: true})

	wantCode := http.StatusAccepted
	if kind == "ping" {
		wantCode = http.StatusOK
	}
	if got.code != wantCode {
		t.Errorf("status %d %q, want %d", got.code, got.body, wantCode)
	}
}

// expectFromJSON works out, from the payload read as plain JSON, the event
// yaci should make of it, or whether it should ignore it.
func expectFromJSON(t *testing.T, kind string, body []byte) (trigger.Event, bool) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	str := func(path string) string { s, _ := lookup(doc, path).(string); return s }
	num := func(path string) int64 { f, _ := lookup(doc, path).(float64); return int64(f) }
	flag := func(path string) bool { b, _ := lookup(doc, path).(bool); return b }
	stamp := func(path string) time.Time {
		if sec := num(path); sec > 0 {
			return time.Unix(sec, 0).UTC()
		}
		at, _ := time.Parse(time.RFC3339, str(path))
		return at
	}
	repo := func(prefix string) trigger.Repo {
		owner := str(prefix + ".owner.login")
		if owner == "" {
			owner = str(prefix + ".owner.name")
		}
		return trigger.Repo{Owner: owner, Name: str(prefix + ".name"),
			CloneURL: str(prefix + ".clone_url"), Private: flag(prefix + ".private")}
	}

	if kind == "push" {
		after, ref := str("after"), str("ref")
		if flag("deleted") || strings.Trim(after, "0") == "" ||
			!strings.HasPrefix(ref, "refs/heads/") {
			return trigger.Event{}, true
		}
		before := str("before")
		if strings.Trim(before, "0") == "" {
			before = ""
		}
		return trigger.Event{
			Kind: repoconfig.EventPush, Repo: repo("repository"),
			InstallationID: num("installation.id"), SHA: after, Ref: ref,
			Branch: strings.TrimPrefix(ref, "refs/heads/"), Before: before,
			HeadAt:  stamp("repository.pushed_at"),
			Message: str("head_commit.message"), Sender: str("sender.login"),
		}, false
	}

	switch str("action") {
	case "opened", "synchronize", "reopened", "closed":
	default:
		return trigger.Event{}, true
	}
	number := num("number")

	return trigger.Event{
		Kind: repoconfig.EventPullRequest, Action: str("action"), Repo: repo("repository"),
		InstallationID: num("installation.id"), SHA: str("pull_request.head.sha"),
		Ref:    "refs/pull/" + strconv.FormatInt(number, 10) + "/head",
		Branch: str("pull_request.base.ref"), Sender: str("sender.login"),
		HeadAt: stamp("pull_request.updated_at"),
		PullRequest: &trigger.PullRequest{
			Number: int(number), Title: str("pull_request.title"),
			HeadRepo: repo("pull_request.head.repo"), HeadRef: str("pull_request.head.ref"),
			BaseRef: str("pull_request.base.ref"), Author: str("pull_request.user.login"),
			AuthorAssociation: str("pull_request.author_association"),
		},
	}, false
}

// lookup returns the value at a dotted path in a JSON document, or nil.
func lookup(doc map[string]any, path string) any {
	var v any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}

	return v
}
