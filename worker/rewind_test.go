package worker_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestRewind fails an instance on an activity while another is still
// running, rewinds it, and checks that only what failed or was running
// runs again, and that every result is applied once.
func TestRewind(t *testing.T) {
	t.Parallel()
	var counted, flaky, slow atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	release := make(chan struct{})
	echo := func(n *atomic.Int32) jetflow.Activity {
		return func(ctx *jetflow.ActivityContext) (any, error) {
			n.Add(1)
			var v int
			return v, ctx.GetInput(&v)
		}
	}
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Count", echo(&counted))
		r.AddActivity("Flaky", func(ctx *jetflow.ActivityContext) (any, error) {
			flaky.Add(1)
			if broken.Load() {
				return nil, errors.New("the service is down")
			}
			return 2, nil
		})
		r.AddActivity("Slow", func(ctx *jetflow.ActivityContext) (any, error) {
			slow.Add(1)
			<-release
			return 10, nil
		})
		return r.AddOrchestrator("Rewindable", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var a, b, c int
			if err := ctx.CallActivity("Count", 1).Await(&a); err != nil {
				return nil, err
			}
			s := ctx.CallActivity("Slow", nil)
			if err := ctx.SetCustomStatus("calling Flaky"); err != nil {
				return nil, err
			}
			if err := ctx.CallActivity("Flaky", nil).Await(&b); err != nil {
				return nil, err
			}
			if err := s.Await(&c); err != nil {
				return nil, err
			}
			return a + b + c, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	c := e.Client

	id, err := c.StartOrchestration(ctx, "Rewindable", client.WithInstanceID("rewind-1"))
	require.NoError(t, err)
	require.ErrorIs(t, c.Rewind(ctx, id, "too early"), jetflow.ErrInstanceNotFailed)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	require.Contains(t, string(st.Output), "the service is down")
	require.Equal(t, int32(1), slow.Load(), "Slow is still running")

	broken.Store(false)
	require.NoError(t, c.Rewind(ctx, id, "the service is back"))
	testkit.WaitFor(t, 20*time.Second, "the rewound instance to run again", func() bool {
		st, err := c.GetStatus(ctx, id)
		return err == nil && st.RuntimeStatus == jetflow.StatusRunning
	})
	close(release) // both runs of Slow finish: the first one's result is for the failed attempt
	st = wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output: %s", st.Output)
	require.JSONEq(t, "13", string(st.Output))
	require.Equal(t, int32(1), counted.Load(), "what succeeded is kept")
	require.Equal(t, int32(2), flaky.Load(), "what failed runs again")
	testkit.WaitFor(t, 10*time.Second, "what was running when the instance failed to run again", func() bool { return slow.Load() == 2 })

	all := checkHistory(t, e, id)
	require.Equal(t, 1, count(all, history.ExecutionRewound))
	require.Equal(t, 1, count(all, history.TaskFailed), "the failure stays in the stored history")
	require.Equal(t, 2, count(all, history.ExecutionCompleted))
	hist, err := c.GetHistory(ctx, id, client.WithOutputs())
	require.NoError(t, err)
	var types []string
	for _, h := range hist {
		types = append(types, h.EventType)
	}
	require.Contains(t, types, "ExecutionRewound")

	require.ErrorIs(t, c.Rewind(ctx, id, nil), jetflow.ErrInstanceNotFailed, "a completed instance")
	require.ErrorIs(t, c.Rewind(ctx, "ghost", nil), jetflow.ErrInstanceNotFound)

	// A worker that loads the history from storage sees the rewound run.
	e.StopWorkers()
	e.StartWorker()
	_, err = c.Restart(ctx, id, client.KeepInstanceID())
	require.NoError(t, err)
	require.JSONEq(t, "13", string(wait(t, e, id).Output))
}
