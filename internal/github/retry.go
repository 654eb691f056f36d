package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/cenkalti/backoff/v5"
	gh "github.com/google/go-github/v62/github"
)

// RetryPolicy says how often and how long a failed call is tried again.
// The zero value is usable: New fills in the defaults named below.
type RetryPolicy struct {
	// MaxAttempts bounds the tries of one call, the first included.
	// Zero means 4.
	MaxAttempts int
	// InitialInterval is the first wait of the exponential backoff used
	// when GitHub names no wait; each later wait is half as long again,
	// with jitter. Zero means 500ms.
	InitialInterval time.Duration
	// MaxInterval caps one backoff wait. Zero means 10s.
	MaxInterval time.Duration
	// MaxWait is the longest wait GitHub may ask for, by Retry-After or a
	// rate limit's reset time, that a call sits out. A call asked to wait
	// longer, or past its context's deadline, stops at once with an error
	// that RetryAfter reports. Zero means one minute.
	MaxWait time.Duration
}

func (p RetryPolicy) validate() error {
	if p.MaxAttempts < 0 || p.InitialInterval < 0 || p.MaxInterval < 0 || p.MaxWait < 0 {
		return errors.New("github options: retry policy values must not be negative")
	}
	return nil
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 4
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = 500 * time.Millisecond
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = 10 * time.Second
	}
	if p.MaxWait == 0 {
		p.MaxWait = time.Minute
	}
	return p
}

// IsPermanent reports whether err is one that repeating the same call
// cannot fix: a missing file, a rejected request, bad credentials. A
// caller reports such a failure (a commit status of "error") instead of
// trying again later. Rate limits, server errors, network failures and
// cancelled contexts are not permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfter returns how long GitHub asked yaci to wait before the next
// call, when err ended a call on a rate limit or a Retry-After the client
// did not sit out; zero otherwise. A caller can requeue its work that far
// ahead.
func RetryAfter(err error) time.Duration {
	var w *waitError
	if errors.As(err, &w) {
		return w.wait
	}
	return 0
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// waitError carries the wait GitHub asked for along with the error that
// came with it. It converts to backoff's RetryAfterError so that the retry
// loop waits exactly that long.
type waitError struct {
	err  error
	wait time.Duration
}

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// As lets the retry loop find the wait as a *backoff.RetryAfterError.
func (e *waitError) As(target any) bool {
	if t, ok := target.(**backoff.RetryAfterError); ok {
		*t = &backoff.RetryAfterError{Duration: e.wait}
		return true
	}
	return false
}

// call runs attempt until it succeeds, fails for good, or the retry policy
// or ctx runs out. Each attempt gets its own deadline of Options.Timeout.
func (c *Client) call(ctx context.Context, op string, attempt func(context.Context) error) error {
	p := c.opts.Retry
	exp := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: 0.5,
		Multiplier:          1.5,
		MaxInterval:         p.MaxInterval,
	}
	tries := 0
	var last error
	notify := func(err error, wait time.Duration) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "github call failed, retrying",
			slog.String("op", op), slog.Int("attempt", tries),
			slog.Duration("wait", wait), slog.Any("err", err))
	}

	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()

		err := attempt(actx)
		if err == nil {
			return struct{}{}, nil
		}
		if ctx.Err() == nil {
			// An attempt cut short by the caller's own deadline says
			// nothing new; keep the one before it.
			last = err
		}

		return struct{}{}, c.decide(ctx, err)
	}, backoff.WithBackOff(exp), backoff.WithMaxTries(uint(p.MaxAttempts)),
		backoff.WithMaxElapsedTime(0), backoff.WithNotify(notify))

	return giveUp(ctx, err, last, tries)
}

