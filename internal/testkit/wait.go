package testkit

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// The polling interval of WaitFor: it starts short, so that a condition
// that holds soon is seen soon, and grows to at most maxInterval, so that
// a long wait on a condition that costs a request does not flood the
// server.
const (
	firstInterval = 2 * time.Millisecond
	maxInterval   = 100 * time.Millisecond
)

var errNotYet = errors.New("the condition does not hold")

// WaitFor polls cond until it returns true, and fails the test with a
// message naming what (e.g. "the instance to run") if it still does not
// after timeout. cond runs on the caller's goroutine and may call require.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Within polls cond as WaitFor does and reports whether it held within
// timeout, for a test that acts again while a condition does not hold yet.
func Within(timeout time.Duration, cond func() bool) bool {
	return poll(timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}) == nil
}

// WaitForNoError is WaitFor for a check that says why it does not hold
// yet: it polls check until it returns nil, and the failure after timeout
// names what and quotes check's last error.
func WaitForNoError(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := poll(timeout, check); err != nil {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

// poll calls check until it returns nil or timeout has passed, and
// returns its last error. check is called once more at the deadline.
func poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		err := check()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		time.Sleep(min(interval, left))
		interval = min(interval*3/2, maxInterval)
	}
}

// Receive returns the next value sent on ch. It fails the test if ch is
// closed, or if nothing arrives within timeout; msgAndArgs (a format and
// its arguments) say what was expected.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, msgAndArgs ...any) T {
	t.Helper()
	v, ok := Next(t, ch, timeout, msgAndArgs...)
	if !ok {
		t.Fatalf("channel closed while waiting for a value%s", describe(msgAndArgs))
	}
	return v
}

// Next returns the next value sent on ch, with ok true, or the zero value
// and ok false when ch is closed. It fails the test if neither happens
// within timeout.
func Next[T any](t testing.TB, ch <-chan T, timeout time.Duration, msgAndArgs ...any) (v T, ok bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v, ok = <-ch:
		return v, ok
	case <-timer.C:
		t.Fatalf("nothing received within %s%s", timeout, describe(msgAndArgs))
		return v, false
	}
}

// Collect receives from ch until it is closed and returns what it
// received. It fails the test if ch is still open after timeout.
func Collect[T any](t testing.TB, ch <-chan T, timeout time.Duration, msgAndArgs ...any) []T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var out []T
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, v)
		case <-timer.C:
			t.Fatalf("channel not closed within %s (%d values received)%s", timeout, len(out), describe(msgAndArgs))
			return out
		}
	}
}

// Quiet checks that nothing arrives on ch, and that it stays open, for d.
// It is the one wait of a fixed length a test may make: it checks that
// something does not happen.
func Quiet[T any](t testing.TB, ch <-chan T, d time.Duration, msgAndArgs ...any) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("channel closed within %s, want it open and quiet%s", d, describe(msgAndArgs))
		}
		t.Fatalf("received %+v within %s, want nothing%s", v, d, describe(msgAndArgs))
	case <-timer.C:
	}
}

// describe formats msgAndArgs for a failure message.
func describe(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}
