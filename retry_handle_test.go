package jetflow

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetryHandlePanics: a panic in RetryPolicy.Handle fails the call with
// an error naming Handle and the panic value and wrapping the attempt's
// failure; unhandled, it fails the instance as the orchestrator's error,
// not as an executor bug; replay ends the same way.
func TestRetryHandlePanics(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	act, runs := flaky(10)
	require.NoError(t, r.AddActivity("Flaky", act))
	policy := RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Second, Handle: func(tf *TaskFailedError) bool {
		panic("handle blew up on " + tf.Message)
	}}
	require.NoError(t, r.AddOrchestrator("Unhandled", func(ctx *OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("Flaky", nil, WithRetry(policy)).Await(nil)
	}))
	require.NoError(t, r.AddOrchestrator("Handled", func(ctx *OrchestrationContext) (any, error) {
		err := ctx.CallActivity("Flaky", nil, WithRetry(policy)).Await(nil)
		var tf *TaskFailedError
		if !errors.As(err, &tf) {
			return nil, errors.New("want the attempt's TaskFailedError")
		}
		return []any{err.Error(), tf.Attempts}, nil
	}))

	s := newSim(t, r, "unhandled")
	s.start("Unhandled", nil)
	requireFailed(t, s.run(), FailureOrchestratorError,
		`calling activity "Flaky": the retry policy's Handle panicked: handle blew up on try again`)
	require.NotContains(t, s.final().Failure.Message, "executor")
	require.Equal(t, int32(1), runs.Load(), "no retry after the panic")

	s = newSim(t, r, "handled")
	s.start("Handled", nil)
	requireCompleted(t, s.run(),
		`["calling activity \"Flaky\": the retry policy's Handle panicked: handle blew up on try again (after task \"Flaky\" failed: try again)",1]`)
}