// decide turns an attempt's error into what the retry loop should do: a
// plain error to back off and retry, a waitError to wait as GitHub asked,
// or backoff.Permanent to stop.
func (c *Client) decide(ctx context.Context, err error) error {
	if ctx.Err() != nil || IsPermanent(err) {
		return backoff.Permanent(err)
	}

	retry, wait := classify(err)
	switch {
	case !retry:
		return backoff.Permanent(&permanentError{err: err})
	case wait <= 0:
		return err
	case wait > c.opts.Retry.MaxWait || !fitsDeadline(ctx, wait):
		// Sitting out a wait that ends after the caller stops listening
		// only holds a worker; hand the wait back instead.
		return backoff.Permanent(&waitError{err: err, wait: wait})
	default:
		return &waitError{err: err, wait: wait}
	}
}

// giveUp shapes the error a call ends with. When ctx ended the call it
// keeps the last attempt's error too, which says what went wrong.
func giveUp(ctx context.Context, err, last error, tries int) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && last != nil && !errors.Is(err, last) && !errors.Is(last, ctx.Err()):
		return fmt.Errorf("%w after %d attempts, last: %w", err, tries, last)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		// ctx ended between an attempt and the decision to retry it,
		// so err is the attempt's own: name the deadline as well.
		return fmt.Errorf("%w after %d attempts, last: %w", ctx.Err(), tries, err)
	case tries == 1:
		return err
	default:
		return fmt.Errorf("after %d attempts: %w", tries, err)
	}
}

// fitsDeadline reports whether waiting d still leaves ctx time to act.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// secondaryLimitWait is how long GitHub's documentation says to wait
// after a secondary rate limit that names no time.
const secondaryLimitWait = time.Minute

// classify says whether an attempt's error is worth retrying and how long
// GitHub asked to wait first (zero: back off as usual). It looks only at
// error types and response status and headers, never at message text.
func classify(err error) (retry bool, wait time.Duration) {
	var rateErr *gh.RateLimitError
	var abuseErr *gh.AbuseRateLimitError
	var respErr *gh.ErrorResponse
	var appErr *ghinstallation.HTTPError
	var netErr net.Error
	var urlErr *url.Error

	switch {
	case errors.As(err, &rateErr):
		return true, time.Until(rateErr.Rate.Reset.Time)
	case errors.As(err, &abuseErr):
		if abuseErr.RetryAfter == nil {
			return true, secondaryLimitWait
		}
		return true, *abuseErr.RetryAfter
	case errors.As(err, &respErr):
		return classifyResponse(respErr.Response)
	case errors.As(err, &appErr):
		// A failed installation token refresh: ghinstallation leaves the
		// response open for the caller to read, so close it here.
		if appErr.Response == nil {
			return true, 0
		}
		appErr.Response.Body.Close()
		return classifyResponse(appErr.Response)
	case errors.Is(err, context.DeadlineExceeded):
		// The attempt's own deadline; the caller's is checked before.
		return true, 0
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return true, 0
	default:
		return false, 0
	}
}

// classifyResponse classifies an error response by status and headers:
// rate limits wait for their reset, 429 and 5xx for Retry-After or a
// backoff, and other client errors are final.
func classifyResponse(resp *http.Response) (retry bool, wait time.Duration) {
	if resp == nil {
		return true, 0
	}

	code := resp.StatusCode
	limited := code == http.StatusForbidden || code == http.StatusTooManyRequests
	switch {
	case limited && resp.Header.Get("X-RateLimit-Remaining") == "0":
		reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		if err != nil {
			return true, retryAfterHeader(resp.Header)
		}
		return true, time.Until(time.Unix(reset, 0))
	case code == http.StatusTooManyRequests || code >= 500:
		return true, retryAfterHeader(resp.Header)
	case code == http.StatusForbidden && resp.Header.Get("Retry-After") != "":
		// A secondary rate limit that go-github did not type, such as one
		// met by ghinstallation's token refresh.
		return true, retryAfterHeader(resp.Header)
	default:
		return false, 0
	}
}

// retryAfterHeader reads Retry-After in either of its forms, seconds or
// an HTTP date; zero when absent or unreadable.
func retryAfterHeader(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
