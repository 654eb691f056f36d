package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection says how replicas elect the one that watches and admits
// runs. The Lease lives in the Jobs' namespace.
type LeaderElection struct {
	// Lease names the coordination.k8s.io Lease; empty turns election off.
	Lease string
	// Identity names this replica in the Lease; empty means the host name
	// and a random suffix, unique per process.
	Identity string
	// LeaseDuration is how long followers wait after the leader's last
	// renewal before taking over: the longest a dead leader's work waits.
	// RenewDeadline is how long the leader tries to renew before it gives
	// up leading; RetryPeriod how often each replica tries. Zero fields
	// mean 15s, 10s and 2s, client-go's usual values.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (e *LeaderElection) validate() error {
	if e.Lease == "" {
		return nil
	}
	if e.LeaseDuration == 0 {
		e.LeaseDuration = 15 * time.Second
	}
	if e.RenewDeadline == 0 {
		e.RenewDeadline = 10 * time.Second
	}
	if e.RetryPeriod == 0 {
		e.RetryPeriod = 2 * time.Second
	}
	if !(e.RetryPeriod < e.RenewDeadline && e.RenewDeadline < e.LeaseDuration) {
		return errors.New("server: leader election needs retry period < renew deadline < lease duration")
	}
	if e.Identity == "" {
		host, _ := os.Hostname()
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		e.Identity = host + "_" + hex.EncodeToString(suffix)
	}

	return nil
}

// elect takes part in leader election until ctx ends, leading whenever
// this replica holds the Lease. A replica that loses the Lease stops its
// watcher and admitter and stands again: the next term builds them anew
// from the cluster, so nothing of a lost term carries over.
func (s *Server) elect(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: s.election.Lease, Namespace: s.namespace},
		Client:     s.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.election.Identity},
	}
	log := s.log.With("lease", s.election.Lease, "identity", s.election.Identity)

	for ctx.Err() == nil {
		// The elector starts OnStartedLeading in a goroutine of its own
		// and does not wait for it; handing the term over on a channel
		// keeps the term's work here, where it can be waited for, so two
		// terms of this replica never overlap.
		terms := make(chan context.Context, 1)
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:          lock,
			LeaseDuration: s.election.LeaseDuration,
			RenewDeadline: s.election.RenewDeadline,
			RetryPeriod:   s.election.RetryPeriod,
			// A replica stopping on SIGTERM hands over at once instead
			// of making the others wait out the lease. The work of its
			// last term may still finish the run in hand meanwhile; the
			// watcher's record on the Job makes that harmless.
			ReleaseOnCancel: true,
			Name:            s.election.Lease,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(term context.Context) { terms <- term },
				OnStoppedLeading: func() { log.Info("not leading") },
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			le.Run(ctx)
		}()

		select {
		case term := <-terms:
			log.Info("leading: watching and admitting runs")
			if err := s.lead(term); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("term ended with an error", "err", err)
			}
			<-ended
		case <-ended:
			// The elector only gives up acquiring when ctx ends; if it
			// did acquire, the term is already over.
		}
	}

	return nil
}
