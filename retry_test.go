package jetflow

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/history"
	"github.com/stretchr/testify/require"
)

// flaky returns an activity that fails its first n runs.
func flaky(n int32) (Activity, *atomic.Int32) {
	var runs atomic.Int32
	return func(ctx *ActivityContext) (any, error) {
		if runs.Add(1) <= n {
			return nil, errors.New("try again")
		}
		return "ok", nil
	}, &runs
}

func TestRetry(t *testing.T) {
	t.Parallel()
	policy := RetryPolicy{MaxAttempts: 4, FirstRetryInterval: 2 * time.Second, BackoffCoefficient: 2}
	for _, tc := range []struct {
		name      string
		failures  int32
		policy    RetryPolicy
		runs      int32
		output    string
		withError string
		delays    []time.Duration
	}{
		{name: "succeeds on the third attempt", failures: 2, policy: policy, runs: 3, output: `"ok"`,
			delays: []time.Duration{2 * time.Second, 4 * time.Second}},
		{name: "gives up after MaxAttempts", failures: 10, policy: policy, runs: 4,
			withError: `task "Flaky" failed after 4 attempts: try again`,
			delays:    []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{name: "MaxRetryInterval caps the wait", failures: 3, runs: 4, output: `"ok"`,
			policy: RetryPolicy{MaxAttempts: 5, FirstRetryInterval: 2 * time.Second, BackoffCoefficient: 10, MaxRetryInterval: 5 * time.Second},
			delays: []time.Duration{2 * time.Second, 5 * time.Second, 5 * time.Second}},
		{name: "Handle refuses", failures: 10, runs: 1, withError: `task "Flaky" failed: try again`,
			policy: RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, Handle: func(*TaskFailedError) bool { return false }}},
		{name: "RetryTimeout stops", failures: 10, runs: 2, withError: `failed after 2 attempts`,
			policy: RetryPolicy{MaxAttempts: 5, FirstRetryInterval: 3 * time.Second, RetryTimeout: 7 * time.Second},
			delays: []time.Duration{3 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewRegistry()
			act, runs := flaky(tc.failures)
			require.NoError(t, r.AddActivity("Flaky", act))
			require.NoError(t, r.AddOrchestrator("Retrying", func(ctx *OrchestrationContext) (any, error) {
				var out string
				err := ctx.CallActivity("Flaky", nil, WithRetry(tc.policy)).Await(&out)
				var tf *TaskFailedError
				if err != nil && (!errors.As(err, &tf) || tf.Name != "Flaky") {
					return nil, errors.New("want a TaskFailedError")
				}
				return out, err
			}))
			s := newSim(t, r, "retry")
			s.start("Retrying", nil)
			end := s.run()
			require.Equal(t, tc.runs, runs.Load())
			if tc.withError != "" {
				require.Equal(t, history.StatusFailed, end.Status)
				require.Contains(t, end.Failure.Message, tc.withError)
			} else {
				require.Equal(t, history.StatusCompleted, end.Status)
				require.JSONEq(t, tc.output, string(end.Result))
			}
			// Each wait is a durable timer recorded in history, due the
			// policy's delay after the turn that saw the failure.
			// Each attempt after the first records its number.
			var delays []time.Duration
			var attempts []int32
			for _, e := range s.hist {
				switch e.Type {
				case history.TimerCreated:
					delays = append(delays, e.FireAt.Sub(e.Time))
				case history.TaskScheduled:
					attempts = append(attempts, e.Attempt)
				}
			}
			require.Equal(t, tc.delays, delays)
			want := []int32{0}
			for n := int32(2); n <= tc.runs; n++ {
				want = append(want, n)
			}
			require.Equal(t, want, attempts)
		})
	}
}

func TestRetryComposes(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	a, _ := flaky(1)
	b, _ := flaky(2)
	require.NoError(t, r.AddActivity("A", a))
	require.NoError(t, r.AddActivity("B", b))
	require.NoError(t, r.AddOrchestrator("Both", func(ctx *OrchestrationContext) (any, error) {
		p := WithRetry(RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Second})
		var out []string
		err := ctx.WhenAll(ctx.CallActivity("A", nil, p), ctx.CallActivity("B", nil, p)).Await(&out)
		return out, err
	}))
	s := newSim(t, r, "both")
	s.start("Both", nil)
	end := s.run()
	require.Equal(t, history.StatusCompleted, end.Status, "%+v", end.Failure)
	require.JSONEq(t, `["ok","ok"]`, string(end.Result))
}

func TestRetryPolicyInvalid(t *testing.T) {
	t.Parallel()
	for _, p := range []RetryPolicy{
		{MaxAttempts: 0, FirstRetryInterval: time.Second},
		{MaxAttempts: 2},
		{MaxAttempts: 2, FirstRetryInterval: time.Second, BackoffCoefficient: 0.5},
		{MaxAttempts: 2, FirstRetryInterval: time.Second, RetryTimeout: -1},
	} {
		r := NewRegistry()
		require.NoError(t, r.AddActivity("A", func(*ActivityContext) (any, error) { return nil, nil }))
		require.NoError(t, r.AddOrchestrator("Bad", func(ctx *OrchestrationContext) (any, error) {
			err := ctx.CallActivity("A", nil, WithRetry(p)).Await(nil)
			if !errors.Is(err, ErrInvalidOption) {
				return nil, errors.New("want ErrInvalidOption")
			}
			return err.Error(), nil
		}))
		s := newSim(t, r, "bad")
		res := s.start("Bad", nil)
		require.True(t, res.Done)
		require.Len(t, res.Events, 1, "nothing is scheduled")
		require.Contains(t, string(s.final().Result), "retry policy")
	}
}
