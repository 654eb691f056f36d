package logs

import (
	"bufio"
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/yaci-ci/yaci/internal/repoconfig"
)

// pageCSP allows the page nothing but its own stylesheet and script and
// the stream they read.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var pageFuncs = template.FuncMap{
	"short": func(sha string) string { return sha[:min(len(sha), 7)] },
	"when": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}

// pageData is what the page template shows.
type pageData struct {
	Run      *Run
	Event    string
	Duration string
	// Live is true for a run that is still going: the page then offers
	// to follow its log.
	Live         bool
	AssetVersion string
	Sections     []*section
}

// section is one container's log on the page.
type section struct {
	ID        string
	Pod       string
	Container Container
	// Prefix makes line anchors unique on the page: the newest pod's
	// run container has none ("L42"), the others are prefixed.
	Prefix string
	Status string
	// Stream is the address of the live stream, when it is followed.
	Stream string
	// Raw is the address of the plain-text log.
	Raw    string
	HasLog bool
	// Note is shown below the log: why it is missing, cut, or broken.
	Note string

	open func(context.Context) (io.ReadCloser, error)
	// hold keeps back a last line without a line break, which the
	// stream will send once it is whole.
	hold bool
	// bounded cuts a live log where the archive would.
	bounded bool
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	name, _, ok := h.authorized(w, r, false)
	if !ok {
		return
	}
	run, live, err := h.loadRun(r.Context(), name)
	if err != nil {
		h.fail(w, r, false, name, err)
		return
	}

	data := h.pageData(run, live)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("Cache-Control", "no-store")
	if err := h.renderPage(r.Context(), w, data); err != nil {
		h.log.WarnContext(r.Context(), "render run page", "run", name, "err", err)
	}
}

// pageData lays out the page of run. Logs of a live run come from the
// cluster; those of an archived one from the store.
func (h *Handler) pageData(run *Run, live bool) *pageData {
	d := &pageData{
		Run:          run,
		Event:        eventText(run),
		Live:         live && !run.State.Final(),
		AssetVersion: h.assetVersion,
	}
	if dur := run.Duration(h.now()); dur > 0 {
		d.Duration = dur.Round(time.Second).String()
	}

	token := h.signer.Token(run.Name)
	for i, p := range run.Pods {
		for _, c := range p.Containers {
			d.Sections = append(d.Sections, h.section(run, i, c, live, token))
		}
	}

	return d
}

// section lays out the log of container c of the i-th pod of run.
func (h *Handler) section(run *Run, i int, c Container, live bool, token string) *section {
	p, newest := run.Pods[i], i == len(run.Pods)-1
	s := &section{Pod: p.Name, Container: c, Status: containerStatus(c)}
	s.ID = safeID(c.Name)
	if !newest {
		s.ID = "p" + strconv.Itoa(i+1) + "-" + s.ID
	}
	if !newest || c.Name != "run" {
		s.Prefix = s.ID + "-"
	}
	v := url.Values{"t": {token}, "pod": {p.Name}, "container": {c.Name}}
	s.Raw = url.PathEscape(run.Name) + "/log?" + v.Encode()
	following := live && !run.State.Final() && newest && c.State != "terminated"
	if following {
		s.Stream = url.PathEscape(run.Name) + "/stream?" + v.Encode()
	}

	switch {
	case !live && c.Log != nil:
		s.HasLog = true
		s.open = func(ctx context.Context) (io.ReadCloser, error) {
			return h.store.GetLog(ctx, run.Name, p.Name, c.Name)
		}
	case live && c.Started():
		s.HasLog, s.hold, s.bounded = true, following, true
		s.open = func(ctx context.Context) (io.ReadCloser, error) {
			return h.liveLog(ctx, p.Name, c.Name, false)
		}
	case following:
		// Not started yet: an empty log the stream will fill.
		s.HasLog = true
		s.Note = "Waiting for the container to start."
	default:
		s.Note = c.Note
		if s.Note == "" {
			s.Note = "No log: the container never started."
		}
	}

	return s
}

// liveLog opens a container's log in the cluster, bounded like an
// archived one.
func (h *Handler) liveLog(ctx context.Context, pod, container string, follow bool) (io.ReadCloser, error) {
	opts := &corev1.PodLogOptions{Container: container, Follow: follow}
	if !follow {
		limit := DefaultMaxLogBytes + 1
		opts.LimitBytes = &limit
	}

	return h.client.CoreV1().Pods(h.namespace).GetLogs(pod, opts).Stream(ctx)
}

// renderPage writes the page in pieces, streaming each log from its
// source, so that memory stays bounded whatever a log's length.
func (h *Handler) renderPage(ctx context.Context, w io.Writer, d *pageData) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := h.page.ExecuteTemplate(bw, "head", d); err != nil {
		return err
	}
	for _, s := range d.Sections {
		if err := h.page.ExecuteTemplate(bw, "section-open", s); err != nil {
			return err
		}
		if s.open != nil {
			if note := renderLog(ctx, bw, s); note != "" {
				s.Note = note
			}
		}
		if err := h.page.ExecuteTemplate(bw, "section-close", s); err != nil {
			return err
		}
	}
	if err := h.page.ExecuteTemplate(bw, "foot", d); err != nil {
		return err
	}

	return bw.Flush()
}

// renderLog writes a section's log lines and returns a note for the
// reader when the log could not be read whole.
func renderLog(ctx context.Context, bw *bufio.Writer, s *section) string {
	rc, err := s.open(ctx)
	if err != nil {
		return "The log could not be read."
	}
	defer rc.Close()

	var src io.Reader = rc
	var tr *truncReader
	if s.bounded {
		tr = newTruncReader(rc, DefaultMaxLogBytes)
		src = tr
	}
	lines := newHTMLLines(bw, s.Prefix)
	err = eachLine(src, s.hold, func(b []byte) error {
		lines.line(b)
		return nil
	})
	switch {
	case err != nil:
		return "The log could not be read to its end."
	case tr != nil && tr.truncated:
		return "Only the first " + formatSize(DefaultMaxLogBytes) + " of the log are shown."
	}

	return ""
}

// eventText says what started the run, in words.
func eventText(run *Run) string {
	if repoconfig.EventKind(run.Event) == repoconfig.EventPullRequest {
		return fmt.Sprintf("pull request #%d", run.PullRequest)
	}
	if run.Branch != "" {
		return "push to " + run.Branch
	}

	return "push"
}

// containerStatus says how a container ended, or that it has not.
func containerStatus(c Container) string {
	switch {
	case c.ExitCode != nil && c.Reason != "":
		return fmt.Sprintf("exit code %d (%s)", *c.ExitCode, c.Reason)
	case c.ExitCode != nil:
		return fmt.Sprintf("exit code %d", *c.ExitCode)
	case c.State == "running":
		return "running"
	case c.Reason != "":
		return "waiting (" + c.Reason + ")"
	default:
		return "waiting"
	}
}

// safeID keeps only what a Kubernetes name may hold, so that an id can be
// written into the page without escaping: the line renderer writes line
// anchors raw.
func safeID(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, name)
}
