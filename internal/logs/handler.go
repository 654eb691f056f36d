package logs

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/yaci-ci/yaci/internal/launch"
)

// Paths under which Handler serves; Mount registers them.
const (
	PagesPath = "/runs/"
	APIPath   = "/api/v1/runs"
)

// maxStreams bounds the live streams served at once; each holds a
// connection to the API server.
const maxStreams = 64

// callTimeout bounds each call the Handler makes to the API server.
const callTimeout = 10 * time.Second

//go:embed assets
var assets embed.FS

// The embedded files: the page's template, its stylesheet and the script
// that follows a live log.
const (
	pageFile = "assets/page.html"
	cssFile  = "assets/yaci.css"
	jsFile   = "assets/follow.js"
)

// errUnavailable stands for any failure to read the cluster or the store,
// whose details go to the log, never to the client.
var errUnavailable = errors.New("logs: run data unavailable")

// Handler serves what users and tools read about runs:
//
//	GET /runs/{name}?t=TOKEN            the run's page
//	GET /runs/{name}/stream?t=TOKEN&container=run[&pod=P][&from=N]
//	                                    its log, live, as server-sent events
//	GET /runs/{name}/log?t=TOKEN&container=run[&pod=P]
//	                                    a container's log as plain text
//	GET /runs/yaci.css, /runs/follow.js the page's assets
//	GET /api/v1/runs/{name}?t=TOKEN     the run as JSON
//	GET /api/v1/runs?repo=OWNER/NAME[&sha=SHA]
//	                                    the runs of a repository or commit
//
// A run's endpoints need its token (see Signer) or the API bearer token;
// without either they answer 404, as for a run that does not exist, so
// that nobody learns which runs exist. Listing needs the bearer token.
type Handler struct {
	client    kubernetes.Interface
	namespace string
	store     Store
	signer    *Signer
	// apiToken is the SHA-256 of the bearer token, so comparing it takes
	// the same time whatever the length of what a client sends.
	apiToken    [sha256.Size]byte
	hasAPIToken bool
	log         *slog.Logger
	mux         *http.ServeMux
	page        *template.Template
	// assetVersion changes whenever the assets do, so browsers never
	// mix a new page with an old cached script.
	assetVersion string
	streams      chan struct{}
	now          func() time.Time
}

// NewHandler returns a Handler that reads live runs from the Jobs and pods
// in namespace through client, archived runs from store, and checks run
// tokens with signer. apiToken, when not empty, is the bearer token that
// API clients may send instead of run tokens, and the one that lets them
// list runs. A nil logger means slog.Default().
func NewHandler(client kubernetes.Interface, namespace string, store Store, signer *Signer, apiToken string, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &Handler{
		client:    client,
		namespace: namespace,
		store:     store,
		signer:    signer,
		log:       logger,
		mux:       http.NewServeMux(),
		page:      template.Must(template.New("page").Funcs(pageFuncs).ParseFS(assets, pageFile)),
		streams:   make(chan struct{}, maxStreams),
		now:       time.Now,
	}
	if apiToken != "" {
		h.apiToken, h.hasAPIToken = sha256.Sum256([]byte(apiToken)), true
	}
	h.assetVersion = assetsVersion()

	h.mux.HandleFunc("GET /runs/{name}", h.servePage)
	h.mux.HandleFunc("GET /runs/{name}/stream", h.serveStream)
	h.mux.HandleFunc("GET /runs/{name}/log", h.serveRawLog)
	h.mux.HandleFunc("GET /runs/yaci.css", h.serveAsset(cssFile, "text/css; charset=utf-8"))
	h.mux.HandleFunc("GET /runs/follow.js", h.serveAsset(jsFile, "text/javascript; charset=utf-8"))
	h.mux.HandleFunc("GET /api/v1/runs/{name}", h.serveAPIRun)
	h.mux.HandleFunc("GET /api/v1/runs", h.serveAPIList)

	return h
}

// Mount registers the Handler on mux for every path it serves.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle(PagesPath, h)
	mux.Handle(APIPath, h)
	mux.Handle(APIPath+"/", h)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Run links carry their token; no page may hand it on in a Referer.
	hdr.Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// assetsVersion returns a short hash of the embedded assets.
func assetsVersion() string {
	sum := sha256.New()
	for _, name := range []string{cssFile, jsFile} {
		data, _ := assets.ReadFile(name)
		sum.Write(data)
	}

	return hex.EncodeToString(sum.Sum(nil))[:12]
}

func (h *Handler) serveAsset(name, contentType string) http.HandlerFunc {
	data, err := assets.ReadFile(name)
	if err != nil {
		panic("logs: embedded asset missing: " + name)
	}

	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(data)
	}
}

// query parses the request's query, answering 400 when it is malformed.
func query(w http.ResponseWriter, r *http.Request, api bool) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		clientError(w, api, http.StatusBadRequest, "malformed query string")
		return nil, false
	}

	return q, true
}

