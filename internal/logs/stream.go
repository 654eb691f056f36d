package logs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Timing of live streams.
const (
	// maxStreamTime ends a stream that outlives any job's deadline.
	maxStreamTime = 3 * time.Hour
	// streamCheck is how often a stream looks at the pod, to learn that
	// its container started or ended.
	streamCheck = 5 * time.Second
	// keepAlive is how often an idle stream sends a comment, so that
	// proxies do not close it.
	keepAlive = 15 * time.Second
)

// streamReq is a parsed stream request.
type streamReq struct {
	name, pod, container string
	// from is the number of lines the client has; only later ones are
	// sent.
	from int
}

func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	name, q, ok := h.authorized(w, r, false)
	if !ok {
		return
	}
	req := streamReq{name: name, pod: q.Get("pod"), container: q.Get("container")}
	if req.container == "" {
		req.container = "run"
	}
	if err := checkName("container", req.container); err != nil {
		clientError(w, false, http.StatusBadRequest, "container must be a container name")
		return
	}
	var err error
	if req.from, err = fromLine(q.Get("from"), r.Header.Get("Last-Event-ID")); err != nil {
		clientError(w, false, http.StatusBadRequest, err.Error())
		return
	}

	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		w.Header().Set("Retry-After", "30")
		clientError(w, false, http.StatusServiceUnavailable,
			"too many live logs are being followed")
		return
	}

	run, _, err := h.loadRun(r.Context(), req.name)
	if err != nil {
		h.fail(w, r, false, req.name, err)
		return
	}

	// Streams outlive any write timeout the server sets for pages.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ctx, cancel := context.WithTimeout(r.Context(), maxStreamTime)
	defer cancel()

	sw := &sseWriter{w: bufio.NewWriter(w), rc: http.NewResponseController(w)}
	sw.raw("retry: 3000\n\n")
	if state, ok := h.streamLog(ctx, sw, run, req); ok {
		sw.event("end", fmt.Sprintf(`{"state":%q}`, state))
	}
}

// fromLine reads the line count a client has, from the query or from the
// id of the last event it got, whichever is larger.
func fromLine(query, lastID string) (int, error) {
	from := 0
	for _, v := range []string{query, lastID} {
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("from and Last-Event-ID must be line numbers")
		}
		from = max(from, n)
	}

	return from, nil
}

// How a followed log stream ended.
const (
	// followEnded: the container has ended and every line was sent.
	followEnded = iota
	// followWait: the container has no log yet; look again later.
	followWait
	// followBroken: the stream or the client failed; the client
	// reconnects and carries on from the last line it got.
	followBroken
)

// streamLog sends the lines of the requested log after req.from until the
// container ends, and returns the run's state by then; ok is false when
// the stream broke off and must not be marked as ended. It waits for a
// container that has not started yet.
func (h *Handler) streamLog(ctx context.Context, sw *sseWriter, run *Run, req streamReq) (RunState, bool) {
	for {
		pod, ctr, found := findContainer(run, req.pod, req.container)
		switch {
		case found && ctr.Log != nil && run.Archived != nil:
			h.sendArchived(ctx, sw, run, pod.Name, req)
			return run.State, sw.err == nil
		case found && ctr.Started():
			if req.pod == "" {
				// Stay on this pod: a new one is a new log.
				req.pod = pod.Name
			}
			switch h.follow(ctx, sw, pod.Name, &req) {
			case followEnded:
				return h.settle(ctx, run).State, true
			case followBroken:
				return "", false
			}
		case run.State.Final() || run.Archived != nil && !found:
			return run.State, true
		}

		if !sw.wait(ctx, streamCheck) {
			return "", false
		}
		run = h.reload(ctx, run)
	}
}

// settleTries bounds how long settle waits for the Job controller.
const settleTries = 10

// settle reads the run again until its state is final, for a little
// while: the Job controller marks a Job ended a moment after its pod.
func (h *Handler) settle(ctx context.Context, run *Run) *Run {
	for range settleTries {
		run = h.reload(ctx, run)
		if run.State.Final() {
			break
		}
		select {
		case <-ctx.Done():
			return run
		case <-time.After(time.Second):
		}
	}

	return run
}

// reload reads the run again, keeping the old copy when that fails.
func (h *Handler) reload(ctx context.Context, run *Run) *Run {
	fresh, _, err := h.loadRun(ctx, run.Name)
	if err != nil {
		return run
	}

	return fresh
}

