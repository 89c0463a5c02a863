package worker_test

import (
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

// TestStuckWorkerLosesLease stalls a worker in the middle of a turn: its
// messages come back to another worker after the ack wait, that worker
// finishes the instance, and the stalled worker's late commit is refused by
// the history fence.
func TestStuckWorkerLosesLease(t *testing.T) {
	t.Parallel()
	var stalls atomic.Int32
	release := make(chan struct{})
	e := testengine.New(t, testengine.Options{Workers: -1, Register: func(r *jetflow.Registry) error {
		r.AddActivity("Step", func(ctx *jetflow.ActivityContext) (any, error) { return "done", nil })
		return r.AddOrchestrator("Stalls", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var s string
			if err := ctx.CallActivity("Step", nil).Await(&s); err != nil {
				return nil, err
			}
			// The first worker to get past the activity hangs here (a stuck
			// process: a long GC pause, a frozen VM) until released.
			if !ctx.IsReplaying() && stalls.Add(1) == 1 {
				<-release
			}
			return s, nil
		})
	}})
	cfg := worker.Config{AckWait: time.Second, CacheSize: -1}
	stuck := e.StartWorkerWith(cfg)
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Stalls", client.WithInstanceID("stuck-1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return stalls.Load() == 1 }, 20*time.Second, 10*time.Millisecond)

	// Another worker gets the stuck worker's message once its lease ends,
	// and finishes the instance.
	other := e.StartWorkerWith(cfg)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, `"done"`, string(st.Output))

	// The stuck worker wakes up and tries to commit the same turn: the
	// fence refuses it; it reloads, finds its message applied, and drops it.
	before := stuck.Stats().Conflicts
	close(release)
	require.Eventually(t, func() bool { return stuck.Stats().Conflicts > before }, 20*time.Second, 10*time.Millisecond)
	all := checkHistory(t, e, id)
	require.Equal(t, 2, count(all, history.OrchestratorStarted), "one turn to start, one to finish: the stuck turn left no trace")
	require.Equal(t, 1, count(all, history.ExecutionCompleted))
	require.Positive(t, other.Stats().Turns)
	st, err = e.Client.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "the late commit did not touch the status")
}
