package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/yaci-ci/yaci/internal/launch"
)

// BenchmarkWebhookToJob measures a signed push's way from the POST to its
// Job existing on the real apiserver: verification, the config read from
// the fake GitHub, the clone token, and the Job and Secret creation. One
// delivery at a time; p50 and p99 are reported besides ns/op.
func BenchmarkWebhookToJob(b *testing.B) {
	e := newEnv(b)
	oneJob := []byte("jobs:\n  - name: test\n    image: golang:1.26\n    run: go test ./...\n")

	w, err := e.kube.BatchV1().Jobs(e.ns).Watch(context.Background(), runsOnly)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		head := fmt.Sprintf("%040x", i+1)
		b.StopTimer()
		e.gh.SetFile(owner, repoName, head, ".yaci.yml", oneJob)
		b.StartTimer()

		start := time.Now()
		resp := e.deliver(b, "push", fmt.Sprintf("bench-%d", i), pushPayload("main", head))
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("delivery answered %d", resp.StatusCode)
		}
		waitJobAdded(b, w, head)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()

	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func waitJobAdded(b *testing.B, w watch.Interface, sha string) {
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("job watch closed")
			}
			job, isJob := ev.Object.(*batchv1.Job)
			if ev.Type == watch.Added && isJob && job.Labels[launch.LabelSHA] == sha {
				return
			}
		case <-timeout:
			b.Fatalf("no job for %s within a minute", sha)
		}
	}
}
