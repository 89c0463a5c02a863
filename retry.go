package jetflow

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"time"
)

// CallOption configures [OrchestrationContext.CallActivity].
type CallOption func(*callOptions)

type callOptions struct {
	retry   *RetryPolicy
	timeout time.Duration
	attempt int // of a retry policy's call, recorded from the second on
}

// WithStartToCloseTimeout bounds each attempt of the call: an activity
// still running d after it started is abandoned by its worker (its
// context is canceled, and its lease given up) and the attempt fails with
// a [*TaskFailedError] of Type "Timeout", which a retry policy may retry.
// It overrides the timeout the activity was registered with
// ([WithActivityTimeout] of AddActivity); d <= 0 keeps that one.
func WithStartToCloseTimeout(d time.Duration) CallOption {
	return func(o *callOptions) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// RetryPolicy says how often, and how long apart, a failed activity is
// tried again. The waits are durable timers, so retries survive restarts
// and show in history; they are part of the orchestration, so the policy
// must not change between replays of an instance.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included. It must be
	// at least 1.
	MaxAttempts int
	// FirstRetryInterval is the wait before the second attempt. It must be
	// positive.
	FirstRetryInterval time.Duration
	// BackoffCoefficient multiplies the wait after each further failure.
	// Defaults to 1 (a constant interval); it must not be below 1.
	BackoffCoefficient float64
	// MaxRetryInterval caps the wait between attempts. Zero means no cap.
	MaxRetryInterval time.Duration
	// RetryTimeout stops retrying once this long has passed since the
	// first attempt was scheduled. Zero means no limit.
	RetryTimeout time.Duration
	// Handle, when set, decides from an attempt's failure whether to try
	// again. It must be deterministic. Nil retries every failure. If it
	// panics, the call fails with an error naming Handle and the panic
	// value (wrapping the attempt's *TaskFailedError), which fails the
	// instance unless the orchestrator handles it.
	Handle func(*TaskFailedError) bool
}

// WithRetry retries the activity after a failure according to p. When the
// attempts run out, Await returns the last attempt's *TaskFailedError, with
// Attempts set. An invalid policy makes the call fail at once with an error
// wrapping [ErrInvalidOption], scheduling nothing.
func WithRetry(p RetryPolicy) CallOption {
	return func(o *callOptions) { o.retry = &p }
}

func (p *RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("%w: retry policy: MaxAttempts %d, want at least 1", ErrInvalidOption, p.MaxAttempts)
	case p.FirstRetryInterval <= 0:
		return fmt.Errorf("%w: retry policy: FirstRetryInterval %s, want more than 0", ErrInvalidOption, p.FirstRetryInterval)
	case p.BackoffCoefficient != 0 && p.BackoffCoefficient < 1:
		return fmt.Errorf("%w: retry policy: BackoffCoefficient %g, want 1 or more", ErrInvalidOption, p.BackoffCoefficient)
	case p.MaxRetryInterval < 0 || p.RetryTimeout < 0:
		return fmt.Errorf("%w: retry policy: negative MaxRetryInterval or RetryTimeout", ErrInvalidOption)
	}
	return nil
}

// delay is the wait after the given failed attempt (from 1).
func (p *RetryPolicy) delay(attempt int) time.Duration {
	coef := p.BackoffCoefficient
	if coef == 0 {
		coef = 1
	}
	d := float64(p.FirstRetryInterval) * math.Pow(coef, float64(attempt-1))
	if p.MaxRetryInterval > 0 && d > float64(p.MaxRetryInterval) {
		return p.MaxRetryInterval
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// callWithRetry returns a task that runs the activity, and after each
// failure the policy allows, waits on a durable timer and runs it again.
// The chain advances in the executor as completions arrive (not only when
// the orchestrator awaits this task), so it composes with WhenAll and
// WhenAny, and replays to the same steps.
func (c *OrchestrationContext) callWithRetry(name string, input any, p RetryPolicy, timeout time.Duration) Task {
	r := c.newTask(kindActivity, name)
	if c.aborting {
		return r
	}
	if err := p.validate(); err != nil {
		r.fail(fmt.Errorf("calling activity %q: %w", name, err))
		return r
	}
	first := c.now
	var attempt func(n int)
	attempt = func(n int) {
		a := c.CallActivity(name, input, WithStartToCloseTimeout(timeout), func(o *callOptions) { o.attempt = n }).(*task)
		a.whenDone(func() {
			var tf *TaskFailedError
			if a.err == nil || !errors.As(a.err, &tf) {
				r.settle(a.result, a.err)
				return
			}
			wait := p.delay(n)
			stop := n >= p.MaxAttempts ||
				p.RetryTimeout > 0 && c.now.Add(wait).Sub(first) > p.RetryTimeout
			if !stop && p.Handle != nil {
				retry, err := c.callHandle(p.Handle, name, n, tf)
				if err != nil {
					r.fail(err)
					return
				}
				stop = !retry
			}
			if stop {
				last := *tf
				last.Attempts = n
				r.fail(&last)
				return
			}
			timer := c.CreateTimer(wait).(*task)
			timer.whenDone(func() { attempt(n + 1) })
		})
	}
	attempt(1)
	return r
}

// callHandle asks the policy's Handle whether to retry after the failed
// attempt n. Handle is the orchestration's code, run by the executor as
// the failure arrives: a panic in it fails the call (and, unless the
// orchestrator handles that, the instance) with an error naming Handle and
// the panic value, like any error of the orchestrator's, instead of being
// taken for the executor's own. The error wraps the attempt's failure. Like
// Handle, it is the same on every replay.
func (c *OrchestrationContext) callHandle(handle func(*TaskFailedError) bool, name string, n int, tf *TaskFailedError) (retry bool, err error) {
	defer func() {
		if v := recover(); v != nil { // panic(nil) arrives as *runtime.PanicNilError
			if !c.replaying {
				c.xlog.Warn("jetflow: retry policy's Handle panicked", slog.String("activity", name),
					slog.Int("attempt", n), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			}
			last := *tf
			last.Attempts = n
			retry, err = false, fmt.Errorf("calling activity %q: the retry policy's Handle panicked: %v (after %w)", name, v, &last)
		}
	}()
	return handle(tf), nil
}

// whenDone runs fn once the task is done (at once if it is).
func (t *task) whenDone(fn func()) {
	if t.done {
		fn()
		return
	}
	t.onDone = append(t.onDone, fn)
}

// settle completes or fails the task like another task ended.
func (t *task) settle(result []byte, err error) {
	if err != nil {
		t.fail(err)
		return
	}
	t.complete(result)
}
