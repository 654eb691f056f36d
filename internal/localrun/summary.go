package localrun

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// AllPassed reports whether every job of results passed.
func AllPassed(results []Result) bool {
	for _, r := range results {
		if r.Outcome != Passed {
			return false
		}
	}

	return true
}

// WriteSummary writes a table of results, one job a line with its
// outcome, duration and what went wrong, and a last line counting the
// outcomes:
//
//	JOB   RESULT  DURATION
//	vet   passed  4.2s
//	unit  failed  31.7s     exit status 1
//	2 jobs: 1 passed, 1 failed
func WriteSummary(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tRESULT\tDURATION")
	for _, r := range results {
		duration := "-"
		if r.Outcome != NotRun {
			duration = roundDuration(r.Duration).String()
		}
		// The note is a cell only when there is one, so no line ends in
		// padding.
		if r.Err != nil && r.Outcome != Passed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", r.Job, r.Outcome, duration, r.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Job, r.Outcome, duration)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}

	_, err := fmt.Fprintln(w, tally(results))
	if err != nil {
		return fmt.Errorf("write summary: %w", err)
	}

	return nil
}

// tally counts results by outcome, in the order outcomes are listed.
func tally(results []Result) string {
	counts := make(map[Outcome]int)
	for _, r := range results {
		counts[r.Outcome]++
	}
	var parts []string
	for _, o := range []Outcome{Passed, Failed, TimedOut, Canceled, NotRun, Error} {
		if n := counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	noun := "jobs"
	if len(results) == 1 {
		noun = "job"
	}

	return fmt.Sprintf("%d %s: %s", len(results), noun, strings.Join(parts, ", "))
}

// roundDuration shortens d to what a person reads: milliseconds under a
// second, tenths of a second under a minute, whole seconds above.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}

	return d.Round(time.Second)
}
