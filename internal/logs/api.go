package logs

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/yaci-ci/yaci/internal/launch"
)

// APIRun is a run as the JSON API shows it.
type APIRun struct {
	Name            string     `json:"name"`
	Repo            string     `json:"repo"`
	SHA             string     `json:"sha"`
	Job             string     `json:"job"`
	Event           string     `json:"event"`
	Attempt         int        `json:"attempt"`
	PullRequest     int        `json:"pull_request,omitempty"`
	Branch          string     `json:"branch,omitempty"`
	Delivery        string     `json:"delivery,omitempty"`
	StatusContext   string     `json:"status_context,omitempty"`
	State           RunState   `json:"state"`
	Reason          string     `json:"reason,omitempty"`
	Started         *time.Time `json:"started,omitempty"`
	Finished        *time.Time `json:"finished,omitempty"`
	DurationSeconds float64    `json:"duration_seconds"`
	// Archived is true when the run is served from the archive.
	Archived bool `json:"archived"`
	// URL is the run's page; Token is its token, which the API's other
	// run addresses take as "t".
	URL   string   `json:"url"`
	Token string   `json:"token"`
	Pods  []APIPod `json:"pods"`
}

// APIPod is a pod of a run in the JSON API.
type APIPod struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	// ExitCode and LogURL are those of the run container.
	ExitCode   *int32         `json:"exit_code,omitempty"`
	LogURL     string         `json:"log_url,omitempty"`
	Containers []APIContainer `json:"containers"`
}

// APIContainer is a container of a run's pod in the JSON API.
type APIContainer struct {
	Name      string `json:"name"`
	Init      bool   `json:"init,omitempty"`
	State     string `json:"state"`
	ExitCode  *int32 `json:"exit_code,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Note      string `json:"note,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// LogURL is the container's log as plain text; empty when there is
	// none.
	LogURL string `json:"log_url,omitempty"`
}

// APIRunList is the answer to a list request.
type APIRunList struct {
	Runs []APIRun `json:"runs"`
}

func (h *Handler) serveAPIRun(w http.ResponseWriter, r *http.Request) {
	name, _, ok := h.authorized(w, r, true)
	if !ok {
		return
	}
	run, live, err := h.loadRun(r.Context(), name)
	if err != nil {
		h.fail(w, r, true, name, err)
		return
	}

	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, h.apiRun(run, live))
}

func (h *Handler) serveAPIList(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, true)
	if !ok {
		return
	}
	if !h.bearerOK(r) {
		// A list would tell which runs exist; only API clients see it.
		w.Header().Set("WWW-Authenticate", `Bearer realm="yaci"`)
		clientError(w, true, http.StatusUnauthorized, "listing runs needs the API bearer token")
		return
	}
	repo, sha := q.Get("repo"), q.Get("sha")
	if !repoPattern.MatchString(repo) {
		clientError(w, true, http.StatusBadRequest, "repo must be owner/name")
		return
	}
	if sha != "" && !launch.IsCommitID(sha) {
		clientError(w, true, http.StatusBadRequest,
			"sha must be a full commit id in lower-case hex")
		return
	}

	live, err := h.clusterRuns(r.Context(), repo, sha)
	if err != nil {
		h.fail(w, r, true, repo, err)
		return
	}
	stored, err := h.store.ListRuns(r.Context(), repo, sha)
	if err != nil {
		h.fail(w, r, true, repo, err)
		return
	}

	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, h.mergeRuns(live, stored))
}

// mergeRuns lists each run once: archived once it has ended there, else
// as the cluster shows it.
func (h *Handler) mergeRuns(live, stored []*Run) APIRunList {
	archived := map[string]*Run{}
	for _, r := range stored {
		archived[r.Name] = r
	}

	var all []*Run
	isLive := map[string]bool{}
	for _, r := range live {
		if a := archived[r.Name]; a != nil && a.State.Final() {
			continue
		}
		delete(archived, r.Name)
		all = append(all, r)
		isLive[r.Name] = true
	}
	for _, r := range stored {
		if archived[r.Name] != nil {
			all = append(all, r)
		}
	}
	sortRuns(all)
	if len(all) > maxListed {
		all = all[:maxListed]
	}

	list := APIRunList{Runs: []APIRun{}}
	for _, r := range all {
		list.Runs = append(list.Runs, h.apiRun(r, isLive[r.Name]))
	}

	return list
}

// apiRun describes run for the API, with signed addresses of its page and
// logs. Addresses are absolute paths on yaci's host.
func (h *Handler) apiRun(run *Run, live bool) APIRun {
	token := h.signer.Token(run.Name)
	out := APIRun{
		Name: run.Name, Repo: run.Repo, SHA: run.SHA, Job: run.Job, Event: run.Event,
		Attempt: run.Attempt, PullRequest: run.PullRequest, Branch: run.Branch,
		Delivery: run.Delivery, StatusContext: run.StatusContext,
		State: run.State, Reason: run.Reason, Started: run.Started, Finished: run.Finished,
		DurationSeconds: run.Duration(h.now()).Seconds(),
		Archived:        !live,
		URL:             PagesPath + url.PathEscape(run.Name) + "?t=" + token,
		Token:           token,
		Pods:            []APIPod{},
	}
	for _, p := range run.Pods {
		pod := APIPod{Name: p.Name, Phase: p.Phase, Containers: []APIContainer{}}
		for _, c := range p.Containers {
			ac := APIContainer{
				Name: c.Name, Init: c.Init, State: c.State, ExitCode: c.ExitCode,
				Reason: c.Reason, Note: c.Note,
			}
			if c.Log != nil {
				ac.Bytes, ac.Truncated = c.Log.Bytes, c.Log.Truncated
			}
			if live && c.Started() || !live && c.Log != nil {
				v := url.Values{"t": {token}, "pod": {p.Name}, "container": {c.Name}}
				ac.LogURL = PagesPath + url.PathEscape(run.Name) + "/log?" + v.Encode()
			}
			if c.Name == "run" {
				pod.ExitCode, pod.LogURL = c.ExitCode, ac.LogURL
			}
			pod.Containers = append(pod.Containers, ac)
		}
		out.Pods = append(out.Pods, pod)
	}

	return out
}

func (h *Handler) serveRawLog(w http.ResponseWriter, r *http.Request) {
	name, q, ok := h.authorized(w, r, false)
	if !ok {
		return
	}
	podName, container := q.Get("pod"), q.Get("container")
	if container == "" {
		container = "run"
	}
	if checkName("container", container) != nil ||
		podName != "" && len(validation.IsDNS1123Subdomain(podName)) > 0 {
		clientError(w, false, http.StatusBadRequest, "pod and container must be Kubernetes names")
		return
	}
	run, live, err := h.loadRun(r.Context(), name)
	if err != nil {
		h.fail(w, r, false, name, err)
		return
	}
	pod, ctr, found := findContainer(run, podName, container)
	if !found || live && !ctr.Started() || !live && ctr.Log == nil {
		clientError(w, false, http.StatusNotFound, "no such log")
		return
	}

	var rc io.ReadCloser
	if live {
		rc, err = h.liveLog(r.Context(), pod.Name, container, false)
	} else {
		rc, err = h.store.GetLog(r.Context(), name, pod.Name, container)
	}
	if err != nil {
		h.fail(w, r, false, name, errors.Join(errUnavailable, err))
		return
	}
	defer rc.Close()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	var src io.Reader = rc
	if live {
		src = newTruncReader(rc, DefaultMaxLogBytes)
	}
	if _, err := io.Copy(w, src); err != nil {
		h.log.DebugContext(r.Context(), "send raw log", "run", name, "err", err)
	}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