// authorized parses r's query and checks that r may read the run its path
// names. When not, it has answered: 400 for a malformed query, 404 for a
// run r may not see, which is also what a run that does not exist gets.
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request, api bool) (name string, q url.Values, ok bool) {
	name = r.PathValue("name")
	if q, ok = query(w, r, api); !ok {
		return "", nil, false
	}
	if !h.allowed(r, q, name) {
		clientError(w, api, http.StatusNotFound, "run not found")
		return "", nil, false
	}

	return name, q, true
}

// allowed reports whether r may read the run called name: with the run's
// token in "t", or with the API bearer token.
func (h *Handler) allowed(r *http.Request, q url.Values, name string) bool {
	if checkName("run", name) != nil {
		return false
	}
	tokenOK := h.signer.Valid(name, q.Get("t"))

	return h.bearerOK(r) || tokenOK
}

// bearerOK reports whether r carries the API bearer token.
func (h *Handler) bearerOK(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !h.hasAPIToken {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))

	return subtle.ConstantTimeCompare(sum[:], h.apiToken[:]) == 1
}

// clientError answers with status and a short message, as JSON for the
// API and as plain text for pages.
func clientError(w http.ResponseWriter, api bool, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if api {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// fail answers for err from loadRun: 404 for a run that does not exist,
// 503 (with the details only in the log) for anything else.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, api bool, name string, err error) {
	if errors.Is(err, ErrNotFound) {
		clientError(w, api, http.StatusNotFound, "run not found")
		return
	}
	h.log.ErrorContext(r.Context(), "read run", "run", name, "err", err)
	clientError(w, api, http.StatusServiceUnavailable, "run data is unavailable; try again shortly")
}

// loadRun returns the run called name: from the archive once it holds the
// ended run, else from the cluster (live is then true), else whatever the
// archive holds. It returns ErrNotFound when neither knows the run.
func (h *Handler) loadRun(ctx context.Context, name string) (run *Run, live bool, err error) {
	stored, err := h.store.GetRun(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, errors.Join(errUnavailable, err)
	}
	if stored != nil && stored.State.Final() {
		return stored, false, nil
	}

	run, err = h.clusterRun(ctx, name)
	switch {
	case err == nil:
		return run, true, nil
	case stored != nil:
		return stored, false, nil
	case errors.Is(err, ErrNotFound):
		return nil, false, err
	default:
		return nil, false, errors.Join(errUnavailable, err)
	}
}

// clusterRun reads the run called name from its Job and pods.
func (h *Handler) clusterRun(ctx context.Context, name string) (*Run, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()

	job, err := h.client.BatchV1().Jobs(h.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	list, err := h.client.CoreV1().Pods(h.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: podsSelector(name),
	})
	if err != nil {
		return nil, err
	}

	run, err := runFromJob(job, podPointers(list.Items))
	if errors.Is(err, launch.ErrNotRun) || errors.Is(err, launch.ErrBadRunMetadata) {
		// Not a run yaci can show: as good as no run at all.
		return nil, ErrNotFound
	}

	return run, err
}

// clusterRuns reads the runs of repo (at sha, unless it is empty) from
// the cluster's Jobs and pods, found by their labels.
func (h *Handler) clusterRuns(ctx context.Context, repo, sha string) ([]*Run, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()

	sel := launch.Selector
	if sha != "" {
		sel += "," + launch.LabelSHA + "=" + sha
	}
	opts := metav1.ListOptions{LabelSelector: sel}
	jobs, err := h.client.BatchV1().Jobs(h.namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	pods, err := h.client.CoreV1().Pods(h.namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	byJob := map[string][]*corev1.Pod{}
	for _, p := range podPointers(pods.Items) {
		byJob[p.Labels[jobNameLabel]] = append(byJob[p.Labels[jobNameLabel]], p)
	}

	var runs []*Run
	for i := range jobs.Items {
		job := &jobs.Items[i]
		run, err := runFromJob(job, byJob[job.Name])
		if err != nil || !strings.EqualFold(run.Repo, repo) {
			continue
		}
		runs = append(runs, run)
	}

	return runs, nil
}

func podPointers(items []corev1.Pod) []*corev1.Pod {
	pods := make([]*corev1.Pod, len(items))
	for i := range items {
		pods[i] = &items[i]
	}

	return pods
}

// findContainer returns the pod and container of run that a request
// names; an empty pod means the newest.
func findContainer(run *Run, pod, container string) (*Pod, *Container, bool) {
	for i := len(run.Pods) - 1; i >= 0; i-- {
		p := &run.Pods[i]
		if pod != "" && p.Name != pod {
			continue
		}
		for j := range p.Containers {
			if p.Containers[j].Name == container {
				return p, &p.Containers[j], true
			}
		}
		if pod == "" {
			return nil, nil, false
		}
	}

	return nil, nil, false
}
