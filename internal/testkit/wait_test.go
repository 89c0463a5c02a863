package testkit_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB whose failures are recorded; Fatalf and
// FailNow end the goroutine, as the real ones do.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) { r.failure += fmt.Sprintf(format, args...) }

func (r *recorder) FailNow() { runtime.Goexit() }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.FailNow()
}

// run runs f with a recorder on a goroutine of its own, and returns the
// failure it recorded ("" for none).
func run(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failure
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	require.Empty(t, run(t, func(tb testing.TB) {
		testkit.WaitFor(tb, 5*time.Second, "the fifth poll", func() bool { return polls.Add(1) == 5 })
	}))
	require.Equal(t, int32(5), polls.Load())

	begun := time.Now()
	failure := run(t, func(tb testing.TB) {
		testkit.WaitFor(tb, 50*time.Millisecond, "nothing", func() bool { return false })
	})
	require.Equal(t, "timed out after 50ms waiting for nothing", failure)
	require.GreaterOrEqual(t, time.Since(begun), 50*time.Millisecond)

	failure = run(t, func(tb testing.TB) {
		n := 0
		testkit.WaitForNoError(tb, 50*time.Millisecond, "the count", func() error { n++; return fmt.Errorf("at %d", n) })
	})
	require.Regexp(t, `^timed out after 50ms waiting for the count: at \d+$`, failure)
	require.Empty(t, run(t, func(tb testing.TB) {
		testkit.WaitForNoError(tb, time.Second, "nothing", func() error { return nil })
	}))
}

func TestReceive(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 3)
	ch <- 1
	require.Empty(t, run(t, func(tb testing.TB) { require.Equal(tb, 1, testkit.Receive(tb, ch, time.Second)) }))
	require.Equal(t, "nothing received within 10ms: the answer of 42",
		run(t, func(tb testing.TB) { testkit.Receive(tb, ch, 10*time.Millisecond, "the answer of %d", 42) }))
	require.Equal(t, "received 2 within 1s, want nothing",
		run(t, func(tb testing.TB) { ch <- 2; testkit.Quiet(tb, ch, time.Second) }))
	require.Empty(t, run(t, func(tb testing.TB) { testkit.Quiet(tb, ch, 10*time.Millisecond) }))

	ch <- 3
	ch <- 4
	close(ch)
	require.Empty(t, run(t, func(tb testing.TB) {
		v, ok := testkit.Next(tb, ch, time.Second)
		require.True(tb, ok)
		require.Equal(tb, 3, v)
		require.Equal(tb, []int{4}, testkit.Collect(tb, ch, time.Second))
		_, ok = testkit.Next(tb, ch, time.Second)
		require.False(tb, ok)
	}))
	require.Equal(t, "channel closed while waiting for a value", run(t, func(tb testing.TB) { testkit.Receive(tb, ch, time.Second) }))
	require.Equal(t, "channel closed within 1s, want it open and quiet", run(t, func(tb testing.TB) { testkit.Quiet(tb, ch, time.Second) }))

	open := make(chan error, 1)
	open <- errors.New("x")
	require.Equal(t, "channel not closed within 10ms (1 values received): the stream",
		run(t, func(tb testing.TB) { testkit.Collect(tb, open, 10*time.Millisecond, "the stream") }))
}