// sendArchived sends the archived lines after req.from.
func (h *Handler) sendArchived(ctx context.Context, sw *sseWriter, run *Run, pod string, req streamReq) {
	rc, err := h.store.GetLog(ctx, run.Name, pod, req.container)
	if err != nil {
		sw.err = err
		return
	}
	defer rc.Close()

	seg := newSegmenter()
	err = eachLine(rc, false, func(b []byte) error {
		if data := seg.line(b, req.from); data != nil {
			sw.line(seg.n, data)
		}
		return sw.err
	})
	if err != nil && sw.err == nil {
		sw.err = err
	}
	sw.flush()
}

// numbered is a rendered line and its number.
type numbered struct {
	n    int
	data []byte
}

// follow sends a running container's log as it grows, from the line
// after req.from, and advances req.from. It learns that the container
// has ended from the end of the log stream or from the pod's status.
func (h *Handler) follow(ctx context.Context, sw *sseWriter, pod string, req *streamReq) int {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	rc, err := h.liveLog(fctx, pod, req.container, true)
	switch {
	case apierrors.IsNotFound(err):
		return followEnded
	case apierrors.IsBadRequest(err):
		return followWait
	case err != nil:
		return followBroken
	}
	defer rc.Close()

	// Every line is parsed, so colours carry over, but the first
	// req.from are only counted: the client has them.
	lines := make(chan numbered, 256)
	go func(from int) {
		defer close(lines)
		seg := newSegmenter()
		_ = eachLine(rc, false, func(b []byte) error {
			data := seg.line(b, from)
			if data == nil {
				return nil
			}
			select {
			case lines <- numbered{seg.n, data}:
				return nil
			case <-fctx.Done():
				return fctx.Err()
			}
		})
	}(req.from)

	send := func(l numbered) {
		sw.line(l.n, l.data)
		req.from = l.n
	}
	check := time.NewTicker(streamCheck)
	defer check.Stop()
	idle := true
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				sw.flush()
				return followEnded
			}
			send(l)
			idle = false
			if len(lines) == 0 {
				sw.flush()
			}
			if sw.err != nil {
				return followBroken
			}
		case <-check.C:
			sw.comment()
			// Some log servers keep a followed stream open after the
			// container ends; the pod's status says it has.
			if idle && h.containerEnded(ctx, pod, req.container) {
				stop()
				for l := range lines {
					send(l)
				}
				sw.flush()
				return followEnded
			}
			idle = true
		case <-ctx.Done():
			return followBroken
		}
	}
}

// containerEnded reports whether the container has terminated or its pod
// is gone.
func (h *Handler) containerEnded(ctx context.Context, pod, container string) bool {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()

	p, err := h.client.CoreV1().Pods(h.namespace).Get(ctx, pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		return false
	}
	for _, c := range podFrom(p).Containers {
		if c.Name == container {
			return c.State == "terminated"
		}
	}

	return true
}

// sseWriter writes server-sent events and remembers the first error.
type sseWriter struct {
	w   *bufio.Writer
	rc  *http.ResponseController
	err error
}

func (s *sseWriter) raw(text string) {
	if s.err == nil {
		_, s.err = io.WriteString(s.w, text)
		s.flush()
	}
}

// line writes one log line as a message whose id is its number, which a
// reconnecting EventSource sends back as Last-Event-ID.
func (s *sseWriter) line(n int, data []byte) {
	if s.err != nil {
		return
	}
	s.w.WriteString("id: ")
	s.w.WriteString(strconv.Itoa(n))
	s.w.WriteString("\ndata: ")
	s.w.Write(data)
	_, s.err = s.w.WriteString("\n\n")
}

func (s *sseWriter) event(name, data string) {
	s.raw("event: " + name + "\ndata: " + data + "\n\n")
}

func (s *sseWriter) comment() { s.raw(": still here\n\n") }

func (s *sseWriter) flush() {
	if s.err == nil {
		if s.err = s.w.Flush(); s.err == nil {
			s.err = s.rc.Flush()
		}
	}
}

// wait sleeps for d, sending keep-alive comments, and reports false when
// ctx ends or the client is gone.
func (s *sseWriter) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		s.comment()
		return s.err == nil
	}
}
