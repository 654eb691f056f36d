package watch

import (
	"testing"
	"time"

	"github.com/yaci-ci/yaci/internal/launch"
	"github.com/yaci-ci/yaci/internal/trigger"
)

func TestOlder(t *testing.T) {
	const run, replaced = "1111111111111111111111111111111111111111",
		"2222222222222222222222222222222222222222"
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	tests := []struct {
		name   string
		runAt  time.Time
		ev     trigger.Event
		cancel bool
	}{
		{"run's head came first", at(0), trigger.Event{HeadAt: at(1)}, true},
		{"event is a late delivery of an older head", at(5), trigger.Event{HeadAt: at(1)}, false},
		{"same second, order unknown", at(1), trigger.Event{HeadAt: at(1)}, false},
		{"same second, but the push replaced the run's commit", at(1),
			trigger.Event{HeadAt: at(1), Before: run}, true},
		{"the push replaced the run's commit, times disagree", at(9),
			trigger.Event{HeadAt: at(1), Before: run}, true},
		{"the push replaced another commit", at(9), trigger.Event{HeadAt: at(1), Before: replaced}, false},
		{"run from an older yaci, without a time", time.Time{}, trigger.Event{HeadAt: at(1)}, true},
		{"event without a time", at(5), trigger.Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := launch.RunInfo{SHA: run, HeadAt: tt.runAt}
			if got := older(info, tt.ev); got != tt.cancel {
				t.Errorf("older() = %v, want %v", got, tt.cancel)
			}
		})
	}
}
