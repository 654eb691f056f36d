package watch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/repoconfig"
	"github.com/yaci-ci/yaci/internal/trigger"
)

// supersession says which runs an event cancels: those its labels select
// and match accepts, marked with mark.
type supersession struct {
	labels labels.Set
	match  func(launch.RunInfo) bool
	mark   string
}

// Supersede cancels the unfinished runs that ev makes pointless: for a
// push, the runs of earlier pushes to the same branch of the repository
// (at another commit); for a pull request's synchronize, the runs of the
// same pull request at another commit; for a closed pull request, all of
// its runs. Each is marked with AnnotationSupersededBy and deleted in the
// foreground; the watcher then reports it as an error saying why. Other
// events cancel nothing.
//
// Only runs of older commits are cancelled (see older): GitHub may deliver
// an event late, or someone may redeliver an old one, and that must not
// cancel the run of the commit that replaced it.
//
// It reads the Jobs from the API server rather than from the watcher's
// cache, so it works in a yaci that does not run the watcher. The error
// joins every Job it could not cancel, each named.
func (w *Watcher) Supersede(ctx context.Context, ev trigger.Event) error {
	s, ok := supersessionFor(ev)
	if !ok {
		return nil
	}

	jobs, err := w.listRuns(ctx, s.labels)
	if err != nil {
		return err
	}

	var errs []error
	for i := range jobs {
		job := &jobs[i]
		info, err := launch.RunFromJob(job)
		if err != nil || !s.match(info) || !cancellable(job) {
			continue
		}
		w.log.Info("cancelling a superseded run", "run", job.Name,
			"repo", info.Repo.FullName(), "sha", info.SHA, "context", info.StatusContext,
			"superseded_by", s.mark, "delivery", ev.Delivery)
		if err := w.cancel(ctx, job, AnnotationSupersededBy, s.mark); err != nil {
			errs = append(errs, fmt.Errorf("supersede run %s: %w", job.Name, err))
		}
	}

	return errors.Join(errs...)
}

// supersessionFor returns what ev supersedes, if anything. Labels narrow
// the list; the annotations, which hold the values verbatim, decide.
func supersessionFor(ev trigger.Event) (supersession, bool) {
	base := labels.Set{
		launch.LabelManagedBy: launch.ManagedBy,
		launch.LabelName:      launch.AppName,
		launch.LabelRepo:      launch.RepoLabel(ev.Repo),
		launch.LabelEvent:     string(ev.Kind),
	}
	sameRepo := func(info launch.RunInfo) bool {
		return strings.EqualFold(info.Repo.FullName(), ev.Repo.FullName()) &&
			info.Event == ev.Kind
	}

	switch {
	case ev.Kind == repoconfig.EventPush && ev.Branch != "":
		base[launch.LabelBranch] = launch.BranchLabel(ev.Branch)
		return supersession{labels: base, mark: ev.SHA, match: func(info launch.RunInfo) bool {
			return sameRepo(info) && info.Branch == ev.Branch && info.SHA != ev.SHA && older(info, ev)
		}}, true

	case ev.Kind == repoconfig.EventPullRequest && ev.PullRequest != nil:
		pr := ev.PullRequest.Number
		base[launch.LabelPR] = strconv.Itoa(pr)
		samePR := func(info launch.RunInfo) bool {
			return sameRepo(info) && info.PullRequest == pr
		}
		switch ev.Action {
		case "synchronize":
			return supersession{labels: base, mark: ev.SHA, match: func(info launch.RunInfo) bool {
				return samePR(info) && info.SHA != ev.SHA && older(info, ev)
			}}, true
		case "closed":
			return supersession{labels: base, mark: SupersededByClose, match: samePR}, true
		}
	}

	return supersession{}, false
}

// older reports whether the run's commit became the head before ev's
// did, so that ev may cancel it. The commit ev's push replaced is older
// by definition. Otherwise the times GitHub gave decide; they have whole
// seconds, and two heads of one second are not cancelled, as which came
// first is unknown and a run cancelled by mistake is worse than one run
// too many. A run or an event without a time (launched by an older
// yaci, or from a payload without one) is taken as older: then yaci
// cancels as it did before it compared times.
func older(info launch.RunInfo, ev trigger.Event) bool {
	if ev.Before != "" && info.SHA == ev.Before {
		return true
	}
	if info.HeadAt.IsZero() || ev.HeadAt.IsZero() {
		return true
	}

	return info.HeadAt.Before(ev.HeadAt)
}

// listRuns lists the Jobs that sel selects.
func (w *Watcher) listRuns(ctx context.Context, sel labels.Set) ([]batchv1.Job, error) {
	ctx, cancel := w.call(ctx)
	defer cancel()

	list, err := w.client.BatchV1().Jobs(w.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: sel.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list runs %s: %w", sel, err)
	}

	return list.Items, nil
}

// cancellable reports whether job is a run that is still going: not
// ended, not being deleted, not reported.
func cancellable(job *batchv1.Job) bool {
	_, ended := terminal(job)

	return !ended && job.DeletionTimestamp == nil &&
		job.Annotations[launch.AnnotationReported] == ""
}
