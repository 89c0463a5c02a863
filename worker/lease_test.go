package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/worker"
	"github.com/stretchr/testify/require"
)

// TestBlockedTurnIsGivenUp blocks an orchestrator in the middle of a turn
// (as code that waits on a channel, or a stalled process, would): the
// watchdog gives the turn up, its slot is freed and its message retried,
// the instance finishes, nothing of the blocked turn is ever committed,
// and Stop returns within its context although the blocked code never
// returns.
func TestBlockedTurnIsGivenUp(t *testing.T) {
	t.Parallel()
	var stalls atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := testengine.New(t, testengine.Options{Workers: -1, Register: func(r *jetflow.Registry) error {
		r.AddActivity("Step", func(ctx *jetflow.ActivityContext) (any, error) { return "done", nil })
		return r.AddOrchestrator("Stalls", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var s string
			if err := ctx.CallActivity("Step", nil).Await(&s); err != nil {
				return nil, err
			}
			// The first turn to get past the activity blocks here until
			// the test ends.
			if !ctx.IsReplaying() && stalls.Add(1) == 1 {
				<-release
			}
			return s, nil
		})
	}})
	w := e.StartWorkerWith(worker.Config{TurnTimeout: time.Second, OrchestrationConcurrency: 1})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Stalls", client.WithInstanceID("stuck-1"))
	require.NoError(t, err)

	// With one slot, the instance can only finish if the blocked turn gave
	// its slot back.
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, `"done"`, string(st.Output))
	require.Equal(t, int64(1), w.Stats().Blocked)
	all := checkHistory(t, e, id)
	require.Equal(t, 2, count(all, history.OrchestratorStarted), "one turn to start, one to finish: the blocked turn left no trace")
	require.Equal(t, 1, count(all, history.ExecutionCompleted))

	// The blocked orchestrator code still runs: Stop does not wait for it.
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.Stop(stopCtx))
}

// TestStopHonoursItsContext: an activity that ignores its context keeps
// running, and Stop still returns when its context ends.
func TestStopHonoursItsContext(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := testengine.New(t, testengine.Options{Workers: -1, Register: func(r *jetflow.Registry) error {
		r.AddActivity("Hang", func(ctx *jetflow.ActivityContext) (any, error) {
			close(started)
			<-release // ignores ctx
			return nil, nil
		})
		return r.AddOrchestrator("CallsHang", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return nil, ctx.CallActivity("Hang", nil).Await(nil)
		})
	}})
	w := e.StartWorker()
	ctx := e.Context(30 * time.Second)
	_, err := e.Client.StartOrchestration(ctx, "CallsHang")
	require.NoError(t, err)
	<-started
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	begun := time.Now()
	require.ErrorIs(t, w.Stop(stopCtx), context.DeadlineExceeded)
	require.Less(t, time.Since(begun), 3*time.Second, "Stop returned once its context ended")
}
