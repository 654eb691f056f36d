package github

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestGiveUpNamesTheDeadline covers the race TestRetryStopsAtContextDeadline
// met now and then: the deadline passes after an attempt failed but before
// the decision to retry, so the retry loop hands back the attempt's own
// error. The call's error must still say the deadline ended it.
func TestGiveUpNamesTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	attempt := errors.New("POST /repos/o/r/statuses/x: 502 Bad Gateway")

	err := giveUp(ctx, attempt, attempt, 14)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, attempt) {
		t.Errorf("giveUp = %v, want it to wrap the deadline and the attempt's error", err)
	}
	if !strings.Contains(err.Error(), "14 attempts") {
		t.Errorf("giveUp = %v, want the number of attempts", err)
	}

	// Without a deadline the attempt's error is all there is to say.
	if err := giveUp(context.Background(), attempt, attempt, 3); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("giveUp without a deadline = %v, names one", err)
	}
}
